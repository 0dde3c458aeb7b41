"""A downstream window held at a barrier is released when its upstream's trigger is a
dead letter of the delivery (the router could not send it: no run will ever report), as
when the ledger dead-letters it; the dead letter is journaled, so a restart agrees."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from runtime_support import GAME_DAY, MemorySink, RouterFactory

from scoperouter.errors import DispatchError
from scoperouter.messages.models import Trigger
from scoperouter.processor_registry.loader import LoadedConfig, load_config
from scoperouter.runtime import backlog
from scoperouter.runtime.backlog import LaneRequest
from scoperouter.runtime.marks import Dead
from scoperouter.runtime.outcomes import Inbound
from scoperouter.runtime.store import Store

T0 = 1_763_560_000.0


class RefusingSink:
    """A target that refuses every trigger for good (a 4xx: no retry helps)."""

    name = "refusing"

    def __init__(self) -> None:
        self.calls = 0

    async def send(self, trigger: Trigger, *, message_id: str, body: bytes | None = None) -> None:
        self.calls += 1
        raise DispatchError(trigger.processor, self.name, "HTTP 403", retryable=False)

    async def close(self) -> None:
        return None


def _cfg(tmp: Path, loop: dict[str, Any]) -> LoadedConfig:
    """u (phase 3) publishes an.u, which p (phase 4) reads; p waits at a barrier."""
    spec = {
        "version": 1,
        "entities": {"player": {}},
        "defaults": {
            "window": {"quiet": "0s", "max_wait": "0s"},
            "target": {"outbox": {}},
            **loop,
        },
        "processors": {
            "u": {
                "phase": 3,
                "granularity": "player",
                "inputs": [{"source": "raw.a"}],
                "publishes": "an.u",
            },
            "p": {
                "phase": 4,
                "granularity": "player",
                "inputs": [{"source": "an.u"}],
                "barrier": {},
            },
        },
    }
    path = tmp / "routes.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return load_config(path)


def _event(eid: str, source: str) -> dict[str, Any]:
    return {
        "event_id": eid,
        "source": source,
        "game_date": GAME_DAY.isoformat(),
        "affected_entities": {"players": ["ann"]},
    }


@pytest.mark.parametrize("loop", [{"run_retries": 0}, {"run_retries": 1}])
async def test_an_undeliverable_upstream_trigger_releases_the_barrier(
    tmp_path: Path, make_router: RouterFactory, loop: dict[str, Any]
) -> None:
    """u's trigger is refused for good (an outbox dead letter): p's held window is sent, not held forever."""
    cfg = _cfg(tmp_path, loop)
    now = [T0]
    refusing, memory = RefusingSink(), MemorySink()
    r = make_router(cfg, sinks={"u": refusing, "p": memory}, clock=lambda: now[0])
    await r.start()
    assert (await r.submit(Inbound("test", obj=_event("e-u", "raw.a")))).ack
    assert (await r.submit(Inbound("test", obj=_event("e-p", "an.u")))).ack
    for _ in range(20):  # the clock runs on; every redispatch of u is refused too
        assert await r.idle()
        await r._flush_marks(barrier=True)
        now[0] += 3600.0
        await r.fire_due()
    assert await r.idle()
    assert refusing.calls == 1 + loop["run_retries"]  # the ledger re-ran it within run_retries
    assert [t.processor for t in memory.received] == ["p"]
    assert _state(r) == ([], ["u"])
    # the same mark written again (its first transaction failed after the ledger heard it,
    # the marks were put back): heard once, nothing journaled again
    ledger = r.windows.engine.loop.ledger
    [u] = [e for e in ledger.dead_letters() if e.trigger.processor == "u"]
    tid, row = u.failed_runs[0].rsplit("-", 1)
    before = (ledger.get(tid), len(r.store.journal_entries()))

    def again_tx() -> None:
        with r.store.transaction():
            r.windows.undelivered(tid, int(row), now[0], "HTTP 403")

    await r._in_state(again_tx)
    assert (ledger.get(tid), len(r.store.journal_entries())) == before
    await r.stop(timeout=1.0)
    r.store.close()
    again = make_router(cfg, sinks={"u": RefusingSink(), "p": MemorySink()}, clock=lambda: now[0])
    await again.start()  # the journal replayed: the same dead letter, nothing held
    assert _state(again) == ([], ["u"])


def _state(r: Any) -> tuple[list[Any], list[str]]:
    """The router's held windows and the processors of its ledger's dead letters (each
    naming the refusal)."""
    loop = r.windows.engine.loop
    assert loop is not None
    dead = loop.ledger.dead_letters()
    assert all("undeliverable: " in (e.error or "") and "HTTP 403" in (e.error or "") for e in dead)
    return sorted(loop.barrier.held), [e.trigger.processor for e in dead]


def test_every_dead_letter_of_a_delivery_names_its_trigger(tmp_path: Path) -> None:
    """A Dead mark and a row expired past its retry horizon (it failed) both tell on_dead its trigger id and row; a mark without one tells nothing."""
    store = Store(tmp_path / "state.sqlite3", sync="normal")
    try:
        with store.transaction():
            rows = [store.insert_trigger(f"t-{k}", "u", "{}", T0) for k in range(3)]
            store.defer(rows[2], 1, T0, "HTTP 503")  # failed once: past the horizon, dead
        heard: list[tuple[str, int, float, str]] = []
        marks: list[Any] = [Dead(rows[0], 1, T0 + 1, "HTTP 403", "t-0"), Dead(rows[1], 1, T0, "x")]
        backlog.page(
            store,
            marks,
            [LaneRequest("u", 0, frozenset(), expire_before=T0 + 5)],
            T0 + 9,
            on_dead=lambda *a: heard.append(a),
        )
        assert heard == [
            ("t-0", rows[0], T0 + 1, "HTTP 403"),
            ("t-2", rows[2], T0 + 9, backlog.HORIZON_DETAIL),
        ]
    finally:
        store.close()


def test_a_row_never_attempted_outlives_the_horizon(tmp_path: Path) -> None:
    """A pending row past its retry horizon that no attempt failed (a backlog behind a slow
    target, or pending across a stop longer than the horizon) is claimed, not dead-lettered:
    the target never failed it (dispatch review, reproduced: all five rows of a restart died
    with 0 attempts against a healthy target)."""
    store = Store(tmp_path / "state.sqlite3", sync="normal")
    try:
        with store.transaction():
            row = store.insert_trigger("t-0", "u", "{}", T0)
        heard: list[Any] = []
        [page] = backlog.page(
            store,
            [],
            [LaneRequest("u", 1, frozenset(), expire_before=T0 + 5)],
            T0 + 9,
            on_dead=lambda *a: heard.append(a),
        )
        assert heard == [] and store.expired_triggers("u", T0 + 5, 10) == []
        assert page.expired == [] and [r.row_id for r in page.rows] == [row]
    finally:
        store.close()
