"""The ingest linger (``server.ingest_linger``): after a batch's first event the ingest
worker waits that long for more to join its transaction, so events arriving in that time
share one commit; with no linger each commit takes what was queued when it started."""

from __future__ import annotations

import asyncio

import pytest
from runtime_support import RouterFactory, game_day_stream

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.ingest import Item
from scoperouter.runtime.router import Inbound

EVENTS = game_day_stream(3)


@pytest.mark.parametrize(
    ("linger", "batches"),
    [
        (0.0, [1, 2]),  # the first event commits alone; the next two arrive after it
        (0.5, [3]),  # the two arrive within the first one's linger: one transaction
    ],
)
async def test_events_within_the_linger_share_one_transaction(
    zero_cfg: LoadedConfig, make_router: RouterFactory, linger: float, batches: list[int]
) -> None:
    """Events arriving while the worker lingers join the first event's transaction."""
    r = make_router(zero_cfg, ingest_linger_s=linger)
    await r.start()
    sizes: list[int] = []
    run_batch = r._run_batch

    async def spy(batch: list[Item]) -> None:
        sizes.append(len(batch))
        await run_batch(batch)

    r._run_batch = spy  # type: ignore[method-assign]
    first = asyncio.ensure_future(r.submit(Inbound("test", obj=EVENTS[0])))
    await asyncio.sleep(0.1)  # the worker has taken the first event (and lingers, or not)
    rest = [r.submit(Inbound("test", obj=e)) for e in EVENTS[1:]]
    outs = await asyncio.gather(first, *rest)
    assert [o.status for o in outs] == ["accepted"] * 3
    assert sizes == batches


async def test_a_stop_during_a_linger_commits_the_lingering_event(
    zero_cfg: LoadedConfig, make_router: RouterFactory
) -> None:
    """A stop while the worker lingers still commits the event it holds, then stops."""
    r = make_router(zero_cfg, ingest_linger_s=0.3)
    await r.start()
    out = asyncio.ensure_future(r.submit(Inbound("test", obj=EVENTS[0])))
    await asyncio.sleep(0.05)
    await r.stop(timeout=5.0)
    assert (await out).status == "accepted"
    assert r.store.is_seen(EVENTS[0]["event_id"])
