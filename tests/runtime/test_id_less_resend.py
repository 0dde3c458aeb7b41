"""A message with no id at all (no ``event_id``, ``execution_id`` or message id) is known by
a hash of its body, and nothing tells its redelivery from the same body sent again for new
data: production's BDB retry POSTs one body per date every 6 hours while more of the date's
games get data (``orchestration/cloud_functions/bdb_retry_processor/main.py:184-205``,
no messageId in its envelope). Remembered for the 24 h dedup horizon, every re-send was
answered ``duplicate`` and routed nothing; now such an id is never remembered -- in the
per-process router, both state stores and the drivers' :class:`SeenIds` -- and copies in
one batch are still one event. Ids sent in the message keep their dedupe.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from runtime_support import GAME_DAY, MemorySink, RouterFactory, stop_routers

from scoperouter.messages.event_fields import remembered
from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.router.seen_ids import SeenIds
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

Factory = Callable[[LoadedConfig], Any]


@pytest.fixture(params=["router", "sqlite", "postgresql"])
async def make_any(
    request: pytest.FixtureRequest, make_router: RouterFactory, tmp_path: Any
) -> AsyncIterator[Factory]:
    """The per-process router, or a shared router on either state store."""
    made: list[SharedRouter] = []

    def factory(cfg: LoadedConfig) -> Any:
        if request.param == "router":
            return make_router(cfg, MemorySink())
        if request.param == "sqlite":
            location = f"sqlite:///{tmp_path / 'state.db'}"
        else:
            location = request.getfixturevalue("pg_schema")
        st = open_state_store(
            location, StoreOptions(owner="a", date_field=cfg.registry.date_field), sync="normal"
        )
        sinks = {p: MemorySink() for p in cfg.registry.processors}
        r = SharedRouter(
            cfg.registry, cfg.relations, st, sinks, options=RouterOptions(as_of=GAME_DAY)
        )
        made.append(r)
        return r

    yield factory
    await stop_routers(made)


@pytest.mark.parametrize(("name", "messages", "want"), CASES, ids=[c[0] for c in CASES])
async def test_resends(
    zero_cfg: LoadedConfig,
    make_any: Factory,
    name: str,
    messages: list[dict[str, Any]],
    want: list[str],
) -> None:
    """Sent one after another: id-less bodies are each routed, a sent id once."""
    r = make_any(zero_cfg)
    await r.start()
    got = [(await r.submit(Inbound("test", obj=m))).status for m in messages]
    await r.stop()
    assert got == want


async def test_copies_in_one_batch_are_one_event(zero_cfg: LoadedConfig, make_any: Factory) -> None:
    """The same id-less body twice in one batch: one accepted, one duplicate."""
    r = make_any(zero_cfg)
    await r.start()
    got = await asyncio.gather(*(r.submit(Inbound("test", obj=BDB)) for _ in range(2)))
    await r.stop()
    assert sorted(o.status for o in got) == ["accepted", "duplicate"]


@pytest.mark.parametrize(
    ("event_id", "want"),
    [
        ("h-" + "0" * 24, False),
        ("h-" + "a1" * 12, False),
        ("h-" + "A1" * 12, True),  # not our digest: sent by someone
        ("h-" + "0" * 23, True),
        ("h-foo", True),
        ("a1b2c3d4@0123456789abcdef", True),
        ("e-1", True),
    ],
)
def test_remembered(event_id: str, want: bool) -> None:
    """Only the body-hash form (h- + 24 lowercase hex digits) is never remembered."""
    assert remembered(event_id) is want


def test_drivers_seen_ids_agree() -> None:
    """replay and simulate's SeenIds: a body-hash id is never a duplicate, a sent one is."""
    seen = SeenIds(86400.0)
    body = "h-" + "0" * 24
    assert [seen.duplicate(body, t) for t in (0.0, 10.0)] == [False, False]
    assert [seen.duplicate("e-1", t) for t in (0.0, 10.0)] == [False, True]
