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
from typing import Any, Protocol

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
    no row causes keeps the batch as a failure does. :attr:`dropped` counts the rows never
    written (rejected, unsendable or overflowed).
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
            for key in (EVENTS_TABLE, LOG_TABLE, COMPLETIONS_TABLE):
                buf = self._buf[key]
                sent = 0
                while sent < len(buf):
                    batch = [_bq_row(r) for r in buf[sent : sent + self.batch_size]]
                    ids = [str(r[_ID_COLUMN[key]]) for r in batch]
                    try:
                        errs = self.client.insert_rows_json(self.tables[key], batch, row_ids=ids)
                    except _DATA_ERRORS as exc:  # serialising the request: a row's value?
                        bad = _unsendable(batch)
                        if not bad:  # no row at fault (a malformed table id...): keep them
                            errors.append(f"{self.tables[key]}: {exc}")
                            break
                        for i in sorted(bad, reverse=True):  # never sendable: drop, resend rest
                            self._drop(key, ids[i], f"{type(bad[i]).__name__}: {bad[i]}")
                            del buf[sent + i]
                        continue
                    except Exception as exc:  # network, auth, quota: keep the rows
                        errors.append(f"{self.tables[key]}: {exc}")
                        break
                    if errs:
                        invalid = _invalid_rows(errs, len(batch))
                        if invalid is None:  # transient (or unknown): keep the batch
                            errors.append(
                                f"{self.tables[key]}: {len(errs)} row error(s): {errs[:3]}"
                            )
                            break
                        for i in sorted(invalid, reverse=True):  # never accepted: drop, resend rest
                            self._drop(key, ids[i], invalid[i])
                            del buf[sent + i]
                        continue
                    sent += len(batch)
                rest = buf[sent:]
                if len(rest) > self.max_buffer:
                    log.error(
                        "execution log: dropping %d oldest %s rows",
                        len(rest) - self.max_buffer,
                        key,
                    )
                    self.dropped += len(rest) - self.max_buffer
                    rest = rest[-self.max_buffer :]
                self._buf[key] = rest
        if errors:
            raise ExecutionLogError("BigQuery insert failed: " + "; ".join(errors))

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
