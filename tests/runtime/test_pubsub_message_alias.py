"""A Pub/Sub target's message id names its trigger: the id the publish returned is recorded
against the trigger (durably: journal and snapshot), so a completion that names it as
``trigger_message_id`` closes that trigger, as the push envelope's ``<trigger_id>-<row>``
does for an HTTP target (docs/ledger.md, "Which completion closes which trigger")."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from runtime_support import GAME_DAY, INJURY_EVENT, RouterFactory, load, write_registry

from scoperouter.runtime.router import Inbound
from scoperouter.runtime.sinks import PubSubSink

PGS = "player_game_summary"
TOPIC = "projects/p/topics/triggers"


class FakePublisher:
    """Pub/Sub in memory: every publish gets the next server-assigned message id."""

    def __init__(self) -> None:
        self.published: list[tuple[str, Mapping[str, str]]] = []  # (message id, attributes)

    async def publish(
        self,
        topic: str,
        data: bytes,
        attributes: Mapping[str, str],
        ordering: str | None,
        *,
        timeout_s: float | None = None,
    ) -> str:
        mid = str(7_000_000 + len(self.published))  # Pub/Sub's ids are decimal strings
        self.published.append((mid, dict(attributes)))
        return mid

    def of(self, processor: str) -> list[str]:
        """The message ids published for ``processor``'s triggers."""
        return [mid for mid, attrs in self.published if attrs["processor"] == processor]


def _report(message_id: str) -> dict[str, Any]:
    """What production's processor publishes: the Pub/Sub message id it ran on, no trigger id."""
    return {
        "trigger_message_id": message_id,
        "processor": PGS,
        "game_date": GAME_DAY.isoformat(),
        "status": "success",
        "execution_id": "run-1",
    }


@pytest.mark.parametrize(
    "between",
    [
        pytest.param("nothing", id="same-process"),
        pytest.param("rebuild", id="engine-rebuilt-from-snapshot-and-journal"),
        pytest.param("restart", id="router-restarted"),
    ],
)
async def test_completion_naming_pubsub_message_id_closes_its_trigger(
    tmp_path: Path, make_router: RouterFactory, between: str
) -> None:
    """A completion naming the Pub/Sub message id closes its trigger, also after a rebuild or restart: no timeout, no re-dispatch."""
    cfg = load(write_registry(tmp_path, defaults={"run_retries": 1, "completion_timeout": "10m"}))
    now = [1_000_000.0]
    fake = FakePublisher()
    sink = PubSubSink(TOPIC, publisher=fake)  # type: ignore[arg-type]
    sinks = {p: sink for p in cfg.registry.processors}
    r = make_router(cfg, sinks=sinks, clock=lambda: now[0])
    await r.start()
    assert (await r.submit(Inbound("test", obj=INJURY_EVENT))).ack
    assert await r.idle()
    (mid,) = fake.of(PGS)
    (entry,) = [e for e in r.windows.engine.loop.ledger.entries() if e.trigger.processor == PGS]
    if between == "rebuild":  # what the store holds, not what the engine remembers
        await r._in_state(r.windows.restore)
    elif between == "restart":
        await r.stop(timeout=1.0)
        r = make_router(cfg, sinks=sinks, clock=lambda: now[0])
        await r.start()
    now[0] += 1.0
    assert (await r.submit(Inbound("test", obj=_report(mid)))).ack
    assert r.windows.engine.loop.ledger.get(entry.trigger_id).phase == "succeeded"
    now[0] += 3600.0  # far past completion_timeout
    await r.fire_due()
    assert await r.idle()
    assert fake.of(PGS) == [mid]  # never re-dispatched
    closed = r.windows.engine.loop.ledger.get(entry.trigger_id)
    assert (closed.phase, closed.attempt, closed.timeouts) == ("succeeded", 1, 0)
