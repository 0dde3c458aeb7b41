"""The SQL the SQLite execution log's flush runs on rows already written: the link of
decision rows to the trigger that executes them, and the fill of a dispatch row logged
without its decisions (after a restart: phase, granularity and universe unknown).

Invariant: the link sets ``trigger_id`` only on run decision rows that have none (the
rows of ``ix_log_unlinked``: a decision is linked once, to the first trigger that names
it), the fill sets only what a dispatch row lacks (``COALESCE``; ``entities_requested``
only when NULL, of a date-scope row), and every statement searches the log through an
index (its lookups name theirs, ``INDEXED BY``): none scans it. Decision rows get their ``trigger_id`` when
the trigger they caused is dispatched: the trigger's ``caused_by`` event ids + processor +
its date range select them (``action = 'run'``, no trigger yet); dispatch rows carry
``caused_by`` too, so the link can always be rebuilt (BigQuery does it in a view, see
``sql/``). Links to decision rows buffered in the same flush are set in memory instead
(:mod:`.sqlite_links`). ``event_id`` is indexed only for the run decisions not linked yet
(``ix_log_unlinked``, :mod:`.sqlite_schema`: what the link UPDATE and the fill look up;
readers scan): a decision linked in memory as it is inserted never enters it, one linked
later leaves it, so the index holds the open windows' events rather than the whole log and
its random keys dirty a few pages per flush instead of one per row.
A dispatch row filled after its decisions were linked (a later outcome of the same
trigger) takes the values of an earlier outcome of that trigger, or of the folded row
that holds the first one (:mod:`.sqlite_fold`).
"""

from __future__ import annotations

from scoperouter.execution_log.api import LOG_TABLE
from scoperouter.execution_log.sqlite_schema import _DISPATCH_KEY

_UNLINKED = "kind = 'decision' AND action = 'run' AND trigger_id IS NULL"  # ix_log_unlinked's rows
_LINK_SQL = (
    f"UPDATE {LOG_TABLE} INDEXED BY ix_log_unlinked SET trigger_id = ? WHERE event_id = ? "
    f"AND processor = ? AND game_date BETWEEN ? AND ? AND {_UNLINKED}"
)
# the unlinked run decision rows of the dispatch's first causing event, same processor and
# date (no (processor, date) index is kept, it cost ~90 bytes per event) -- the fill runs
# before the flush's links, so a trigger's first outcome finds them; a later outcome, after
# the link, takes an earlier outcome's values (found by the trigger's fired_at)
_SAME = (
    f"FROM {LOG_TABLE} AS d INDEXED BY ix_log_unlinked WHERE d.event_id = {LOG_TABLE}.event_id "
    f"AND d.processor = {LOG_TABLE}.processor AND d.game_date = {LOG_TABLE}.game_date "
    f"AND d.{_UNLINKED.replace(' AND ', ' AND d.')}"
)
_EARLIER = (
    f"FROM {LOG_TABLE} AS p INDEXED BY ix_log_dispatch_at "
    f"WHERE ifnull(p.decided_at, '') = ifnull({LOG_TABLE}.decided_at, '') "
    f"AND p.kind = 'dispatch' AND p.trigger_id = {LOG_TABLE}.trigger_id "
    f"AND p.rowid <> {LOG_TABLE}.rowid"
)
_FOLDED = (
    f"FROM {LOG_TABLE} AS f INDEXED BY ix_log_folded WHERE f.fired_at = {LOG_TABLE}.decided_at "
    f"AND f.trigger_id = {LOG_TABLE}.trigger_id AND f.fired_at IS NOT NULL"
)


def _filled(col: str) -> str:
    return (
        f"{col} = COALESCE({col}, (SELECT MAX(d.{col}) {_SAME}), (SELECT MAX(p.{col}) {_EARLIER}), "
        f"(SELECT MAX(f.{col}) {_FOLDED}))"
    )


_FILL_SQL = (
    f"UPDATE {LOG_TABLE} SET "
    + ", ".join(_filled(c) for c in ("entities_universe", "phase", "granularity"))
    + f" WHERE {_DISPATCH_KEY} = ? AND decision_id = ? AND kind = 'dispatch'"
)
_FILL_REQUESTED_SQL = (
    f"UPDATE {LOG_TABLE} SET entities_requested = entities_universe "
    f"WHERE {_DISPATCH_KEY} = ? AND decision_id = ? AND kind = 'dispatch' AND scope = 'date' "
    "AND entities_requested IS NULL"
)
