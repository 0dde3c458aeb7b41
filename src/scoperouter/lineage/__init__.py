"""``scoperouter lineage``: prove routes.yaml covers what every processor really reads.

Each processor's reads -- tables and the columns used from each -- are derived from its SQL
(:mod:`.sql`, files or string literals in Python sources, :mod:`.pysrc`), from BigQuery's
``INFORMATION_SCHEMA.JOBS`` (:mod:`.jobs`) or from what runs report (``referenced_tables``
in completion events, :mod:`.drift`), and diffed against the registry (:mod:`.diff`).
The package imports nothing heavy at import time (sqlglot loads with :mod:`.sql`).
"""
