"""A trigger of a processor no longer in routes.yaml (renamed or removed, its window or
outbox row kept over the restart) follows the registry's defaults, as its window does:
under ``defaults.mode: shadow`` it is logged as shadow and no target is called; under
``defaults.mode: live`` it goes to the default target; one that fired live before a restart
into ``serve --shadow`` still goes there. On SQLite and PostgreSQL (``location``)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from runtime_support import GAME_DAY, MemorySink, load, write_registry

from scoperouter.runtime.router import RouterOptions
from scoperouter.runtime.shared_router import SharedRouter
from scoperouter.state import StoreOptions, open_state_store
from scoperouter.state.model import Admission, Contribution, FireModes, IngestBatch, Released


@pytest.mark.parametrize(("mode", "sent"), [("shadow", 0), ("live", 1)])
async def test_a_removed_processors_trigger_takes_the_default_mode(
    tmp_path: Path, location: str, mode: str, sent: int
) -> None:
    """A window of ``gone`` fires after the restart: shadow by default means no send."""
    cfg = load(write_registry(tmp_path, defaults={"mode": mode}))
    st = open_state_store(location, StoreOptions(owner="a"), sync="normal")
    c = Contribution(
        "gone",
        GAME_DAY,
        "e0",
        None,
        False,
        "player",
        ("p1",),
        "entity_scope",
        0.2,
        0.2,
        100,
        "player",
    )  # a window due soon: it fires in the router, its row leased there
    st.ingest(IngestBatch((Admission(c.event_id, (c,)),)), time.time())  # within the horizon
    fallback = MemorySink()
    r = SharedRouter(
        cfg.registry,
        cfg.relations,
        st,
        {},
        fallback_sink=fallback,
        options=RouterOptions(as_of=GAME_DAY),
        poll_interval_s=0.02,
    )
    await r.start()
    try:
        assert await r.idle(timeout=30.0)
        shadowed = r.metrics.triggers_dispatched.labels("gone", "shadow")._value.get()
        assert (len(fallback.received), shadowed) == (sent, 1 - sent)
    finally:
        await r.stop(timeout=1.0)
        st.close()


async def test_a_removed_processors_live_trigger_reaches_the_default_target_under_shadow(
    tmp_path: Path, location: str
) -> None:
    """serve --shadow builds no default target; a trigger of ``gone`` that fired live before
    the restart still reaches it, built then (the daemon's ``build_sink``)."""
    cfg = load(write_registry(tmp_path))
    st = open_state_store(location, StoreOptions(owner="a", modes=FireModes()), sync="normal")
    c = Contribution(
        "gone", GAME_DAY, "e0", None, True, "player", ("p1",), "entity_scope", 0.2, 0.2, 100,
        "player",
    )  # fmt: skip
    [item] = st.ingest(IngestBatch((Admission(c.event_id, (c,)),)), time.time()).fired
    st.apply_marks([Released(item.item_id)])  # fired live, pending at the restart
    built: list[str] = []
    default = MemorySink()

    def build(name: str) -> MemorySink:
        built.append(name)
        return default

    r = SharedRouter(
        cfg.registry, cfg.relations, st, {}, fallback_sink=None,
        options=RouterOptions(as_of=GAME_DAY, shadow=True), poll_interval_s=0.02,
    )  # fmt: skip
    r.dispatcher.build_sink = build
    await r.start()
    try:
        assert await r.idle(timeout=30.0)
        assert [t.trigger_id for t in default.received] == [item.trigger.trigger_id]
        assert built == ["gone"]
    finally:
        await r.stop(timeout=1.0)
        st.close()
