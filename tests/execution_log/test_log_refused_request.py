"""The BigQuery execution log when BigQuery refuses a request whole (HTTP 400 or 413: a
row too large for a request, a payload past the limit): the rows at fault are found by
halving and dropped, counted and logged, the others written once -- and a refusal of every
request (the table's fault, not a row's) keeps every row, within a bounded number of
requests per flush."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from google.api_core.exceptions import BadRequest, from_http_status
from hypothesis import given, settings
from hypothesis import strategies as st
from logsupport import DAY, T0, FakeInsertClient, row_ids

from scoperouter.execution_log import BigQueryExecutionLog, ExecutionLogError
from scoperouter.execution_log.bigquery import isolate_budget
from scoperouter.messages.models import Event
from scoperouter.processor_registry.compiled import CompiledRegistry

EVENTS = "p.d.pipeline_execution_events"


def TOO_LARGE(msg: str) -> Exception:
    """What google-api-core raises for an HTTP 413 (no class of its own: ``code`` 413)."""
    return from_http_status(413, msg)


class _RefusingClient(FakeInsertClient):
    """insert_rows_json that refuses a whole request holding a row of ``bad`` (its id),
    every request when ``refuse_all``, with ``error``; ``down_after``: the request of that
    number (1-based) fails as a network error instead. Stored ids per table, in order."""

    def __init__(
        self,
        bad: Sequence[str] = (),
        *,
        error: Callable[[str], Exception] = BadRequest,
        refuse_all: bool = False,
        down_after: int | None = None,
    ) -> None:
        self.bad, self.error, self.refuse_all = set(bad), error, refuse_all
        self.down_after = down_after
        self.requests: dict[str, int] = {}
        self.stored: dict[str, list[str]] = {}

    def insert(self, table: str, rows: list[dict[str, Any]], ids: list[str]) -> list[Any]:
        ids = row_ids(rows)  # the rows' own ids (insertIds may carry more)
        n = self.requests[table] = self.requests.get(table, 0) + 1
        if table == EVENTS and n == self.down_after:
            raise ConnectionError("network down")
        if self.refuse_all or self.bad & set(ids):
            raise self.error("Request payload size exceeds the limit: 10485760 bytes.")
        self.stored.setdefault(table, []).extend(ids)
        return []


def _log(
    client: _RefusingClient, n: int, registry: CompiledRegistry, batch: int = 1000
) -> BigQueryExecutionLog:
    """A log holding ``n`` event rows e1..en (no decisions: one table to follow), in batches
    of ``batch`` rows when flushed (none is flushed here: ``n`` below 1000)."""
    log = BigQueryExecutionLog(client, "p.d.pipeline_execution_log", batch_size=1000)
    for i in range(1, n + 1):
        e = Event.model_validate(
            {"event_id": f"e{i}", "source": "s", "game_date": DAY, "changed_fields": ["x"]}
        )
        log.record_decisions(e, [], T0, registry=registry)
    log.batch_size = batch
    return log


def _ids(n: int) -> list[str]:
    return [f"e{i}" for i in range(1, n + 1)]


@pytest.mark.parametrize(
    ("n", "bad", "error"),
    [
        (6, ["e3"], BadRequest),
        (6, ["e3"], TOO_LARGE),
        (7, ["e1", "e7"], BadRequest),
        (2, ["e2"], BadRequest),
        (500, ["e250", "e251", "e499"], BadRequest),
    ],
)
def test_rows_refused_alone_are_dropped_and_the_rest_written_once(
    caplog: pytest.LogCaptureFixture,
    registry: CompiledRegistry,
    n: int,
    bad: list[str],
    error: Callable[[str], Exception],
) -> None:
    """Rows that make BigQuery refuse the whole request are found by halving, dropped with a count and a log line; every other row is written once, in order, within the request budget."""
    client = _RefusingClient(bad, error=error)
    log = _log(client, n, registry)
    with caplog.at_level(logging.ERROR):
        log.flush()
    assert client.stored[EVENTS] == [x for x in _ids(n) if x not in bad]
    assert log.dropped == len(bad)
    msgs = [r.getMessage() for r in caplog.records]
    assert all(any(f"event_id {x}:" in m and "refused alone" in m for m in msgs) for x in bad)
    assert client.requests[EVENTS] <= 1 + isolate_budget(n)
    log.flush()  # nothing left, nothing sent twice
    assert client.stored[EVENTS] == [x for x in _ids(n) if x not in bad]


@pytest.mark.parametrize("n", [1, 2, 9, 500])
def test_a_refusal_of_every_request_keeps_every_row_in_bounded_requests(
    registry: CompiledRegistry, n: int
) -> None:
    """When every request is refused (the table's fault, or a lone row's that nothing proves), nothing is dropped, the flush fails, at most the budget of requests is spent, and the rows go once BigQuery takes them."""
    client = _RefusingClient(refuse_all=True)
    log = _log(client, n, registry)
    with pytest.raises(ExecutionLogError, match="payload size"):
        log.flush()
    assert log.dropped == 0 and EVENTS not in client.stored
    assert client.requests[EVENTS] <= 1 + isolate_budget(n)
    client.refuse_all = False
    log.flush()  # rows the search refused alone went behind the others: BigQuery keeps no order
    assert sorted(client.stored[EVENTS]) == sorted(_ids(n)) and log.dropped == 0


def test_a_network_error_during_the_search_keeps_what_was_not_written(
    registry: CompiledRegistry,
) -> None:
    """A network error while halving stops the search: rows written before it are not sent again, the rest (the bad row too) stay for the next flush."""
    client = _RefusingClient(["e4"], down_after=3)  # whole, first half (ok), second half: down
    log = _log(client, 4, registry)
    with pytest.raises(ExecutionLogError, match="network down"):
        log.flush()
    assert client.stored[EVENTS] == ["e1", "e2"] and log.dropped == 0
    log.flush()
    assert client.stored[EVENTS] == ["e1", "e2", "e3"] and log.dropped == 1


@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 64).flatmap(
        lambda n: st.tuples(st.just(n), st.sets(st.integers(1, n), max_size=2))
    )
)
def test_halving_finds_exactly_the_refused_rows(
    registry: CompiledRegistry, case: tuple[int, set[int]]
) -> None:
    """Against the plain answer (every row but the refused ones, in order): one flush writes exactly those and drops exactly the refused, when at least one row is good."""
    n, bad_at = case
    if len(bad_at) == n:
        bad_at = set(list(bad_at)[:-1])
    bad = [f"e{i}" for i in sorted(bad_at)]
    client = _RefusingClient(bad)
    log = _log(client, n, registry)
    log.flush()
    assert client.stored.get(EVENTS, []) == [x for x in _ids(n) if x not in bad]
    assert log.dropped == len(bad)


@pytest.mark.parametrize(
    ("n", "batch", "bad"),
    [
        (5, 1, ["e1"]),  # batch_size 1: the refused row at the head, alone in its request
        (6, 2, ["e1", "e2"]),  # a head batch of bad rows only, good rows after it
        (6, 2, ["e2", "e3"]),  # two batches, each proven by the other's good row
        (3, 1, ["e3"]),  # the last row: proven by the rows written before it
        (6, 1, ["e1", "e2", "e3"]),  # three bad rows in a row at the head
    ],
)
def test_a_head_batch_refused_row_by_row_is_proven_by_the_next_batch(
    registry: CompiledRegistry, n: int, batch: int, bad: list[str]
) -> None:
    """A batch whose every row BigQuery refuses alone does not block its table: the next batches are sent in the same flush, and once a request goes through the refused rows are dropped and every other row is written once, in order."""
    client = _RefusingClient(bad)
    log = _log(client, n, registry, batch)
    log.flush()
    assert client.stored[EVENTS] == [x for x in _ids(n) if x not in bad]
    assert log.dropped == len(bad)
    log.flush()
    assert client.stored[EVENTS] == [x for x in _ids(n) if x not in bad]


@pytest.mark.parametrize(("n", "batch"), [(5, 1), (6, 2), (999, 1), (999, 3)])
def test_small_batches_all_refused_keep_every_row_in_bounded_requests(
    registry: CompiledRegistry, n: int, batch: int
) -> None:
    """With small batches too, a refusal of every request drops nothing and sends at most twice one batch's search a flush (not one request per buffered row); once BigQuery takes rows again each is written once (rows set aside went behind: BigQuery keeps no order)."""
    client = _RefusingClient(refuse_all=True)
    log = _log(client, n, registry, batch)
    for _ in range(3):
        before = client.requests.get(EVENTS, 0)
        with pytest.raises(ExecutionLogError, match="payload size"):
            log.flush()
        assert client.requests[EVENTS] - before <= 2 * (1 + isolate_budget(batch))
    assert log.dropped == 0 and EVENTS not in client.stored
    client.refuse_all = False
    log.flush()
    assert sorted(client.stored[EVENTS]) == sorted(_ids(n)) and log.dropped == 0


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 40).flatmap(
        lambda n: st.tuples(
            st.just(n), st.integers(1, n), st.sets(st.integers(1, n), max_size=n - 1)
        )
    )
)
def test_flushes_write_every_good_row_once_whatever_the_batch_size(
    registry: CompiledRegistry, case: tuple[int, int, set[int]]
) -> None:
    """Against the plain answer (every row but the refused ones, once; each refused one dropped): whatever the batch size and wherever the refused rows are, flushes -- with a new good row arriving after each failed one, as in a live log -- get there, each failed flush spending at most its batches and two searches."""
    n, batch, bad_at = case
    bad = {f"e{i}" for i in bad_at}
    client = _RefusingClient(bad)
    log = _log(client, n, registry, batch)
    arrived: list[str] = []
    for _ in range(2 * n + 2):
        before = client.requests.get(EVENTS, 0)
        try:
            log.flush()
        except ExecutionLogError:
            sent = client.requests[EVENTS] - before
            assert sent <= -(-(n + len(arrived)) // batch) + 2 * (1 + isolate_budget(batch))
            arrived.append(f"g{len(arrived)}")
            e = Event.model_validate(
                {"event_id": arrived[-1], "source": "s", "game_date": DAY, "changed_fields": ["x"]}
            )
            with contextlib.suppress(ExecutionLogError):  # a full batch flushes (buffered)
                log.record_decisions(e, [], T0, registry=registry)
            continue
        break
    else:
        pytest.fail("no flush succeeded")
    assert sorted(client.stored.get(EVENTS, [])) == sorted(set(_ids(n)) - bad | set(arrived))
    assert log.dropped == len(bad)
