"""``scoperouter lineage``: prove routes.yaml covers what every processor really reads.

Each processor's reads -- tables and the columns used from each -- are derived from its SQL
(:mod:`.sql`, files or string literals in Python sources, :mod:`.pysrc`), from BigQuery's
``INFORMATION_SCHEMA.JOBS`` (:mod:`.jobs`) or from what runs report (the SDK's
``referenced_tables``), and diffed against the registry (:mod:`.diff`).
"""

from scoperouter.lineage.analyse import Analysis, analyse_code, analyse_jobs
from scoperouter.lineage.diff import Finding
from scoperouter.lineage.reads import Origin, Reads, Unresolved

__all__ = ["Analysis", "Finding", "Origin", "Reads", "Unresolved", "analyse_code", "analyse_jobs"]
