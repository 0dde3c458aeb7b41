"""Read an SQLite execution log back into typed records (for ``report`` and ``--what-if``).

The row converters (:func:`log_row`, :func:`completion_record`, :func:`event_record`) take
SQLite's text values and BigQuery's typed ones alike, so :mod:`.bigquery_reader` returns the
very same records. They check what they read: a value of another type (a timestamp without
its offset, text in a number column, JSON that is not an object) is a ValueError, which
:func:`read_log` (and ``read_bigquery_log``) raise as :class:`LogInvalidError` -- a damaged
log is one error, never a crash of the report reading it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol

from scoperouter.execution_log.api import (
    COMPLETIONS_TABLE,
    DEMO_KEY,
    EVENTS_TABLE,
    LOG_TABLE,
    MODES_KEY,
)
from scoperouter.execution_log.row_values import dispatch_key, event_from_row_json, ids_json
from scoperouter.execution_log.rows import LOG_COLUMNS
from scoperouter.messages.models import Event
from scoperouter.state.sqlite_schema import table_columns


class LogMissingError(FileNotFoundError):
    """There is no execution log at the given path."""


class LogInvalidError(ValueError):
    """The file is not a readable execution log (not SQLite, corrupt, or foreign tables)."""


@dataclass(frozen=True, slots=True)
class LogRow:
    """One row of pipeline_execution_log (decision or dispatch)."""

    decision_id: str
    kind: str
    event_id: str | None
    correlation_id: str | None
    processor: str
    phase: int | None
    granularity: str | None
    game_date: date | None
    action: str
    scope: str | None
    entity_type: str | None
    entity_ids: tuple[str, ...] | None
    entities_requested: int | None
    entities_universe: int | None
    entities_mapped: int | None
    reason: str | None
    trigger_id: str | None
    decided_at: datetime | None
    dispatched_at: datetime | None
    dispatch_status: str | None
    attempts: int | None
    latency_ms: float | None
    priority: str | None
    caused_by: tuple[str, ...]
    error: str | None


@dataclass(frozen=True, slots=True)
class CompletionRow:
    processor: str
    game_date: date | None
    trigger_id: str | None
    records_processed: int
    entities_changed: int | None
    duration_s: float
    reported_at: datetime | None


@dataclass(frozen=True, slots=True)
class EventRecord:
    event: Event
    decided_at: datetime
    as_of: date
    skips: tuple[tuple[str, int], ...] = ()  # aggregated skips (reason, processors), sorted

    @property
    def skipped(self) -> int:
        """How many processors skipped the event without a row of their own."""
        return sum(n for _, n in self.skips)


@dataclass(frozen=True)
class LogData:
    decisions: tuple[LogRow, ...]
    dispatches: tuple[LogRow, ...]
    completions: tuple[CompletionRow, ...]
    events: tuple[EventRecord, ...]
    since: date | None = None
    """The ``since`` the rows were read with: every table is cut by its own ``game_date``,
    so decision rows of a lookback can be on/after it while their event (an earlier date)
    is not."""
    modes: Mapping[str, str] | None = None
    """Each processor's effective mode as the daemon logged it at its last start (SQLite:
    ``scoperouter_meta`` :data:`~.api.MODES_KEY`); None when the log keeps none."""
    demo: Mapping[str, Any] | None = None
    """The demo that wrote the log (SQLite: ``scoperouter_meta`` :data:`~.api.DEMO_KEY`:
    ``seed``, ``game_date``, ``routes``); None for any other log."""

    @property
    def empty(self) -> bool:
        """Nothing logged: no rows and no event (an event every processor skipped has no
        row of its own, its skips are counted on its event row)."""
        return not (self.decisions or self.dispatches or self.completions or self.events)

    @property
    def decision_count(self) -> int:
        """Decisions made: the rows plus the skips aggregated on event rows."""
        return len(self.decisions) + sum(e.skipped for e in self.events)


EventKey = tuple[str, str]
"""An event as the log keeps it once: its id and its date (a date range's start; ``''``
when it has none) -- two events sharing an id on different dates are two."""


def event_key(rec: EventRecord) -> EventKey:
    """``rec``'s :data:`EventKey`."""
    e = rec.event
    on = e.game_date or e.start_date
    return (e.event_id, on.isoformat() if on is not None else "")


def decision_event_keys(data: LogData) -> list[EventKey | None]:
    """The event of each of ``data.decisions`` (same order; None without an event id): the
    event of its id decided at its ``decided_at`` (an event's decision rows carry its time;
    of several, the one of the row's date). A row whose event was not read (dated before
    ``since``, or never stored) gets ``(id, "decided <decided_at>")``: one key per event."""
    by_time: dict[tuple[str, datetime], list[EventKey]] = {}
    for rec in data.events:
        by_time.setdefault((rec.event.event_id, rec.decided_at), []).append(event_key(rec))
    out: list[EventKey | None] = []
    for r in data.decisions:
        if r.event_id is None:
            out.append(None)
            continue
        keys = by_time.get((r.event_id, r.decided_at)) if r.decided_at is not None else None
        if not keys:
            at = r.decided_at.isoformat() if r.decided_at is not None else ""
            out.append((r.event_id, f"decided {at}"))
        elif len(keys) == 1:
            out.append(keys[0])
        else:
            day = r.game_date.isoformat() if r.game_date is not None else None
            out.append(next((k for k in keys if k[1] == day), keys[0]))
    return out


class RowLike(Protocol):
    """A stored row by column name (``sqlite3.Row``, a BigQuery row, a dict)."""

    def __getitem__(self, key: str, /) -> Any: ...


def _d(v: object) -> date | None:
    """A DATE column: ISO text (SQLite) or a ``date`` (BigQuery); empty/NULL -> None."""
    if v is None or v == "":
        return None
    if isinstance(v, str):
        return date.fromisoformat(v)
    if isinstance(v, date) and not isinstance(v, datetime):
        return v
    raise ValueError(f"not a date: {v!r}")


def _t(v: object) -> datetime | None:
    """A TIMESTAMP column: ISO text with its offset (SQLite: the writer always gives one) or
    an aware ``datetime`` (BigQuery); a naive time could not be compared with the others."""
    if v is None or v == "":
        return None
    t = datetime.fromisoformat(v) if isinstance(v, str) else v
    if isinstance(t, datetime) and t.tzinfo is not None:
        return t
    raise ValueError(f"not a timezone-aware timestamp: {v!r}")


def _int(v: object) -> int | None:
    """An INTEGER / INT64 column: an int or NULL (text, a fraction or a bool is damage)."""
    if v is None or (isinstance(v, int) and not isinstance(v, bool)):
        return v
    raise ValueError(f"not an integer: {v!r}")


def _num(v: object) -> float | None:
    """A REAL / FLOAT64 column: a number or NULL."""
    if v is None or (isinstance(v, int | float) and not isinstance(v, bool)):
        return v
    raise ValueError(f"not a number: {v!r}")


def _count(v: object) -> int:
    """A count in a JSON column: an int (not NULL)."""
    n = _int(v)
    if n is None:
        raise ValueError("a count is null")
    return n


def _object(text: object, what: str) -> dict[str, Any]:
    """JSON text holding an object (a value of the log's JSON columns), else ValueError."""
    got = json.loads(text) if isinstance(text, str | bytes) else text
    if not isinstance(got, dict):
        raise ValueError(f"{what} is not a JSON object: {text!r}")
    return got


def _ids(v: object) -> tuple[str, ...] | None:
    """A list column: JSON text (SQLite) or a list (BigQuery REPEATED); empty/NULL -> None."""
    if v is None or v == "":
        return None
    if isinstance(v, str):
        return tuple(json.loads(v))
    if isinstance(v, list | tuple):
        return tuple(str(x) for x in v)
    raise ValueError(f"not a list of ids: {v!r}")


def log_row(r: RowLike) -> LogRow:
    """One ``pipeline_execution_log`` row as stored (SQLite text or BigQuery typed values)."""
    return LogRow(
        decision_id=r["decision_id"],
        kind=r["kind"],
        event_id=r["event_id"],
        correlation_id=r["correlation_id"],
        processor=r["processor"],
        phase=_int(r["phase"]),
        granularity=r["granularity"],
        game_date=_d(r["game_date"]),
        action=r["action"],
        scope=r["scope"],
        entity_type=r["entity_type"],
        entity_ids=_ids(r["entity_ids"]),
        entities_requested=_int(r["entities_requested"]),
        entities_universe=_int(r["entities_universe"]),
        entities_mapped=_int(r["entities_mapped"]),
        reason=r["reason"],
        trigger_id=r["trigger_id"],
        decided_at=_t(r["decided_at"]),
        dispatched_at=_t(r["dispatched_at"]),
        dispatch_status=r["dispatch_status"],
        attempts=_int(r["attempts"]),
        latency_ms=_num(r["latency_ms"]),
        priority=r["priority"],
        caused_by=_ids(r["caused_by"]) or (),
        error=r["error"],
    )


def completion_record(r: RowLike) -> CompletionRow:
    """One ``pipeline_execution_completions`` row as stored."""
    return CompletionRow(
        processor=r["processor"],
        game_date=_d(r["game_date"]),
        trigger_id=r["trigger_id"],
        records_processed=_int(r["records_processed"]) or 0,
        entities_changed=_int(r["entities_changed"]),
        duration_s=float(_num(r["duration_s"]) or 0.0),
        reported_at=_t(r["reported_at"]),
    )


def event_record(r: RowLike) -> EventRecord | None:
    """One ``pipeline_execution_events`` row (None without ``decided_at`` or ``as_of``)."""
    dec = _t(r["decided_at"])
    asof = _d(r["as_of"])
    if dec is None or asof is None:
        return None
    try:
        raw = r["skips"]
    except (IndexError, KeyError):  # a log written before the column existed
        raw = None
    counts = _object(raw, "skips").items() if raw else ()
    skips = tuple(sorted((str(k), _count(v)) for k, v in counts))
    text = event_from_row_json(r["event_json"], r["event_id"], r["source"])
    return EventRecord(Event.model_validate_json(text), dec, asof, skips)


# a folded row (:mod:`.sqlite_fold`) holds the dispatch-only columns of its decision's
# first outcome; read as two rows, each at its time (the dispatch part's: the trigger's
# fired_at), among rows of the same time at the folded row's place (an unfolded log has
# the dispatch row after its flush's decision rows: only ties may come in another order)
_DISPATCH_ONLY = ("dispatched_at", "dispatch_status", "attempts", "latency_ms", "error")


def _folded_select(cond: str) -> str:
    """Every log row (a folded row without its outcome) and the dispatch part of every
    folded row, ordered by ``decided_at`` then rowid, as ``SELECT *`` of unfolded rows."""
    names = [c for c in LOG_COLUMNS if c not in _DISPATCH_ONLY]
    first = ", ".join(
        [
            *names,
            *(f"CASE WHEN kind = 'decision' THEN NULL ELSE {c} END AS {c}" for c in _DISPATCH_ONLY),
        ]
    )
    part = {"decided_at": "fired_at AS decided_at", "kind": "'dispatch' AS kind",
            "action": "'dispatch' AS action", "entities_mapped": "NULL AS entities_mapped",
            "decision_id": "NULL AS decision_id", "caused_by": "NULL AS caused_by"}  # fmt: skip
    second = ", ".join([*(part.get(c, c) for c in names), *_DISPATCH_ONLY])
    where = f"{cond} AND" if cond else " WHERE"
    return (
        f"SELECT {first}, rowid AS _rid, 0 AS _part FROM {LOG_TABLE}{cond} UNION ALL "
        f"SELECT {second}, rowid AS _rid, 1 AS _part FROM {LOG_TABLE}{where} fired_at IS NOT NULL "
        "AND kind = 'decision' ORDER BY decided_at, _rid, _part"
    )


def _folded_dispatch(r: sqlite3.Row) -> dict[str, Any]:
    """The dispatch row a folded row replaced, as stored (its id and ``caused_by`` derived
    as :func:`~.rows.dispatch_row` built them)."""
    row = dict(r)
    row["decision_id"] = dispatch_key(
        row["trigger_id"], row["dispatch_status"], row["attempts"], row["dispatched_at"]
    )
    row["caused_by"] = ids_json([row["event_id"]])
    return row


def stored_log_rows(conn: sqlite3.Connection, since: date | None = None) -> Iterator[RowLike]:
    """The ``pipeline_execution_log`` rows (``game_date`` on/after ``since`` when given) as
    a writer that never folds would have stored them, ordered by ``decided_at`` then
    insertion: a folded row (:mod:`.sqlite_fold`) gives its decision row and its dispatch
    row. ``conn`` has ``row_factory = sqlite3.Row``."""
    cond, args = ("", ()) if since is None else (" WHERE game_date >= ?", (since.isoformat(),))
    if "fired_at" not in table_columns(conn, LOG_TABLE):  # written before rows were folded
        yield from conn.execute(f"SELECT * FROM {LOG_TABLE}{cond} ORDER BY decided_at, rowid", args)
        return
    for r in conn.execute(_folded_select(cond), args + args):
        yield r if r["_part"] == 0 else _folded_dispatch(r)


def log_data(
    rows: Iterable[LogRow],
    completions: Iterable[CompletionRow],
    events: Iterable[EventRecord],
    since: date | None = None,
    modes: Mapping[str, str] | None = None,
    demo: Mapping[str, Any] | None = None,
) -> LogData:
    """Split the log rows into decisions and dispatches (order kept)."""
    rows = tuple(rows)
    return LogData(
        decisions=tuple(r for r in rows if r.kind == "decision"),
        dispatches=tuple(r for r in rows if r.kind == "dispatch"),
        completions=tuple(completions),
        events=tuple(events),
        since=since,
        modes=modes,
        demo=demo,
    )


def read_log(path: str | Path, *, since: date | None = None) -> LogData:
    """Everything in the log (rows whose ``game_date`` is on/after ``since`` when given).

    Raises :class:`LogMissingError` when the file does not exist and
    :class:`LogInvalidError` when it is not a readable execution log -- also a database
    with tables but no ``pipeline_execution_log`` (the state store beside it, say): the
    writer creates that table when it opens, so only a database with no table at all reads
    as an empty log.
    """
    p = Path(path)
    if not p.is_file():
        raise LogMissingError(str(p))
    try:
        return _read(p, since)
    except LogInvalidError:
        raise
    except sqlite3.DatabaseError as exc:
        raise LogInvalidError(f"{p} is not a readable SQLite execution log ({exc})") from None
    except (
        IndexError,
        KeyError,
        TypeError,
        ValueError,
    ) as exc:  # a foreign table of the same name, a damaged value in any table
        why = f"a value this version cannot read: {exc}"
        raise LogInvalidError(f"{p} is not a readable SQLite execution log ({why})") from None


def _read(p: Path, since: date | None) -> LogData:
    conn = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if LOG_TABLE not in tables:
            if tables:  # the writer creates its tables first thing: another database
                raise LogInvalidError(
                    f"{p} is not a readable SQLite execution log (it has tables, but no "
                    f"{LOG_TABLE})"
                )
            return LogData((), (), (), ())  # an empty database: nothing logged yet
        cond, args = ("", ()) if since is None else (" WHERE game_date >= ?", (since.isoformat(),))
        rows = [log_row(r) for r in stored_log_rows(conn, since)]
        comps: list[CompletionRow] = []
        if COMPLETIONS_TABLE in tables:
            comps = [
                completion_record(r)
                for r in conn.execute(
                    f"SELECT * FROM {COMPLETIONS_TABLE}{cond} ORDER BY reported_at, rowid", args
                )
            ]
        events: list[EventRecord] = []
        if EVENTS_TABLE in tables:
            for r in conn.execute(
                f"SELECT * FROM {EVENTS_TABLE}{cond} ORDER BY decided_at, rowid", args
            ):
                rec = event_record(r)
                if rec is not None:
                    events.append(rec)
        modes = demo = None
        if "scoperouter_meta" in tables:
            got = conn.execute(
                "SELECT value FROM scoperouter_meta WHERE key = ?", (MODES_KEY,)
            ).fetchone()
            if got is not None:
                logged = _object(_object(got[0], MODES_KEY)["modes"], f"{MODES_KEY} modes")
                modes = {str(k): str(v) for k, v in logged.items()}
            got = conn.execute(
                "SELECT value FROM scoperouter_meta WHERE key = ?", (DEMO_KEY,)
            ).fetchone()
            if got is not None:
                demo = _object(got[0], DEMO_KEY)
    finally:
        conn.close()
    return log_data(rows, comps, events, since, modes, demo)
