"""SQLite execution log: one file in the state dir, WAL, batched inserts per transaction
(multi-row ``INSERT ... VALUES (...), (...)`` of up to
:data:`~.sqlite_write.ROWS_PER_INSERT` rows: one statement step -- and one release of the
interpreter lock -- per chunk, not per row). This
module buffers the rows and runs the flush; what a flush writes, and how, is
:mod:`.sqlite_write`.

Invariant: a flush writes what was buffered in one transaction or nothing (a failed one is
rolled back and its rows buffered again, up to ``max_buffer``; past that they are dropped,
logged and counted: :attr:`SqliteExecutionLog.dropped`), except a row the database refuses
for its values (a data error binding it: an int past 64 bits, a lone surrogate, a value of
no SQL type, one past the length limit): the flush is then written again row by row in one
transaction, and only the refused rows (an event's with its decision rows) are dropped,
each logged with its ids and counted -- one bad row never holds back the rows after it. Each
event, decision and dispatch outcome is stored once however often it is delivered.

A log row's ``decision_id`` is unique without a unique index over every row (random ids:
each insert dirtied a page of that index; about a third of the flush's cost): a
redelivered event's decision rows are not written again because its event row already is
(``events.event_id`` is the primary key), and dispatch rows are unique through a partial
index (``kind = 'dispatch'``) keyed by their trigger's ``fired_at`` first, so that new keys
are appended rather than scattered. Logs created before are migrated when opened: the
tables, indexes and migrations are :mod:`.sqlite_schema`. Decision rows are linked to the
trigger that executes them in memory when buffered in the same flush (:mod:`.sqlite_links`),
else by an UPDATE; a dispatch row logged without its decisions is filled from them
(:mod:`.sqlite_fill`).

A trigger's first outcome that arrives before its decision row is written is folded into
that row (:mod:`.sqlite_fold`: two rows an event instead of three; ``fired_at``, a column of
the SQLite table only, and ``ix_log_folded`` keyed by it); :func:`.reader.stored_log_rows`
reads a folded row back as the two rows it stands for.

The status a run's completion event reported is kept by trigger id
(:meth:`SqliteExecutionLog.record_trigger_report`, the trigger reports table; the first
report of a trigger is kept): what ``backfill.daemon_executor.log_completions`` reads.
Each processor's effective mode, which the daemon gives at its start
(:meth:`SqliteExecutionLog.record_modes`), is written at once, not buffered, as one
``scoperouter_meta`` row replacing the previous start's: what ``report`` reads for a
processor without runs.

With ``retention_s`` the log keeps that much history: at most every ``prune_interval_s``
the flush runs a bounded retention pass (:mod:`.sqlite_retention`), its cutoff measured back
from ``clock()`` (``serve`` gives the wall clock bounded by monotonic time,
:func:`scoperouter.runtime.housekeeping.retention_clock`; default the wall clock); a
pass that stops at its limit (:attr:`SqliteExecutionLog.prune_more`) is followed by the
next one at the first write or flush :data:`~scoperouter.state.model.CATCH_UP_PAUSE_S`
later.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import Any

from scoperouter.execution_log.api import DEMO_KEY, MODES_KEY
from scoperouter.execution_log.base import PendingOutcome, RowExecutionLog
from scoperouter.execution_log.row_values import ids_json, iso
from scoperouter.execution_log.rows import (
    DECISION_COLUMNS as DECISION_COLUMNS,  # re-exported: tests import it here
)
from scoperouter.execution_log.rows import (
    LOG_COLUMNS,
    Values,
    trigger_report_row,
)
from scoperouter.execution_log.sqlite_links import Link
from scoperouter.execution_log.sqlite_refused import DATA_ERRORS, Refused
from scoperouter.execution_log.sqlite_retention import prune_pass
from scoperouter.execution_log.sqlite_schema import SCHEMA, SCHEMA_VERSION, _migrate
from scoperouter.execution_log.sqlite_write import Taken, write_flush
from scoperouter.messages.event_fields import encodable
from scoperouter.messages.models import Trigger
from scoperouter.state.model import CATCH_UP_PAUSE_S, PRUNE_LIMIT

logger = logging.getLogger(__name__)

_DATE, _AT = (LOG_COLUMNS.index(c) for c in ("game_date", "decided_at"))

# decision rows never carry the dispatch columns: built (``_narrow_decisions``) and inserted
# without them, NULL by default (bench/log_thread.py: binding a NULL costs more than a value)

# what :meth:`SqliteExecutionLog._store_outcome` reads of a trigger, from its ``__dict__``
# in one C call (a pydantic model's attribute reads take the interpreter's generic path)
_outcome_fields = itemgetter(
    "trigger_id", "processor", "game_date", "start_date", "end_date", "caused_by", "fired_at"
)


class SqliteExecutionLog(RowExecutionLog):
    """The default execution log. Thread-safe; batches writes (``batch_size`` rows or
    ``flush_interval_s`` seconds, whichever comes first, and on :meth:`flush`): at the
    daemon's rates a flush a second, whose random keys (the events' primary key) share
    their index pages -- 2,000-row flushes dirtied most pages several times a second.
    ``retention_s`` (None: keep everything) prunes older rows, at most ``prune_limit`` a
    table and pass (see the module doc). A flush that fails is rolled back and raises; its
    rows stay buffered for the next one (up to ``max_buffer`` rows; past that a failed
    flush's rows are dropped, logged and counted in :attr:`dropped`). A row the database
    refuses for its values is dropped alone (logged, counted in :attr:`dropped`) and the
    flush's other rows written. ``clock``: the epoch seconds the retention is measured back
    from (called by the log's thread, under its lock; default ``time.time``)."""

    def __init__(
        self,
        path: str | Path,
        *,
        batch_size: int = 20_000,
        flush_interval_s: float = 1.0,
        retention_s: float | None = None,
        prune_interval_s: float | None = None,
        prune_limit: int = PRUNE_LIMIT,
        max_buffer: int = 100_000,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__()
        self.max_buffer = max_buffer  # rows a failing log keeps for the next flush
        # rows never written: a failed flush past max_buffer, a row refused for its values
        self.dropped = 0
        self.retention_s = retention_s if retention_s else None
        self.prune_interval_s = (
            prune_interval_s
            if prune_interval_s is not None
            else max(1.0, min(60.0, (retention_s or 240.0) / 4))
        )
        self.prune_limit = prune_limit
        self.clock = clock
        self.pruned = 0  # rows deleted by retention
        self.prune_more = False  # the last pass stopped at its limit: rows past the cutoff left
        self._last_prune = 0.0
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            str(self.path), check_same_thread=False, isolation_level=None
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA cache_size=-65536")  # 64 MiB: index inserts stay in memory
        self._conn.executescript(SCHEMA)
        _migrate(self._conn)
        self._conn.execute(
            "INSERT OR IGNORE INTO scoperouter_meta (key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )
        self._decisions: list[tuple[Any, ...]] = []  # DECISION_COLUMNS order
        self._log: list[tuple[Any, ...] | PendingOutcome] = []  # dispatch rows / outcomes
        self._events: list[tuple[Any, ...]] = []
        self._completions: list[tuple[Any, ...]] = []
        self._reports: list[tuple[Any, ...]] = []  # TRIGGER_REPORT_COLUMNS order
        self._links: list[Link] = []
        self._fill: list[tuple[str, str]] = []  # (fired_at or '', decision_id)
        self._last_flush = time.monotonic()

    # ------------------------------------------------------------------ storage
    _ids = staticmethod(ids_json)  # id lists are stored as JSON text

    def record_modes(self, modes: Mapping[str, str], at: datetime | None = None) -> bool:
        """Written at once (not buffered) as the ``scoperouter_meta`` row
        :data:`MODES_KEY`: ``{"at": ISO time, "modes": {processor: mode}}``."""
        value = json.dumps(
            {"at": iso(at or datetime.now(UTC)), "modes": dict(sorted(modes.items()))}
        )
        with self._lock:
            if self._conn is None:
                return False
            self._conn.execute(
                "INSERT OR REPLACE INTO scoperouter_meta (key, value) VALUES (?, ?)",
                (MODES_KEY, value),
            )
        return True

    def record_demo(self, info: Mapping[str, Any]) -> bool:
        """Written at once as the ``scoperouter_meta`` row :data:`DEMO_KEY` (replacing
        the previous demo's)."""
        with self._lock:
            if self._conn is None:
                return False
            self._conn.execute(
                "INSERT OR REPLACE INTO scoperouter_meta (key, value) VALUES (?, ?)",
                (DEMO_KEY, json.dumps(dict(info), sort_keys=True)),
            )
        return True

    _narrow_decisions = True

    def _store_decisions(self, event: Values, rows: list[Values]) -> None:
        self._decisions.extend(rows)
        self._events.append(event)

    def _store_outcome(self, o: PendingOutcome, complete: bool) -> None:
        t = o.trigger
        tid, proc, day, start, end, caused, fired = _outcome_fields(t.__dict__)
        if complete and fired is not None and len(caused) == 1:
            self._log.append(o)  # may fold (:mod:`.sqlite_fold`): its row built if not
            on = o.day  # :meth:`_link`, the trigger's fields read once
            self._links.append(
                (
                    tid,
                    proc,
                    on if start == day else start.isoformat(),
                    on if end == day else end.isoformat(),
                    caused,
                )
            )
        else:
            self._store_dispatch(t, o.row(ids_json), complete=complete)

    def _store_dispatch(self, trigger: Trigger, row: Values, *, complete: bool) -> None:
        self._log.append(row)
        if not complete:  # e.g. after a restart: take them from the decision rows
            self._fill.append((row[_AT] or "", row[0]))  # its dispatch key
        self._link(trigger, row[_DATE])

    def _link(self, trigger: Trigger, on: str) -> None:
        """The link of ``trigger`` (its date ``on`` as ISO text) to its decisions."""
        day, start, end = trigger.game_date, trigger.start_date, trigger.end_date
        self._links.append(
            (
                trigger.trigger_id,
                trigger.processor,
                on if start == day else start.isoformat(),
                on if end == day else end.isoformat(),
                trigger.caused_by,
            )
        )

    def _store_completion(self, row: Values) -> None:
        self._completions.append(row)

    def record_trigger_report(self, trigger_id: str, status: str, *, event_id: str) -> None:
        """The status (``success``, ``partial``, ``no_data``, ``failed``) that the completion
        event ``event_id`` reported for the run of ``trigger_id``, whatever its record_count
        (a completion row needs one). Kept once per trigger: a later report is ignored."""
        row = trigger_report_row(trigger_id, status, event_id=event_id)
        with self._lock:
            self._reports.append(row)
            self._maybe_flush()

    # ------------------------------------------------------------------ batching
    def _pending(self) -> int:
        # trigger reports (one per run) are not counted -- no extra work per ordinary event;
        # the next flush writes them (the daemon's log thread flushes every second when idle)
        return len(self._decisions) + len(self._log) + len(self._events) + len(self._completions)

    def _maybe_flush(self) -> None:
        if self._pending() >= self.batch_size or (
            time.monotonic() - self._last_flush >= self.flush_interval_s
        ):
            self.flush()
        elif self.prune_more:  # catching up: the next pass need not wait for a flush
            self._maybe_prune()

    def flush(self) -> None:
        with self._lock:
            conn = self._conn
            self._last_flush = time.monotonic()
            if conn is None or not (self._pending() or self._links or self._reports):
                self._maybe_prune()  # an idle log still prunes
                return
            decisions, log, events = self._decisions, self._log, self._events
            comps, links, fill = self._completions, self._links, self._fill
            reports = self._reports
            self._decisions, self._log, self._events = [], [], []
            self._completions, self._links, self._fill = [], [], []
            self._reports = []
            taken = Taken(decisions, log, events, comps, links, fill, reports)
            try:
                write_flush(conn, taken, refused=None)
            except DATA_ERRORS:
                # a value the database cannot take (not the disk): written again row by
                # row, the rows it refuses dropped -- else that one row failed every flush
                refused: list[Refused] = []
                try:
                    write_flush(conn, taken, refused=refused)
                except BaseException:
                    self._keep(taken)
                    raise
                self._dropped_refused(refused)
            except BaseException:
                self._keep(taken)
                raise
            self._maybe_prune()

    def _dropped_refused(self, refused: list[Refused]) -> None:
        """Count and log the rows the database refused (each with its ids and error)."""
        for r in refused:
            self.dropped += r.rows
            logger.error(
                "execution log: a %s row cannot be stored, dropped%s (%s): %s: %s",
                r.table,
                f" with its {r.rows - 1} decision rows" if r.rows > 1 else "",
                ", ".join(f"{k} {v!r}" for k, v in r.ids),
                type(r.error).__name__,
                str(r.error)[:200],
                extra={
                    "table": r.table,
                    "dropped": r.rows,
                    **{k: v if encodable(v) else repr(v) for k, v in r.ids if isinstance(v, str)},
                },
            )

    def _keep(self, taken: Taken) -> None:
        """A failed flush's rows back in the buffers (before anything buffered since), for
        the next flush; past ``max_buffer`` pending rows they are dropped, logged and
        counted (:attr:`dropped`) instead: a log that cannot write does not grow for ever."""
        decisions, log, events, comps, links, fill, reports = taken
        n = len(decisions) + len(log) + len(events) + len(comps) + len(reports)
        if self._pending() + len(self._reports) + n > self.max_buffer:
            self.dropped += n
            logger.error(
                "execution log: flush failed again with %d rows buffered; %d rows dropped",
                self._pending() + n,
                n,
                extra={"dropped": n},
            )
            return
        self._decisions[:0], self._log[:0], self._events[:0] = decisions, log, events
        self._completions[:0], self._links[:0], self._fill[:0] = comps, links, fill
        self._reports[:0] = reports

    def _maybe_prune(self) -> None:
        """A retention pass if one is due: ``prune_interval_s`` after the last pass, or
        :data:`CATCH_UP_PAUSE_S` after one that stopped at its limit."""
        if self.retention_s and time.monotonic() - self._last_prune >= (
            CATCH_UP_PAUSE_S if self.prune_more else self.prune_interval_s
        ):
            self.prune()

    def prune(self, now: float | None = None) -> int:
        """One retention pass: delete rows older than the retention (``now``: epoch seconds,
        default :attr:`clock`), at most ``prune_limit`` a table, in one transaction. Returns how
        many rows went; :attr:`prune_more` is set when a table's pass stopped at its limit
        (rows older than the cutoff are left for the next pass)."""
        if not self.retention_s:
            return 0
        with self._lock:
            conn = self._conn
            if conn is None:
                return 0
            t = ((self.clock or time.time)() if now is None else now) - self.retention_s
            cutoff = iso(datetime.fromtimestamp(t, UTC))
            assert cutoff is not None
            self.prune_more = False  # a failed pass is retried prune_interval_s later
            try:
                n, more = prune_pass(conn, cutoff, self.prune_limit)
            finally:
                self._last_prune = time.monotonic()
            self.prune_more = more
            self.pruned += n
            return n

    def close(self) -> None:
        with self._lock:
            if self._conn is None:
                return
            self.flush()
            with contextlib.suppress(sqlite3.Error):  # another reader may hold the WAL
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.close()
            self._conn = None

    def __enter__(self) -> SqliteExecutionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
