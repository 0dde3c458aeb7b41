"""The Pub/Sub source's recovery after its streaming pull ended keeps trying until a new
pull runs: a resubscribe that raises (the client cannot start the stream's threads, say)
is one more failed attempt, retried with backoff, and the source stays not ready
meanwhile. Before, the recovery task cleared the failure first, then died of the
exception with nobody watching it: ``/readyz`` answered 200 while nothing was pulled,
for good. Invariant: :meth:`PubSubSource.readiness` is None only while a pull started
after the last failure runs. The client is a stand-in (no network)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from runtime_support import MemorySink, RouterFactory

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime import pubsub_health
from scoperouter.runtime.pubsub import PubSubSource


class Pull:
    """A streaming pull's future; ``error``: how it ended."""

    def __init__(self) -> None:
        self.error: BaseException | None = None

    def cancel(self) -> bool:
        return True

    def add_done_callback(self, fn: Any) -> None:
        pass

    def exception(self, timeout: float | None = None) -> BaseException | None:
        return self.error

    def result(self, timeout: float | None = None) -> None:
        return None


class Client:
    """``SubscriberClient`` stand-in: ``subscribe`` answers from ``script`` in turn (an
    exception is raised)."""

    def __init__(self, script: list[Pull | BaseException]) -> None:
        self.script = script
        self.calls = 0

    def subscribe(self, subscription: str, **kwargs: Any) -> Pull:
        answer = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def close(self) -> None:
        pass


async def until(cond: Any, steps: int = 2000) -> bool:
    """Poll ``cond`` between event-loop passes (the subscription check runs in a thread)."""
    for _ in range(steps):
        if cond():
            return True
        await asyncio.sleep(0.005)
    return bool(cond())


CASES = [
    ("one resubscribe raises", [RuntimeError("can't start new thread")]),
    (
        "two resubscribes raise",
        [RuntimeError("can't start new thread"), ValueError("This manager is already open.")],
    ),
]


@pytest.mark.parametrize(("case", "errors"), CASES, ids=[c[0] for c in CASES])
async def test_a_failed_resubscribe_is_retried_and_keeps_the_source_not_ready(
    case: str,
    errors: list[BaseException],
    zero_cfg: LoadedConfig,
    make_router: RouterFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A resubscribe that raises leaves the source not ready and is retried until a pull runs."""
    first, last = Pull(), Pull()
    script: list[Pull | BaseException] = [first, *errors, last]
    client = Client(script)
    monkeypatch.setattr(pubsub_health, "subscriber_client", lambda: client)
    r = make_router(zero_cfg, MemorySink())
    await r.start()
    checked: list[str] = []
    source = PubSubSource(
        "projects/p/subscriptions/s",
        r,
        check=checked.append,
        min_backoff_s=0.0,
        max_backoff_s=0.0,
        probe_interval_s=3600.0,
    )
    source.start()
    try:
        first.error = ConnectionError("stream reset")
        source._pull_ended(first)  # as the pull's done callback hands it to the loop
        assert source.readiness() is not None
        # every resubscribe that raised was seen as a failure, never as ready
        for n in range(len(errors)):
            assert await until(lambda n=n: client.calls >= n + 2), case
            assert source.readiness() is not None or source._future is last, (
                f"{case}: ready although no pull runs"
            )
        assert await until(lambda: source._future is last), (
            f"{case}: recovery gave up after {client.calls} subscribes"
        )
        assert source.readiness() is None and source.pulling
        assert len(checked) == len(errors) + 1
    finally:
        await source.stop(timeout=1.0)
