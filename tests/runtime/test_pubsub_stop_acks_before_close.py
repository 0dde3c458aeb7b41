"""A graceful stop of the Pub/Sub source settles what it holds while the streaming pull is
still open: the client library sends an ack or a nack through the stream's dispatcher, which
``StreamingPullFuture.cancel()`` shuts down, so an ack given after the cancel is dropped and
Pub/Sub redelivers an event that was committed and "acked" (seen with the emulator: all five
events of a stopped burst came back). Invariant: every message the source held when its stop
began is acked or nacked before the pull is cancelled (within the stop's timeout), and a
message that arrives while it stops is nacked at once. The client is a stand-in that drops
settlements after the cancel, as the library does (no network)."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from runtime_support import GAME_DAY, MemorySink, RouterFactory, players_of

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime import pubsub_health
from scoperouter.runtime.daemon import Daemon, DaemonSettings
from scoperouter.runtime.pubsub import PubSubSource


class Pull:
    """The streaming pull's future: ``cancel()`` closes the stream and its dispatcher."""

    def __init__(self) -> None:
        self.closed = False

    def cancel(self) -> bool:
        self.closed = True
        return True

    def add_done_callback(self, fn: Any) -> None:
        pass

    def result(self, timeout: float | None = None) -> None:
        return None


class Client:
    """``SubscriberClient`` stand-in: ``subscribe`` hands out one :class:`Pull`."""

    def __init__(self) -> None:
        self.pull = Pull()
        self.callback: Any = None

    def subscribe(self, subscription: str, **kwargs: Any) -> Pull:
        self.callback = kwargs["callback"]
        return self.pull

    def close(self) -> None:
        pass


class Message:
    """A pulled message; a settlement counts only while the pull is open (else dropped)."""

    def __init__(self, n: int, pull: Pull) -> None:
        self.data = json.dumps(
            {
                "event_id": f"stop-{n}",
                "source": "nba_raw.nbac_gamebook_player_stats",
                "game_date": GAME_DAY.isoformat(),
                "affected_entities": {"players": [players_of("BOS")[n % 15]]},
                "changed_fields": ["minutes"],
            }
        ).encode()
        self.message_id = f"m-{n}"
        self.attributes: dict[str, str] = {}
        self.pull = pull
        self.sent: list[str] = []  # settlements that reached Pub/Sub
        self.dropped: list[str] = []  # given after the cancel: never sent

    def ack(self) -> None:
        (self.dropped if self.pull.closed else self.sent).append("ack")

    def nack(self) -> None:
        (self.dropped if self.pull.closed else self.sent).append("nack")


async def until(cond: Any) -> None:
    """Yield to the loop until ``cond()`` (bounded by steps, not by time)."""
    for _ in range(100_000):
        if cond():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never met")


CASES = [
    # (case, messages held by the router at the stop, messages arriving during it, expected)
    ("held burst is acked before the cancel", 4, 0, [["ack"]] * 4),
    ("arrival during the stop is nacked at once", 2, 1, [["ack"]] * 2 + [["nack"]]),
]


@pytest.mark.parametrize(("case", "held", "arriving", "expected"), CASES, ids=[c[0] for c in CASES])
async def test_stop_settles_held_messages_before_cancelling_the_pull(
    case: str,
    held: int,
    arriving: int,
    expected: list[list[str]],
    zero_cfg: LoadedConfig,
    make_router: RouterFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Messages committed while the source stops are acked through the open pull, none dropped."""
    client = Client()
    monkeypatch.setattr(pubsub_health, "subscriber_client", lambda: client)
    r = make_router(zero_cfg, MemorySink())
    await r.start()
    source = PubSubSource("projects/p/subscriptions/s", r, check=lambda s: None)
    source.probe_interval_s = 3600.0
    source.start()
    gate = threading.Event()
    r._state.submit(gate.wait)  # the state thread is busy: the burst waits in the router
    messages = [Message(n, client.pull) for n in range(held)]
    for m in messages:
        client.callback(m)
    await until(lambda: source._unsettled == held)
    stop = asyncio.create_task(source.stop(timeout=60.0))
    await until(lambda: source._all_settled is not None)  # the stop waits for them
    late = [Message(held + n, client.pull) for n in range(arriving)]
    for m in late:
        client.callback(m)
    await asyncio.sleep(0)
    gate.set()
    await stop
    everything = messages + late
    assert [m.dropped for m in everything] == [[]] * len(everything), case
    assert [m.sent for m in everything] == expected, case
    assert client.pull.closed


async def test_daemon_stop_acks_a_slow_batch_before_closing_the_pull(
    zero_cfg: LoadedConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """serve's stop lets the router finish the batch it holds, acks it, then closes the pull."""
    client = Client()
    monkeypatch.setattr(pubsub_health, "subscriber_client", lambda: client)
    settings = DaemonSettings(
        state_dir=tmp_path / "s",
        as_of=GAME_DAY,
        sync="normal",
        subscription="projects/p/subscriptions/s",
        http_enabled=False,
        shutdown_timeout_s=0.3,  # the source's own settle wait (a third of it) runs out
    )
    d = Daemon(zero_cfg.registry, zero_cfg.relations, settings)
    assert d.source is not None
    d.source._check = lambda s: None
    d.source.probe_interval_s = 3600.0
    entered, gate = threading.Event(), threading.Event()
    real_process = d.router._process_batch

    def slow(batch: list[Any], marks: list[Any]) -> Any:  # the commit waits for the gate
        entered.set()
        assert gate.wait(60), "the gate was never opened"
        return real_process(batch, marks)

    d.router._process_batch = slow  # type: ignore[method-assign]
    # the gate opens at whichever comes first: the router's stop past its drain deadline
    # (the batch is then all that is left), or the pull's cancel (the source closed first)
    real_stop_pump = d.router.dispatcher.stop_pump

    async def stop_pump() -> None:
        await real_stop_pump()
        gate.set()

    d.router.dispatcher.stop_pump = stop_pump  # type: ignore[method-assign]
    real_cancel = client.pull.cancel

    def cancel() -> bool:
        gate.set()
        return real_cancel()

    client.pull.cancel = cancel  # type: ignore[method-assign]
    await d.start()
    message = Message(0, client.pull)
    client.callback(message)
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, entered.wait, 60), "the batch never started"
    await d.stop()
    assert (message.sent, message.dropped) == (["ack"], []), "acked after the pull closed"
    assert client.pull.closed
