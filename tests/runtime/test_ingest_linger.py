"""The ingest linger (``server.ingest_linger``): after a batch's first event the ingest
worker waits that long for more to join its transaction, so events arriving in that time
share one commit; with no linger each commit takes what was queued when it started, and a
batch of ``LINGER_BELOW`` events or more does not wait (it already shares its fsync)."""

from __future__ import annotations

import asyncio

import pytest
from runtime_support import RouterFactory, game_day_stream

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.ingest import Item
from scoperouter.runtime.intake import LINGER_BELOW, IntakeQueue, take_lingering
from scoperouter.runtime.router import Inbound

EVENTS = game_day_stream(LINGER_BELOW + 2)


@pytest.mark.parametrize(
    ("linger", "first", "batches"),
    [
        (0.0, 1, [1, 2]),  # the first event commits alone; the next two arrive after it
        (0.5, 1, [3]),  # the two arrive within the first one's linger: one transaction
        (0.5, LINGER_BELOW, [LINGER_BELOW, 2]),  # a big first batch does not wait
    ],
)
async def test_events_within_the_linger_share_one_transaction(
    zero_cfg: LoadedConfig,
    make_router: RouterFactory,
    linger: float,
    first: int,
    batches: list[int],
) -> None:
    """Events arriving while the worker lingers join the first batch's transaction."""
    r = make_router(zero_cfg, ingest_linger_s=linger)
    await r.start()
    sizes: list[int] = []
    run_batch = r._run_batch

    async def spy(batch: list[Item]) -> None:
        sizes.append(len(batch))
        await run_batch(batch)

    r._run_batch = spy  # type: ignore[method-assign]
    early = [asyncio.ensure_future(r.submit(Inbound("test", obj=e))) for e in EVENTS[:first]]
    await asyncio.sleep(0.1)  # the worker has taken the first batch (and lingers, or not)
    late = [r.submit(Inbound("test", obj=e)) for e in EVENTS[first : first + 2]]
    outs = await asyncio.gather(*early, *late)
    assert [o.status for o in outs] == ["accepted"] * (first + 2)
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


@pytest.mark.parametrize("queued_after", [0, 2])
async def test_a_cancelled_linger_puts_its_items_back_first(queued_after: int) -> None:
    """Cancelled while lingering (a stop), the batch goes back to the queue's front, in
    order, ahead of what arrived meanwhile: the stop answers them, none is lost."""
    q: IntakeQueue[int] = IntakeQueue()
    q.put_nowait(1)
    task = asyncio.ensure_future(take_lingering(q, 512, 10.0))
    await asyncio.sleep(0.05)  # it took [1] and lingers
    for i in range(queued_after):
        q.put_nowait(10 + i)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [q.get_nowait() for _ in range(len(q))] == [1] + [10 + i for i in range(queued_after)]
