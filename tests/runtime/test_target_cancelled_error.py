"""A target whose send raises ``asyncio.CancelledError`` while its delivery is not being
cancelled (no stop, no ``cancel()`` of its task: a client's own future cancelled
elsewhere) fails that attempt like any other error: retried, counted, logged. A delivery
cancelled for real outside a stop gives its rows back to the store (``Release``, logged)
and the lane sends them again. Either way, on a state store no row stays leased for ever
(before, the delivery ended with no outcome and no log line, and the lease keeper renewed
the orphan's lease for good), on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from runtime_support import GAME_DAY, INJURY_EVENT, load, stop_routers, write_registry
from test_outage import FAST

from scoperouter.messages.models import Trigger
from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.router import Inbound, RouterOptions
from scoperouter.runtime.shared_router import SharedRouter
from scoperouter.state import StoreOptions, open_state_store

Factory = Callable[[LoadedConfig, Any], SharedRouter]
RETRY_LOG = "dispatch failed, retrying"
GIVEN_BACK_LOG = "ended without an outcome"


class CancelOnce:
    """A target whose first call ends in ``CancelledError``: ``how`` ``raised`` (the
    target raises it, its task not cancelled) or ``cancelled`` (the delivery's task is
    cancelled); ``batch_max``: a batching sink (``send_batch``)."""

    name = "cancel-once"

    def __init__(self, how: str, batch_max: int | None) -> None:
        self.how = how
        self.calls = 0
        self.received: list[str] = []
        if batch_max is not None:
            self.batch_max = batch_max
            self.send_batch = self._send_batch

    async def _first_call_fails(self) -> None:
        self.calls += 1
        if self.calls > 1:
            return
        if self.how == "raised":
            raise asyncio.CancelledError("a client's future cancelled elsewhere")
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(0)

    async def send(self, trigger: Trigger, *, message_id: str, body: bytes | None = None) -> None:
        await self._first_call_fails()
        self.received.append(trigger.trigger_id)

    async def _send_batch(self, items: list[tuple[Trigger, bytes | None]]) -> None:
        await self._first_call_fails()
        self.received.extend(t.trigger_id for t, _b in items)

    async def close(self) -> None:
        return None


@pytest.fixture
async def make_shared(location: str) -> AsyncIterator[Factory]:
    """Routers on one state location (SQLite, PostgreSQL); stopped at teardown."""
    made: list[SharedRouter] = []

    def factory(cfg: LoadedConfig, sink: Any) -> SharedRouter:
        o = StoreOptions(owner="a", date_field=cfg.registry.date_field, lease_s=0.6)
        st = open_state_store(location, o, sync="normal")
        r = SharedRouter(
            cfg.registry,
            cfg.relations,
            st,
            {p: sink for p in cfg.registry.processors},
            options=RouterOptions(as_of=GAME_DAY, **FAST),
            poll_interval_s=0.02,
        )
        made.append(r)
        return r

    yield factory
    await stop_routers(made)


# (how the first call ends, batch_max of the sink, the log line it leaves, retries counted)
CASES = [
    ("raised", None, RETRY_LOG, True),  # the target's own CancelledError: a failed send
    ("raised", 8, RETRY_LOG, True),  # the same through a batching sink
    ("cancelled", None, GIVEN_BACK_LOG, False),  # cancelled for real, no stop: given back
    ("cancelled", 8, GIVEN_BACK_LOG, False),
]


@pytest.mark.parametrize(("how", "batch_max", "logged", "retried"), CASES)
async def test_cancelled_error_outside_a_stop_leaves_no_row_leased(
    tmp_path: Path,
    make_shared: Factory,
    caplog: pytest.LogCaptureFixture,
    how: str,
    batch_max: int | None,
    logged: str,
    retried: bool,
) -> None:
    """A CancelledError in a send outside a stop is logged and every trigger is delivered."""
    cfg = load(write_registry(tmp_path / "r", default_target={"outbox": {}}))
    sink = CancelOnce(how, batch_max)
    r = make_shared(cfg, sink)
    caplog.set_level(logging.INFO, logger="scoperouter.runtime")
    await r.start()
    out = await r.submit(Inbound("test", obj=dict(INJURY_EVENT)))
    assert out.ack and out.triggers > 0
    assert await r.idle(timeout=30)
    await r._flush_marks(barrier=True)
    assert await r._in_state(r.state.outbox_counts) == {"done": out.triggers}
    assert len(sink.received) == len(set(sink.received)) == out.triggers
    assert r._leased.ids() == [] and r.supervisor.fatal is None
    lines = [rec for rec in caplog.records if logged in rec.getMessage()]
    assert lines and "CancelledError" in str(getattr(lines[0], "error", ""))
    retries = sum(
        r.metrics.dispatch_attempts.labels(p, "retry", "live")._value.get()
        for p in cfg.registry.processors
    )
    assert (retries > 0) is retried
    unsettled = sum(
        r.metrics.deliveries_unsettled.labels(p)._value.get() for p in cfg.registry.processors
    )
    assert (unsettled > 0) is not retried  # given back: counted as well as logged
