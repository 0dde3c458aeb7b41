"""A 429 or 503 with ``Retry-After`` in delta seconds: the HTTP sink reports it on its
:class:`DispatchError`, and the dispatcher's next attempt waits at least that long --
never past its backoff cap nor the trigger's retry horizon (docs/targets.md)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from runtime_support import RouterFactory, date_trigger
from test_sinks import TRIGGER

from scoperouter.errors import DispatchError
from scoperouter.messages.models import Trigger
from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.http_sink import HttpSink
from scoperouter.runtime.marks import Retry

PROCESSOR = "player_game_summary"


@pytest.mark.parametrize(
    ("status", "header", "after"),
    [
        (429, "7", 7.0),
        (503, " 120 ", 120.0),
        (503, "0", 0.0),
        (429, "Wed, 21 Oct 2015 07:28:00 GMT", None),  # an HTTP date: not honoured
        (429, "-3", None),
        (429, "1.5", None),  # delta-seconds are whole
        (429, None, None),
        (500, "7", None),  # only 429 and 503 ask for a pause
    ],
)
async def test_the_http_sink_reports_retry_after(
    status: int, header: str | None, after: float | None
) -> None:
    """Retry-After in delta seconds on a 429 or 503 is on the error; any other form or status is not."""

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        headers = {"Retry-After": header} if header is not None else {}
        return web.Response(status=status, text="busy", headers=headers)

    app = web.Application()
    app.router.add_post("/svc", answer)
    server = TestServer(app)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            sink = HttpSink(
                str(server.make_url("/svc")), timeout_s=5, session_factory=lambda: session
            )
            with pytest.raises(DispatchError) as exc:
                await sink.send(TRIGGER, message_id="m")
    finally:
        await server.close()
    assert exc.value.retryable is True
    assert exc.value.retry_after_s == after


class Busy:
    """A target answering 429 with a Retry-After of ``after`` seconds."""

    name = "http:busy"

    def __init__(self, after: float | None) -> None:
        self.after = after

    async def send(self, trigger: Trigger, **kw: Any) -> None:
        raise DispatchError(
            trigger.processor, self.name, "HTTP 429: busy", retry_after_s=self.after
        )


@pytest.mark.parametrize(
    ("after", "horizon_left", "wait"),
    [
        (None, 3600.0, (0.5, 1.0)),  # the backoff: U(0.5, 1) x base (1 s)
        (30.0, 3600.0, (30.0, 30.0)),  # the target's pause
        (0.0, 3600.0, (0.5, 1.0)),  # shorter than the backoff: the backoff
        (500.0, 3600.0, (60.0, 60.0)),  # capped by the backoff cap
        (30.0, 10.0, (10.0, 10.0)),  # capped by what is left of the retry horizon
    ],
)
async def test_the_next_attempt_waits_for_retry_after(
    zero_cfg: LoadedConfig,
    make_router: RouterFactory,
    after: float | None,
    horizon_left: float,
    wait: tuple[float, float],
) -> None:
    """A retry is due no sooner than Retry-After, capped by the backoff cap and the retry horizon."""
    now = 1_000_000.0
    r = make_router(zero_cfg, clock=lambda: now, backoff_base_s=1.0, backoff_cap_s=60.0)
    d = r.dispatcher
    lane = d.lane(PROCESSOR)
    lane.sink = Busy(after)  # type: ignore[assignment]
    created = now - (lane.horizon_s - horizon_left)
    d._start_rows(lane, [(1, date_trigger(1, PROCESSOR), None, 0, created)], "live")
    await asyncio.gather(*d.tasks)
    (retry,) = [m for m in d.marks.take() if isinstance(m, Retry)]
    assert wait[0] <= retry.available_at - now <= wait[1]
