"""BigQuery execution log for production: batched streaming inserts (``insert_rows_json``).

The tables are created from ``sql/pipeline_execution_log.sql`` (partitioned by
``game_date``, clustered by ``processor, correlation_id``). BigQuery rows are never
updated (streamed rows cannot be for a while): the decision -> trigger link is rebuilt by
the view ``pipeline_execution_log_linked`` from the dispatch rows' ``caused_by``.

``client`` is a ``google.cloud.bigquery.Client`` (optional extra ``scoperouter[bigquery]``)
or anything with ``insert_rows_json(table, json_rows, row_ids=...) -> list[errors]``;
``google-cloud-bigquery`` is only imported by :func:`default_client`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

from scoperouter.errors import ScopeRouterError
from scoperouter.execution_log.api import COMPLETIONS_TABLE, EVENTS_TABLE, LOG_TABLE
from scoperouter.execution_log.base import RowExecutionLog
from scoperouter.execution_log.rows import (
    COMPLETION_COLUMNS,
    EVENT_COLUMNS,
    LIST_COLUMNS,
    LOG_COLUMNS,
    Row,
    Values,
)
from scoperouter.messages.models import Trigger

log = logging.getLogger(__name__)


class ExecutionLogError(ScopeRouterError):
    """The execution log could not be written (rows are kept for the next flush)."""


class InsertClient(Protocol):
    def insert_rows_json(
        self,
        table: Any,
        json_rows: Sequence[dict[str, Any]],
        *,
        row_ids: Sequence[str] | None = ...,
    ) -> Sequence[dict[str, Any]]: ...


def default_client(project: str | None = None) -> InsertClient:
    """A real BigQuery client (needs ``pip install scoperouter[bigquery]``)."""
    try:
        from google.cloud import bigquery
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ExecutionLogError(
            "the BigQuery execution log needs google-cloud-bigquery: pip install 'scoperouter[bigquery]'"
        ) from exc
    client: InsertClient = bigquery.Client(project=project)
    return client


def sibling_tables(table: str) -> dict[str, str]:
    """``project.dataset.pipeline_execution_log`` -> the ids of the three tables."""
    prefix = table.rsplit(".", 1)[0] + "." if "." in table else ""
    return {
        LOG_TABLE: table,
        EVENTS_TABLE: prefix + EVENTS_TABLE,
        COMPLETIONS_TABLE: prefix + COMPLETIONS_TABLE,
    }


_ID_COLUMN = {
    LOG_TABLE: "decision_id",
    EVENTS_TABLE: "event_id",
    COMPLETIONS_TABLE: "completion_id",
}


def row_insert_id(key: str, row: Row) -> str:
    """A row's ``insertId``: the same for a retried batch's copy, different for another
    row. An event is kept once by its date and id (SQLite's ``ix_events_once``: two events
    sharing an id but not a date are two); a decision row's id is of (event id, processor,
    date), so a second event of that id is told apart by its ``decided_at``."""
    if key == EVENTS_TABLE:
        return f"{row.get('game_date') or ''}|{row['event_id']}"
    if key == LOG_TABLE and row.get("kind") == "decision":
        return f"{row['decision_id']}|{row.get('decided_at') or ''}"
    return str(row[_ID_COLUMN[key]])


def _bq_row(row: Row) -> Row:
    """REPEATED columns take [] rather than null."""
    return {k: ([] if v is None and k in LIST_COLUMNS else v) for k, v in row.items()}


def _invalid_rows(errs: Sequence[dict[str, Any]], n: int) -> dict[int, str] | None:
    """The rows of a batch of ``n`` that BigQuery rejected for good (reason ``invalid``),
    index -> error text, when every other error is ``stopped`` (not inserted because of
    them); None when some error may pass on a retry (a backend error, an unknown shape)."""
    bad: dict[int, str] = {}
    for e in errs:
        i = e.get("index") if isinstance(e, dict) else None
        details = e.get("errors") if isinstance(e, dict) else None
        if not isinstance(i, int) or not 0 <= i < n or not isinstance(details, list):
            return None
        reasons = {d.get("reason") for d in details if isinstance(d, dict)}
        if not reasons or not reasons <= {"invalid", "stopped"}:
            return None
        if "invalid" in reasons:
            bad[i] = "; ".join(
                str(d.get("message") or d.get("reason")) for d in details if isinstance(d, dict)
            )
    return bad or None


# what serialising a request raises for a value JSON cannot carry (the real client runs
# ``json.dumps`` on it; ``requests`` refuses NaN): a row's fault only if the row alone
# raises it too (:func:`_unsendable`)
_DATA_ERRORS = (TypeError, ValueError, OverflowError)


def _refused_whole(exc: Exception) -> bool:
    """BigQuery refused the request as a whole (``google.api_core``'s ``BadRequest``, 400,
    or ``RequestEntityTooLarge``, 413: its ``code``), not a row of it nor the network."""
    return getattr(exc, "code", None) in (400, 413)


def isolate_budget(n: int) -> int:
    """Requests :func:`_isolate` may make for a batch of ``n`` rows (500: 80): a bad row
    costs about two per halving, so a few are found in one flush; a search it stops keeps
    its rows for the next flush, past the rows it wrote."""
    return 8 * n.bit_length() + 8


class Isolated(NamedTuple):
    """What :func:`_isolate` did with a batch: the rows that are gone from it (inserted, or
    dropped: ``bad``, index -> why), and the error that stopped it (the rest is kept).
    ``unproven``: when no request went through, the rows refused alone (index -> why),
    which a request without them going through would prove at fault; empty otherwise.
    ``requests``: how many it sent."""

    done: frozenset[int]
    bad: dict[int, str]
    error: Exception | None
    unproven: dict[int, str]
    requests: int


def _isolate(
    client: InsertClient, table: str, batch: list[Row], ids: list[str], refused: Exception
) -> Isolated:
    """Send ``batch`` (refused whole, with ``refused``) in halves, down to single rows (a
    batch of one is that row refused alone, no request sent): a row refused alone
    (400/413) is at fault only when another request of this call went through; a row
    BigQuery answers ``invalid`` is at fault whatever. Any other failure stops the search
    (its rows stay, and the error is returned), and so does its budget of requests
    (:func:`isolate_budget`: a few bad rows cost about two requests per halving; a fault of
    every request, the table's, must not cost one request per row each flush)."""
    inserted: list[int] = []
    bad: dict[int, str] = {}
    alone: dict[int, str] = {}
    budget = left = isolate_budget(len(batch))
    refusal = str(refused)  # the last refusal's text

    def go(idx: list[int]) -> Exception | None:
        nonlocal left, refusal
        if left <= 0:
            return ExecutionLogError(f"{refusal} (search stopped after {budget} requests)")
        left -= 1
        try:
            errs = client.insert_rows_json(
                table, [batch[i] for i in idx], row_ids=[ids[i] for i in idx]
            )
        except Exception as exc:
            if not _refused_whole(exc):
                return exc
            refusal = str(exc)
            if len(idx) == 1:
                alone[idx[0]] = f"refused alone: {exc}"
                return None
            return halves(idx)
        if errs:
            invalid = _invalid_rows(errs, len(idx))
            if invalid is None:  # transient: kept, as a batch's are
                return ExecutionLogError(f"{len(errs)} row error(s): {list(errs)[:3]}")
            bad.update((idx[j], why) for j, why in invalid.items())
            rest = [i for j, i in enumerate(idx) if j not in invalid]
            return go(rest) if rest else None
        inserted.extend(idx)
        return None

    def halves(idx: list[int]) -> Exception | None:
        half = len(idx) // 2
        return go(idx[:half]) or go(idx[half:])

    if len(batch) > 1:
        error = halves(list(range(len(batch))))  # the whole batch was refused already
    else:
        alone[0], error = f"refused alone: {refused}", None
    unproven: dict[int, str] = {}
    if inserted:
        bad.update(alone)
    elif alone:
        unproven = alone
        if error is None:
            error = _unproven_error(alone)
    return Isolated(frozenset(inserted) | frozenset(bad), bad, error, unproven, budget - left)


def _unproven_error(alone: dict[int, str]) -> ExecutionLogError:
    """The error of rows each refused alone, none proven at fault (nothing went through)."""
    return ExecutionLogError(
        f"every request refused whole, each row alone too ({len(alone)} rows kept): "
        + next(iter(alone.values()))
    )


def _unsendable(batch: Sequence[Row]) -> dict[int, Exception]:
    """The rows of ``batch`` that JSON cannot carry (a value of no JSON type, NaN or an
    infinity), index -> the error serialising them raises."""
    bad: dict[int, Exception] = {}
    for i, row in enumerate(batch):
        try:
            json.dumps(row, allow_nan=False)
        except _DATA_ERRORS as exc:
            bad[i] = exc
    return bad


class BigQueryExecutionLog(RowExecutionLog):
    """Buffers rows per table and streams them in batches of ``batch_size``.

    Each row's insertId is its primary id (decision_id / event_id / completion_id) so a
    retried batch is deduplicated by BigQuery (best effort, about a minute).
    A failed batch stays buffered (up to ``max_buffer`` rows per table, oldest dropped
    with a log line) and :meth:`flush` raises :class:`ExecutionLogError`. A row BigQuery
    rejects as ``invalid`` (it never will take it: schema, size) is dropped with a log line
    naming it and the error, and the rest of its batch (``stopped``: not inserted because
    of it) is sent again at once -- one bad row never blocks its table. So is a row the
    client cannot even send (serialising the request raises TypeError/ValueError/
    OverflowError, and that row alone does too: a value of no JSON type, NaN); a data error
    no row causes keeps the batch as a failure does. A request refused whole (HTTP 400 or
    413: a row too large for a request, a payload past the limit) is split in halves down
    to the rows at fault (:func:`_isolate`); such a row is dropped only when a request
    without it went through in the same flush -- when none did, the fault may be the
    table's or the request's, and every row is kept (rows refused alone before any request
    went through are set aside while the next batch is tried: :meth:`_flush_table`).
    :attr:`dropped` counts the rows never written (rejected, unsendable, refused alone or
    overflowed).
    """

    def __init__(
        self, client: InsertClient, table: str, batch_size: int = 500, *, max_buffer: int = 100_000
    ) -> None:
        super().__init__()
        self.client = client
        self.tables = sibling_tables(table)
        self.batch_size = batch_size
        self.max_buffer = max_buffer
        self._buf: dict[str, list[Row]] = {k: [] for k in self.tables}
        self._closed = False
        self.dropped = 0  # rows never written: rejected as invalid, unsendable, past max_buffer

    def _store_decisions(self, event: Values, rows: list[Values]) -> None:
        self._buf[EVENTS_TABLE].append(dict(zip(EVENT_COLUMNS, event, strict=True)))
        self._buf[LOG_TABLE].extend(dict(zip(LOG_COLUMNS, r, strict=True)) for r in rows)

    def _store_dispatch(self, trigger: Trigger, row: Values, *, complete: bool) -> None:
        # streamed rows are never updated: the view pipeline_execution_log_linked links it
        self._buf[LOG_TABLE].append(dict(zip(LOG_COLUMNS, row, strict=True)))

    def _store_completion(self, row: Values) -> None:
        self._buf[COMPLETIONS_TABLE].append(dict(zip(COMPLETION_COLUMNS, row, strict=True)))

    def _maybe_flush(self) -> None:
        if any(len(b) >= self.batch_size for b in self._buf.values()):
            self.flush()

    def flush(self) -> None:
        errors: list[str] = []
        with self._lock:
            # events first: a decision row never references an event that is not stored
            # (the log table waits, whole, for a flush whose events went through)
            for key in (EVENTS_TABLE, LOG_TABLE, COMPLETIONS_TABLE):
                if key == LOG_TABLE and errors and self._buf[LOG_TABLE]:
                    errors.append(f"{self.tables[key]}: not sent: the events table failed")
                    continue
                error = self._flush_table(key)
                if error is not None:
                    errors.append(f"{self.tables[key]}: {error}")
        if errors:
            raise ExecutionLogError("BigQuery insert failed: " + "; ".join(errors))

    def _flush_table(self, key: str) -> str | None:
        """Send one table's buffer in batches; the error that stopped it (its rows kept), or
        None. Rows refused alone while no request went through are set aside (and, when
        that emptied their batch, the next batch tried) until a request of this flush goes
        through -- then the rows set aside are at fault: dropped -- or the flush stops (an
        error, a search out of budget, or searches that set rows aside having spent
        ``1 + isolate_budget(batch_size)`` requests): it fails, and the rows set aside go to
        the buffer's end, so that the next flush tries rows it has not (rows are not
        ordered in BigQuery; a table refusing every request keeps every row, and costs at
        most twice that a flush)."""
        buf = self._buf[key]
        sent = 0
        wrote = False  # a request of this table went through in this flush
        aside: list[tuple[Row, str, str]] = []  # (buffered row, its id, why): refused alone
        spent, allowed = 0, 1 + isolate_budget(self.batch_size)  # on set-aside batches
        error: str | None = None
        while sent < len(buf):
            batch = [_bq_row(r) for r in buf[sent : sent + self.batch_size]]
            ids = [row_insert_id(key, r) for r in batch]
            names = [str(r[_ID_COLUMN[key]]) for r in batch]  # what an error line names
            try:
                errs = self.client.insert_rows_json(self.tables[key], batch, row_ids=ids)
            except _DATA_ERRORS as exc:  # serialising the request: a row's value?
                bad = _unsendable(batch)
                if not bad:  # no row at fault (a malformed table id...): keep them
                    error = str(exc)
                    break
                for i in sorted(bad, reverse=True):  # never sendable: drop, resend rest
                    self._drop(key, names[i], f"{type(bad[i]).__name__}: {bad[i]}")
                    del buf[sent + i]
                continue
            except Exception as exc:  # network, auth, quota: keep the rows
                if not _refused_whole(exc):
                    error = str(exc)
                    break
                # refused whole (a row too large?): halved down to the rows at fault
                iso = _isolate(self.client, self.tables[key], batch, ids, exc)
                wrote = wrote or len(iso.done) > len(iso.bad)
                for i, why in iso.bad.items():
                    self._drop(key, names[i], why)
                done = iso.done
                if iso.unproven:
                    aside += [(buf[sent + i], names[i], w) for i, w in iso.unproven.items()]
                    done |= frozenset(iso.unproven)
                    spent += 1 + iso.requests
                for i in sorted(done, reverse=True):  # gone from the buffer (for now)
                    del buf[sent + i]
                if iso.error is not None and (len(done) < len(batch) or spent >= allowed):
                    error = str(iso.error)
                    break
                continue
            if errs:
                invalid = _invalid_rows(errs, len(batch))
                if invalid is None:  # transient (or unknown): keep the batch
                    error = f"{len(errs)} row error(s): {errs[:3]}"
                    break
                for i in sorted(invalid, reverse=True):  # never accepted: drop, resend rest
                    self._drop(key, names[i], invalid[i])
                    del buf[sent + i]
                continue
            wrote = True
            sent += len(batch)
        if wrote:  # BigQuery took other rows of this flush: those set aside are at fault
            for _row, row_id, why in aside:
                self._drop(key, row_id, why)
        elif aside:  # nothing proves them: kept, behind the rows not tried yet
            if error is None:
                error = str(_unproven_error({i: a[2] for i, a in enumerate(aside)}))
            buf.extend(row for row, _id, _why in aside)
        rest = buf[sent:]
        if len(rest) > self.max_buffer:
            log.error("execution log: dropping %d oldest %s rows", len(rest) - self.max_buffer, key)
            self.dropped += len(rest) - self.max_buffer
            rest = rest[-self.max_buffer :]
        self._buf[key] = rest
        return error

    def _drop(self, key: str, row_id: str, why: str) -> None:
        """One row never written (rejected as invalid, or not sendable): logged, counted."""
        log.error(
            "execution log: BigQuery cannot take a %s row, dropped: %s %s: %s",
            key,
            _ID_COLUMN[key],
            row_id,
            why[:300],
            extra={"table": self.tables[key], "row_id": row_id},
        )
        self.dropped += 1

    def close(self) -> None:
        if self._closed:
            return
        self.flush()
        self._closed = True
