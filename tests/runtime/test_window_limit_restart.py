"""A router started on a state store whose windows were written under another registry
applies the registry's current settings to them at start (SQLite and PostgreSQL,
``location``), though no event joins them after the restart: a window holding more ids than
a lowered ``max_entities`` fires at full date (``fallback_threshold``), and one holding ids
of another type than the processor's granularity now fires at full date too
(``date_granularity`` when it became ``date``, else ``unmapped_entity_type``), with every
cause; and every window takes the ``quiet`` / ``max_wait`` now (its deadline with them)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from runtime_support import GAME_DAY, MemorySink, load, write_registry

from scoperouter.runtime.router import RouterOptions
from scoperouter.runtime.shared_router import SharedRouter
from scoperouter.state import StoreOptions, open_state_store
from scoperouter.state.model import Admission, Contribution, IngestBatch

T0 = 1_763_000_000.0
PROC = "player_game_summary"


def _config(
    tmp: Path, max_entities: int, granularity: str = "player", quiet: str = "3600s"
) -> Path:
    """The repository's routes.yaml, windows of ``quiet`` (an hour), ``PROC`` at
    ``max_entities`` and ``granularity`` (another one than player: its relation paths to
    players dropped)."""
    path = write_registry(tmp, quiet=quiet, max_wait=quiet)
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    proc = spec["processors"][PROC]
    proc["max_entities"] = max_entities
    if granularity != "player":
        proc["granularity"] = granularity
        for inp in proc["inputs"]:
            inp.pop("map", None)
            inp.pop("also_map", None)
        proc.pop("lookback", None)
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


@pytest.mark.parametrize(
    ("granularity", "want"),
    [
        ("player", ("entities", "entity_scope", ("p1", "p2"))),
        ("date", ("date", "date_granularity", None)),
        ("team", ("date", "unmapped_entity_type", None)),
    ],
)
async def test_start_applies_the_current_granularity_to_stored_windows(
    tmp_path: Path, location: str, granularity: str, want: tuple[object, ...]
) -> None:
    """Player ids stored, a restart with another granularity: the window fires full date."""
    cfg = load(_config(tmp_path, 150, granularity))
    st = open_state_store(location, StoreOptions(owner="a"), sync="normal")
    for i, pid in enumerate(("p1", "p2")):  # written by the process before the restart
        c = Contribution(
            PROC, GAME_DAY, f"e{i}", None, False, "player", (pid,), "entity_scope",
            3600.0, 3600.0, 150, "player",
        )  # fmt: skip
        st.ingest(IngestBatch((Admission(c.event_id, (c,)),)), T0 + i)
    r = SharedRouter(
        cfg.registry,
        cfg.relations,
        st,
        {p: MemorySink() for p in cfg.registry.processors},
        options=RouterOptions(as_of=GAME_DAY),
        clock=lambda: T0 + 10,
        poll_interval_s=0.02,
    )
    await r.start()
    try:
        [item] = await r._in_state(lambda: st.fire_due(T0 + 1e6))
        t = item.trigger
        assert (t.scope, t.reason, t.entity_ids) == want
        assert t.caused_by == ("e0", "e1")
    finally:
        await r.stop(timeout=1.0)
        r._state.shutdown(wait=True)
        st.close()


async def test_start_applies_the_current_durations_to_stored_windows(
    tmp_path: Path, location: str
) -> None:
    """A window stored under quiet 6h / max_wait 12h, a restart under 60s: due 60 s after its
    last decision, not 6 h."""
    cfg = load(_config(tmp_path, 150, quiet="60s"))
    st = open_state_store(location, StoreOptions(owner="a"), sync="normal")
    for i in range(2):  # written by the process before the restart
        c = Contribution(
            PROC, GAME_DAY, f"e{i}", None, False, "player", (f"p{i}",), "entity_scope",
            21600.0, 43200.0, 150, "player",
        )  # fmt: skip
        st.ingest(IngestBatch((Admission(c.event_id, (c,)),)), T0 + i)
    r = SharedRouter(
        cfg.registry,
        cfg.relations,
        st,
        {p: MemorySink() for p in cfg.registry.processors},
        options=RouterOptions(as_of=GAME_DAY),
        clock=lambda: T0 + 10,
        poll_interval_s=0.02,
    )
    await r.start()
    try:
        [w] = await r._in_state(st.open_windows)
        assert (w.quiet_s, w.max_wait_s, w.opened_at, w.last_at) == (60.0, 60.0, T0, T0 + 1)
        assert await r._in_state(st.next_deadline) == T0 + 60
    finally:
        await r.stop(timeout=1.0)
        r._state.shutdown(wait=True)
        st.close()
