"""A delivery refused by the router itself, before anything was sent (a Pub/Sub quota check,
a mapping that does not render, no target), says nothing about the target. Invariant
(:mod:`scoperouter.runtime.dispatch_outcomes`): only the target's own answer (delivered, or
a permanent refusal it sent back) closes a breaker that is not closed, and only the
target's failures count towards opening it; a local refusal neither closes an open or
half-open breaker (which redrove the backlog at a target still down) nor resets the count
of failures in a row. Time is a virtual clock; the dispatcher's attempt is awaited
directly."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from runtime_support import RouterFactory, date_trigger

from scoperouter.errors import DispatchError
from scoperouter.messages.models import Trigger
from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.processor_registry.template import RenderError
from scoperouter.runtime.lanes import Lane
from scoperouter.runtime.marks import Redrive
from scoperouter.runtime.pubsub_sink import MAX_MESSAGE_BYTES
from scoperouter.runtime.router import Router
from scoperouter.runtime.sinks import MappedSink, PubSubSink, Sink

PROCESSOR = "player_game_summary"


class Unreachable:
    """A publisher or inner sink that must not be reached (the refusal is local)."""

    name = "unreachable"

    async def publish(self, *args: Any, **kwargs: Any) -> str:
        raise AssertionError("a locally refused message reached Pub/Sub")

    async def send(self, trigger: Trigger, **kw: Any) -> None:
        raise AssertionError("a locally refused message reached the target")


class NoRender:
    """A target mapping that cannot render the trigger."""

    def data(self, trigger_json: Any, raw: bytes | None = None) -> bytes:
        raise RenderError("${trigger.entity_ids[0]}: no such element")


class Refuses:
    """A target that answers with a permanent refusal (HTTP 400)."""

    name = "http:refuses"

    async def send(self, trigger: Trigger, **kw: Any) -> None:
        raise DispatchError(trigger.processor, self.name, "HTTP 400: bad", retryable=False)


class Down:
    """A target that is down (retryable failure)."""

    name = "http:down"

    async def send(self, trigger: Trigger, **kw: Any) -> None:
        raise DispatchError(trigger.processor, self.name, "HTTP 503: down")


def _pubsub_too_big() -> tuple[Sink, bytes | None]:
    sink = PubSubSink("projects/p/topics/t", publisher=Unreachable())  # type: ignore[arg-type]
    return sink, b"x" * (MAX_MESSAGE_BYTES + 1)


# (what the sink is, the lane's sink and the body handed to it)
LOCAL: dict[str, Callable[[], tuple[Sink | None, bytes | None]]] = {
    "pubsub message too big": _pubsub_too_big,
    "mapping does not render": lambda: (MappedSink(Unreachable(), NoRender()), None),  # type: ignore[arg-type]
    "no target": lambda: (None, None),
}


def _router(make_router: RouterFactory, cfg: LoadedConfig) -> tuple[Router, list[float], Lane]:
    now = [1_000.0]
    r: Router = make_router(cfg, clock=lambda: now[0], breaker_threshold=2, backoff_base_s=10.0)
    return r, now, r.dispatcher.lane(PROCESSOR)


async def _attempt(r: Router, lane: Lane, n: int, sink: Any, body: bytes | None) -> None:
    """One delivery of trigger ``n`` through ``sink``, started as the dispatcher starts
    one (the half-open probe when the breaker lets one through), awaited to its end."""
    lane.sink = sink
    r.dispatcher._start_rows(lane, [(n, date_trigger(n, PROCESSOR), body, 0, r.clock())], "live")
    await asyncio.gather(*r.dispatcher.tasks)


@pytest.mark.parametrize(
    ("kind", "closes"),
    [(k, False) for k in LOCAL] + [("the target refuses (HTTP 400)", True)],
)
async def test_only_the_targets_answer_closes_a_half_open_breaker(
    zero_cfg: LoadedConfig, make_router: RouterFactory, kind: str, closes: bool
) -> None:
    """A half-open probe refused locally leaves the breaker not closed and redrives nothing; a target's refusal closes it."""
    r, now, lane = _router(make_router, zero_cfg)
    for n in (1, 2):  # the target is down: the breaker opens
        await _attempt(r, lane, n, Down(), None)
    assert lane.breaker.state == "open"
    now[0] = lane.breaker.open_until
    assert lane.breaker.slots(now[0], lane.free) == 1  # half-open: one probe
    sink, body = LOCAL[kind]() if kind in LOCAL else (Refuses(), None)
    await _attempt(r, lane, 3, sink, body)
    redrives = [m for m in r.dispatcher.marks.take() if isinstance(m, Redrive)]
    assert (lane.breaker.state == "closed", bool(redrives)) == (closes, closes)
    if not closes:  # the next row is the probe that asks the target
        assert lane.breaker.slots(now[0], lane.free) == 1


@pytest.mark.parametrize("kind", list(LOCAL))
async def test_a_local_refusal_does_not_reset_the_failures_in_a_row(
    zero_cfg: LoadedConfig, make_router: RouterFactory, kind: str
) -> None:
    """Target failure, local refusal, target failure: two failures in a row open the breaker (threshold 2)."""
    r, _now, lane = _router(make_router, zero_cfg)
    await _attempt(r, lane, 1, Down(), None)
    sink, body = LOCAL[kind]()
    await _attempt(r, lane, 2, sink, body)
    await _attempt(r, lane, 3, Down(), None)
    assert lane.breaker.state == "open"
