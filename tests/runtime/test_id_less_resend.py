"""A message with no id at all (no ``event_id``, ``execution_id`` or message id) is known by
a hash of its body, and nothing tells its redelivery from the same body sent again for new
data: production's BDB retry POSTs one body per date every 6 hours while more of the date's
games get data (``orchestration/cloud_functions/bdb_retry_processor/main.py:184-205``, no
messageId in its envelope). Remembered for the 24 h dedup horizon, every re-send was
answered ``duplicate``; accepted again under the same id, its triggers had the first send's
trigger ids, which processors dedupe on. Now each acceptance is an event of its own (the
id gets the acceptance time, :mod:`scoperouter.messages.body_ids`): in the per-process
router, both state stores and replay; copies in one batch stay one event; ids sent in the
message keep their dedupe.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from runtime_support import GAME_DAY, MemorySink, RouterFactory, stop_routers

from scoperouter.commands.replay import replay_events
from scoperouter.messages.body_ids import accepted_as, is_body_id
from scoperouter.messages.models import Event
from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.router import Inbound, RouterOptions
from scoperouter.runtime.shared_router import SharedRouter
from scoperouter.state import StoreOptions, open_state_store

DAY = GAME_DAY.isoformat()
# the inner message bdb_retry_processor/main.py:184-192 sends (no id of any kind)
BDB = {
    "source_table": "nbac_gamebook_player_stats",
    "output_table": "nba_raw.nbac_gamebook_player_stats",
    "game_date": DAY,
    "status": "success",
    "backfill_mode": True,
    "trigger_reason": "bdb_data_available",
    "source": "bdb_retry_processor",
}
WITH_ID = {**BDB, "event_id": "e-1"}

# (name, messages sent one at a time, statuses answered)
CASES = [
    ("id_less_body_sent_again_is_routed_again", [BDB, BDB, BDB], ["accepted"] * 3),
    ("a_sent_id_is_still_deduplicated", [WITH_ID, WITH_ID], ["accepted", "duplicate"]),
]

Factory = Callable[[LoadedConfig, MemorySink], Any]


@pytest.fixture(params=["router", "sqlite", "postgresql"])
async def make_any(
    request: pytest.FixtureRequest, make_router: RouterFactory, tmp_path: Path
) -> AsyncIterator[Factory]:
    """The per-process router, or a shared router on either state store."""
    made: list[SharedRouter] = []

    def factory(cfg: LoadedConfig, sink: MemorySink) -> Any:
        if request.param == "router":
            return make_router(cfg, sink)
        if request.param == "sqlite":
            location = f"sqlite:///{tmp_path / 'state.db'}"
        else:
            location = request.getfixturevalue("pg_schema")
        st = open_state_store(
            location, StoreOptions(owner="a", date_field=cfg.registry.date_field), sync="normal"
        )
        sinks = {p: sink for p in cfg.registry.processors}
        r = SharedRouter(
            cfg.registry, cfg.relations, st, sinks, options=RouterOptions(as_of=GAME_DAY)
        )
        made.append(r)
        return r

    yield factory
    await stop_routers(made)


async def _settle(r: Any, sink: MemorySink, n: int) -> None:
    """Until ``sink`` got ``n`` triggers (zero-length windows fire at once)."""
    for _ in range(500):
        if len(sink.received) >= n:
            return
        await asyncio.sleep(0.01)


@pytest.mark.parametrize(("name", "messages", "want"), CASES, ids=[c[0] for c in CASES])
async def test_resends(
    zero_cfg: LoadedConfig,
    make_any: Factory,
    name: str,
    messages: list[dict[str, Any]],
    want: list[str],
) -> None:
    """Sent one after another: each id-less body is routed, with triggers of its own (trigger
    ids processors dedupe on); a sent id is routed once."""
    sink = MemorySink()
    r = make_any(zero_cfg, sink)
    await r.start()
    got = []
    for m in messages:
        got.append(await r.submit(Inbound("test", obj=m)))
        await asyncio.sleep(0.002)  # a later millisecond: another send
    accepted = [o for o in got if o.status == "accepted"]
    per_send = len(sink.received) // max(1, len(accepted))
    await _settle(r, sink, per_send * len(accepted) or 1)
    await r.stop()
    assert [o.status for o in got] == want
    assert len({o.event_id for o in accepted}) == len(accepted)
    ids = [t.trigger_id for t in sink.received]
    assert ids and len(set(ids)) == len(ids)


async def test_copies_in_one_batch_are_one_event(zero_cfg: LoadedConfig, make_any: Factory) -> None:
    """The same id-less body twice in one batch: one accepted, one duplicate."""
    r = make_any(zero_cfg, MemorySink())
    await r.start()
    got = await asyncio.gather(*(r.submit(Inbound("test", obj=BDB)) for _ in range(2)))
    await r.stop()
    assert sorted(o.status for o in got) == ["accepted", "duplicate"]


def test_replay_routes_each_send(zero_cfg: LoadedConfig) -> None:
    """replay, on its virtual clock (moved by events with a time): the same id-less body at
    00:00 and at 06:00 is two events with triggers of their own; twice at one time, one."""
    body = json.dumps(BDB).encode()
    early, later = (
        json.dumps(
            {**BDB, "event_id": f"e-{h}", "game_date": "2025-11-18", "produced_at": f"{DAY}T{h}Z"}
        ).encode()
        for h in ("00:00:00", "06:00:00")
    )
    stream = [early, body, later, body]
    res = replay_events(zero_cfg.registry, zero_cfg.relations, stream, GAME_DAY)
    assert res.duplicates == 0
    mine = [t for t in res.triggers if t.game_date == GAME_DAY]
    assert len(mine) >= 2 and len({t.trigger_id for t in mine}) == len(mine)
    same = replay_events(zero_cfg.registry, zero_cfg.relations, [body, body], GAME_DAY)
    assert same.duplicates == 1


@pytest.mark.parametrize(
    ("event_id", "body_id"),
    [
        ("h-" + "0" * 24, True),
        ("h-" + "a1" * 12, True),
        ("h-" + "A1" * 12, False),  # not our digest: sent by someone
        ("h-" + "0" * 23, False),
        ("h-foo", False),
        ("a1b2c3d4@0123456789abcdef", False),
        ("e-1", False),
    ],
)
def test_accepted_as(event_id: str, body_id: bool) -> None:
    """Only a body id (h- + 24 lowercase hex digits) takes the acceptance time."""
    ev = Event(event_id=event_id, source="s.x", game_date=GAME_DAY)
    at = datetime(2025, 11, 19, 6, tzinfo=UTC).timestamp()
    got = accepted_as(ev, at)
    assert is_body_id(event_id) is body_id
    assert got.event_id == (f"{event_id}~{round(at * 1000)}" if body_id else event_id)
    assert got.model_dump(exclude={"event_id"}) == ev.model_dump(exclude={"event_id"})


# production's unified completion of player_game_summary without execution_id: a completion
# (processor + date) and an event (its output table) at once
ID_LESS_REPORT = {
    "processor_name": "PlayerGameSummaryProcessor",
    "output_table": "nba_analytics.player_game_summary",
    "game_date": DAY,
    "status": "success",
}


def _injury(eid: str, player: str) -> dict[str, Any]:
    return {
        "event_id": eid,
        "source": "nba_raw.nbac_injury_report",
        "game_date": DAY,
        "affected_entities": {"players": [player]},
        "changed_fields": ["injury_status"],
    }


async def test_closed_loop_takes_each_send_of_an_id_less_completion(
    tmp_path: Path, make_router: RouterFactory
) -> None:
    """Two open triggers of one processor and date, each run reporting the same id-less body:
    both close (the ledger takes each send under its accepted id, as the event is routed),
    and the downstream triggers' caused_by names the accepted id the ledger recorded."""
    from runtime_support import load, write_registry

    cfg = load(
        write_registry(tmp_path / "cfg", defaults={"run_retries": 1, "completion_timeout": "10m"})
    )
    now = [1_764_000_000.0]
    r = make_router(cfg, MemorySink(), clock=lambda: now[0])
    await r.start()

    async def send(body: dict[str, Any]) -> Any:
        out = await r.submit(Inbound("test", data=json.dumps(body).encode()))
        assert await r.idle()
        return out

    def phases() -> list[str]:
        ents = r.windows.engine.loop.ledger.entries()
        return [e.phase for e in ents if e.trigger.processor == "player_game_summary"]

    await send(_injury("e-2", "bosplayer01"))
    now[0] += 1
    await send(_injury("e-1", "lalplayer01"))
    assert phases() == ["dispatched", "dispatched"]
    now[0] += 5
    first = await send(ID_LESS_REPORT)
    now[0] += 60
    second = await send(ID_LESS_REPORT)
    ents = r.windows.engine.loop.ledger.entries()
    taken = [a.event_id for e in ents for a in e.history if a.event_id]
    caused = {i for e in ents for i in e.trigger.caused_by}
    await r.stop(timeout=2.0)
    assert (first.status, second.status) == ("accepted", "accepted")
    assert phases() == ["succeeded", "succeeded"]
    assert {first.event_id, second.event_id} <= set(taken)
    assert first.event_id in caused
