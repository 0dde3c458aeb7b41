"""Read the BigQuery execution log back into the records of :mod:`.reader` (``report --bigquery``).

The three tables written by :class:`~scoperouter.execution_log.bigquery.BigQueryExecutionLog`
(``sql/pipeline_execution_log.sql``) are read with one parameterised query each: the table
ids are validated (``PROJECT.DATASET.TABLE``, letters, digits, ``_`` and project ``-``
only) before they are quoted into the SQL, and ``--since`` is a ``DATE`` query parameter,
so that ``game_date`` partitions before it are not scanned.

BigQuery rows are never updated, so what the SQLite writer does in place is done here
after reading, to return exactly the records :func:`~.reader.read_log` returns:

* rows are ordered by ``decided_at`` like SQLite's ``ORDER BY decided_at, rowid``; BigQuery
  has no insertion order, so rows of the same ``decided_at`` are ordered by kind, dispatch
  time, attempts and id instead (SQLite has them in the order they were written);
* rows the streaming API delivered twice (its insertId deduplication is best effort) are
  kept once, the first, like SQLite's ``INSERT OR IGNORE``;
* a ``run`` decision gets the ``trigger_id`` of the first dispatch whose ``caused_by``
  names its event, on the same processor and date (what the view
  ``pipeline_execution_log_linked`` does, and what SQLite writes when the dispatch is
  logged);
* a dispatch row without phase, granularity or universe (logged by a process that did not
  log the decisions) takes them from the decision rows of its processor and date;
* ``entity_ids`` comes back ``[]`` where the writer had null (REPEATED columns cannot be
  null): read as None, as SQLite has it.

``client`` is anything with :meth:`QueryClient.run_query`; :func:`default_client` wraps a
``google.cloud.bigquery.Client`` (optional extra ``scoperouter[bigquery]``), and is the only
place that imports ``google-cloud-bigquery``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any, NamedTuple, Protocol, TypeVar

from scoperouter.execution_log.api import COMPLETIONS_TABLE, EVENTS_TABLE, LOG_TABLE
from scoperouter.execution_log.bigquery import ExecutionLogError, sibling_tables
from scoperouter.execution_log.reader import (
    CompletionRow,
    EventRecord,
    LogData,
    LogInvalidError,
    LogRow,
    RowLike,
    completion_record,
    event_record,
    log_data,
    log_row,
)
from scoperouter.execution_log.rows import COMPLETION_COLUMNS, EVENT_COLUMNS, LOG_COLUMNS

PROJECT_ID = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]")
"""A Google Cloud project id (6-30 characters: lower-case letters, digits, hyphens)."""

TABLE_ID = re.compile(
    r"(?P<project>[a-z][a-z0-9-]{4,28}[a-z0-9])"
    r"\.(?P<dataset>[A-Za-z0-9_]{1,1024})"
    r"\.(?P<table>[A-Za-z0-9_]{1,1024})"
)
"""``PROJECT.DATASET.TABLE``: a Google Cloud project id (6-30 characters: lower-case letters,
digits and hyphens, starting with a letter), then dataset and table names of letters,
digits and underscores. Anything else (quotes, backticks, spaces, domain-scoped projects)
is refused, so the id is safe to quote into the SQL."""


class QueryParam(NamedTuple):
    """One named query parameter (``@name`` in the SQL) of a BigQuery standard SQL type."""

    name: str
    type: str  # e.g. "DATE"
    value: Any


class QueryClient(Protocol):
    """What the reader needs from BigQuery: run one parameterised query, get its rows
    (TIMESTAMP as aware ``datetime``, DATE as ``date``, REPEATED as lists)."""

    def run_query(self, sql: str, params: Sequence[QueryParam]) -> Iterable[RowLike]: ...


def validate_table_id(table: str) -> str:
    """``table`` when it is a strict ``PROJECT.DATASET.TABLE`` id, else :class:`ExecutionLogError`."""
    if not TABLE_ID.fullmatch(table):
        raise ExecutionLogError(
            f"invalid BigQuery table id {table!r}: expected PROJECT.DATASET.TABLE "
            "(e.g. my-project.nba_orchestration.pipeline_execution_log)"
        )
    return table


def table_project(table: str) -> str:
    """The project part of a valid table id."""
    m = TABLE_ID.fullmatch(validate_table_id(table))
    assert m is not None
    return m["project"]


class GoogleQueryClient:
    """:class:`QueryClient` over a ``google.cloud.bigquery.Client``."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def run_query(self, sql: str, params: Sequence[QueryParam]) -> Iterable[RowLike]:
        bigquery = importlib.import_module("google.cloud.bigquery")
        config = bigquery.QueryJobConfig(
            query_parameters=[
                bigquery.ScalarQueryParameter(p.name, p.type, p.value) for p in params
            ]
        )
        rows: Iterable[RowLike] = self.client.query(sql, job_config=config).result()
        return rows


def default_client(project: str | None = None) -> QueryClient:
    """A real BigQuery client (needs ``pip install 'scoperouter[bigquery]'`` and credentials)."""
    try:
        bigquery = importlib.import_module("google.cloud.bigquery")
    except ImportError as exc:
        raise ExecutionLogError(
            "reading the BigQuery execution log needs google-cloud-bigquery: "
            "pip install 'scoperouter[bigquery]'"
        ) from exc
    try:
        client = bigquery.Client(project=project)
    except Exception as exc:  # no credentials, no project
        raise ExecutionLogError(f"cannot create a BigQuery client: {_one_line(exc)}") from exc
    return GoogleQueryClient(client)


def _one_line(exc: BaseException, limit: int = 500) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def select_sql(
    table: str, columns: Sequence[str], since: date | None
) -> tuple[str, list[QueryParam]]:
    """The query for one table: the listed columns, ``game_date >= @since`` when given."""
    sql = f"SELECT {', '.join(columns)} FROM `{validate_table_id(table)}`"
    if since is None:
        return sql, []
    return sql + " WHERE game_date >= @since", [QueryParam("since", "DATE", since)]


_MIN = datetime.min.replace(tzinfo=UTC)
T = TypeVar("T")


def _first_per_id(items: Iterable[tuple[str, T]]) -> list[T]:
    seen: set[str] = set()
    out: list[T] = []
    for key, item in items:
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _at(v: datetime | None) -> tuple[bool, datetime]:
    """SQLite orders NULL first."""
    return (v is not None, v or _MIN)


def _log_order(r: LogRow) -> tuple[Any, ...]:
    # copies of one row tie up to the id; a repeated outcome logged after a restart lacks
    # what the registry filled in the first: the fuller copy first (the one kept)
    return (
        *_at(r.decided_at),
        r.kind,
        *_at(r.dispatched_at),
        r.attempts or 0,
        r.decision_id,
        r.entity_type is None,
        r.phase is None,
        r.granularity is None,
        r.entities_universe is None,
    )


def _link_and_fill(rows: list[LogRow]) -> list[LogRow]:
    """Decision -> trigger link and dispatch-row fill, as the SQLite writer does in place."""
    first_trigger: dict[tuple[str, str, date | None], str] = {}
    for x in sorted(
        (r for r in rows if r.kind == "dispatch" and r.trigger_id),
        key=lambda r: (*_at(r.dispatched_at), r.attempts or 0),
    ):
        assert x.trigger_id is not None
        for ev in x.caused_by:
            first_trigger.setdefault((ev, x.processor, x.game_date), x.trigger_id)
    known: dict[tuple[str, date | None], list[LogRow]] = {}
    for r in rows:
        if r.kind == "decision":
            known.setdefault((r.processor, r.game_date), []).append(r)
    out: list[LogRow] = []
    for r in rows:
        if r.kind == "decision" and r.action == "run" and r.trigger_id is None and r.event_id:
            tid = first_trigger.get((r.event_id, r.processor, r.game_date))
            if tid is not None:
                r = replace(r, trigger_id=tid)
        elif r.kind == "dispatch" and (
            r.phase is None or r.granularity is None or r.entities_universe is None
        ):
            decs = known.get((r.processor, r.game_date), [])
            r = replace(
                r,
                phase=r.phase if r.phase is not None else _max(d.phase for d in decs),
                granularity=r.granularity or _max(d.granularity for d in decs),
                entities_universe=r.entities_universe
                if r.entities_universe is not None
                else _max(d.entities_universe for d in decs),
            )
            if r.scope == "date" and r.entities_requested is None:
                r = replace(r, entities_requested=r.entities_universe)
        out.append(r)
    return out


def _max(values: Iterable[Any]) -> Any:
    """SQL ``MAX``: ignores NULLs, NULL when none."""
    vals = [v for v in values if v is not None]
    return max(vals) if vals else None


def _bq_log_row(r: RowLike) -> LogRow:
    row = log_row(r)
    return replace(row, entity_ids=None) if row.entity_ids == () else row


def read_bigquery_log(client: QueryClient, table: str, *, since: date | None = None) -> LogData:
    """Everything in the BigQuery log whose main table is ``table`` (``PROJECT.DATASET.
    pipeline_execution_log``; the events and completions tables are its siblings), rows
    whose ``game_date`` is on/after ``since`` when given.

    Raises :class:`ExecutionLogError` for an invalid table id or a failed query and
    :class:`~.reader.LogInvalidError` for rows this version cannot read.
    """
    tables = sibling_tables(validate_table_id(table))
    rows = _select(client, tables[LOG_TABLE], LOG_COLUMNS, since, _bq_log_row)
    comps = _select(client, tables[COMPLETIONS_TABLE], COMPLETION_COLUMNS, since, completion_record)
    events = _select(  # kept once by date and id, as SQLite's ix_events_once
        client, tables[EVENTS_TABLE], EVENT_COLUMNS, since, event_record, key=_event_key
    )
    rows.sort(key=lambda t: _log_order(t[1]))
    comps.sort(key=lambda t: (*_at(t[1].reported_at), t[0]))
    evs = _first_per_id(
        sorted(((k, e) for k, e in events if e is not None), key=lambda t: (t[1].decided_at, t[0]))
    )
    return log_data(
        _link_and_fill(_first_per_id(_first_deliveries(rows, evs))),
        _first_per_id(comps),
        evs,
        since,
    )


def _event_key(r: RowLike) -> str:
    day = r["game_date"]
    return f"{day.isoformat() if isinstance(day, date) else day or ''}|{r['event_id']}"


def _first_deliveries(
    rows: list[tuple[str, LogRow]], events: list[EventRecord]
) -> list[tuple[str, LogRow]]:
    """``rows`` keyed as SQLite keeps them: an event's decision rows only from the delivery
    whose event row is kept (a redelivery's, written once its event row was, are not:
    SQLite never writes them), each keyed by its id and ``decided_at`` (an id is of (event
    id, processor, date): two events sharing an id but not a date both keep theirs). A
    decision row whose event was not read (cut by ``since``, or never stored) is kept."""
    first = {(e.event.event_id, e.decided_at) for e in events}
    read = {e.event.event_id for e in events}
    out: list[tuple[str, LogRow]] = []
    for key, r in rows:
        if r.kind == "decision":
            if r.event_id in read and (r.event_id, r.decided_at) not in first:
                continue
            key = f"{key}|{r.decided_at.isoformat() if r.decided_at else ''}"
        out.append((key, r))
    return out


_R = TypeVar("_R", LogRow, CompletionRow, EventRecord | None)


def _select(
    client: QueryClient,
    table: str,
    columns: Sequence[str],
    since: date | None,
    convert: Callable[[RowLike], _R],
    key: Callable[[RowLike], str] | None = None,
) -> list[tuple[str, _R]]:
    """(row key, record) of every row of one table (the key: ``key`` of the row, else its
    id, the first column)."""
    sql, params = select_sql(table, columns, since)
    id_col = columns[0]
    key = key or (lambda r: str(r[id_col]))
    try:
        raw: list[RowLike] = list(client.run_query(sql, params))
    except Exception as exc:  # network, auth, missing table, quota
        raise ExecutionLogError(f"BigQuery query on {table} failed: {_one_line(exc)}") from exc
    try:
        return [(key(r), convert(r)) for r in raw]
    except (IndexError, KeyError, TypeError, ValueError) as exc:
        raise LogInvalidError(
            f"{table} has rows this version cannot read ({_one_line(exc)})"
        ) from exc


__all__ = [
    "TABLE_ID",
    "GoogleQueryClient",
    "QueryClient",
    "QueryParam",
    "default_client",
    "read_bigquery_log",
    "select_sql",
    "table_project",
    "validate_table_id",
]
