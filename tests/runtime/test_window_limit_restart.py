"""A router started on a state store whose windows were written under a larger
``max_entities`` applies the registry's current threshold to them at start (SQLite and
PostgreSQL, ``location``): a window holding more ids than the new limit fires at full date
(``fallback_threshold``) with every cause, though no event joins it after the restart."""

from __future__ import annotations

from pathlib import Path

import yaml
from runtime_support import GAME_DAY, MemorySink, load, write_registry

from scoperouter.runtime.router import RouterOptions
from scoperouter.runtime.shared_router import SharedRouter
from scoperouter.state import StoreOptions, open_state_store
from scoperouter.state.model import Admission, Contribution, IngestBatch

T0 = 1_763_000_000.0
PROC = "player_game_summary"


def _config(tmp: Path, max_entities: int) -> Path:
    """The repository's routes.yaml, windows of an hour, ``PROC`` at ``max_entities``."""
    path = write_registry(tmp, quiet="3600s", max_wait="3600s")
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec["processors"][PROC]["max_entities"] = max_entities
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


async def test_start_applies_the_current_limit_to_stored_windows(
    tmp_path: Path, location: str
) -> None:
    """Three ids stored under 150, a restart under 2: the window is full date at start."""
    cfg = load(_config(tmp_path, 2))
    st = open_state_store(location, StoreOptions(owner="a"), sync="normal")
    ids = ("p1", "p2", "p3")
    for i, pid in enumerate(ids):  # written by the process before the restart (limit 150)
        c = Contribution(
            PROC, GAME_DAY, f"e{i}", None, False, "player", (pid,), "entity_scope",
            3600.0, 3600.0, 150, "player",
        )  # fmt: skip
        st.ingest(IngestBatch((Admission(c.event_id, (c,)),)), T0 + i)
    sink = MemorySink()
    r = SharedRouter(
        cfg.registry,
        cfg.relations,
        st,
        {p: sink for p in cfg.registry.processors},
        options=RouterOptions(as_of=GAME_DAY),
        clock=lambda: T0 + 10,
        poll_interval_s=0.02,
    )
    await r.start()
    try:
        [w] = await r._in_state(st.open_windows)
        assert (w.entity_ids, w.date_reason, w.max_entities) == (None, "fallback_threshold", 2)
        [item] = await r._in_state(lambda: st.fire_due(T0 + 1e6))
        t = item.trigger
        assert (t.scope, t.reason, t.caused_by) == (
            "date",
            "fallback_threshold",
            ("e0", "e1", "e2"),
        )
    finally:
        await r.stop(timeout=1.0)
        r._state.shutdown(wait=True)
        st.close()
