"""A restart whose routes.yaml no longer names a processor (renamed or removed) that still
has open windows or triggers to send in the state store says so: one WARNING naming it with
its counts, and the gauge ``scoperouter_unknown_processor_work{kind}`` (its work still fires
and goes to ``defaults.target``: runtime/orphans.py). On the three stores."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from runtime_support import GAME_DAY, INJURY_EVENT, MemorySink, load, stop_routers, write_registry

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.orphans import announce_unknown
from scoperouter.runtime.router import Inbound, Router, RouterOptions
from scoperouter.runtime.shared_router import SharedRouter
from scoperouter.runtime.store import Store
from scoperouter.state import StoreOptions, open_state_store

GONE = "player_game_summary"  # reached by the injury event; renamed in the second registry
WARNING = "processors not in routes.yaml"


@pytest.mark.parametrize(
    ("work", "known", "unknown", "gauge"),
    [
        ({}, {"a"}, {}, (0, 0)),
        ({"a": (2, 1)}, {"a"}, {}, (0, 0)),
        ({"a": (2, 1), "b": (3, 0)}, {"a"}, {"b": (3, 0)}, (3, 0)),
        ({"b": (0, 4), "c": (1, 1)}, set(), {"b": (0, 4), "c": (1, 1)}, (1, 5)),
        ({"b": (0, 0)}, set(), {}, (0, 0)),  # nothing left of it: not worth a word
    ],
)
def test_announce_unknown_counts(
    work: dict[str, tuple[int, int]],
    known: set[str],
    unknown: dict[str, tuple[int, int]],
    gauge: tuple[int, int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Only processors outside routes.yaml with work are named; the gauge sums them."""
    m = Metrics()
    caplog.set_level(logging.INFO, logger="scoperouter")
    assert announce_unknown(work, known, m) == unknown
    got = tuple(m.unknown_processor_work.labels(k)._value.get() for k in ("windows", "triggers"))
    assert got == gauge
    lines = [r for r in caplog.records if WARNING in r.getMessage()]
    assert len(lines) == (1 if unknown else 0)
    for p in unknown:
        assert p in lines[0].getMessage()


@pytest.fixture(params=["journal", "sqlite", "postgresql"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """``journal`` (the snapshot + journal store) or a state store location."""
    if request.param == "postgresql":
        dsn: str = request.getfixturevalue("pg_schema")
        return dsn
    return "journal" if request.param == "journal" else f"sqlite:///{tmp_path / 'state.db'}"


Factory = Callable[[LoadedConfig], Router]


@pytest.fixture
async def make(where: str, tmp_path: Path) -> AsyncIterator[Factory]:
    """Routers on one store, one after the other (restarts); stopped at teardown."""
    made: list[Router] = []

    def factory(cfg: LoadedConfig) -> Router:
        options = RouterOptions(as_of=GAME_DAY)
        sinks: dict[str, Any] = {p: MemorySink() for p in cfg.registry.processors}
        if where == "journal":
            store = Store(tmp_path / "state.sqlite3", sync="normal")
            r = Router(cfg.registry, cfg.relations, store, sinks, options=options)
        else:
            opts = StoreOptions(owner="a", date_field=cfg.registry.date_field)
            st = open_state_store(where, opts, sync="normal")
            r = SharedRouter(cfg.registry, cfg.relations, st, sinks, options=options)
        made.append(r)
        return r

    yield factory
    await stop_routers(made)


def registry(tmp: Path, quiet: str, *, rename: bool) -> LoadedConfig:
    """The NBA registry with every window ``quiet`` long; ``rename``: GONE renamed."""
    path = write_registry(tmp, quiet=quiet, max_wait="2h" if quiet != "0s" else "0s")
    if rename:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        spec["processors"][GONE + "_v2"] = spec["processors"].pop(GONE)
        path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return load(path)


@pytest.mark.parametrize(("kind", "quiet"), [("windows", "1h"), ("triggers", "0s")])
async def test_restart_names_work_of_a_renamed_processor(
    tmp_path: Path, make: Factory, kind: str, quiet: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Open windows or unsent triggers of a processor renamed across a restart are named."""
    r1 = make(registry(tmp_path / "a", quiet, rename=False))
    await r1.start()
    await r1.dispatcher.stop_pump()  # what a SIGTERM leaves: fired triggers not yet sent
    out = await r1.submit(Inbound("test", data=json.dumps(INJURY_EVENT).encode()))
    assert out.status == "accepted"
    await r1.stop(timeout=2.0)
    caplog.set_level(logging.INFO, logger="scoperouter")
    r2 = make(registry(tmp_path / "b", quiet, rename=True))
    await r2.start()
    lines = [r.getMessage() for r in caplog.records if WARNING in r.getMessage()]
    assert len(lines) == 1 and GONE in lines[0], lines
    gauge = r2.metrics.unknown_processor_work.labels(kind)._value.get()
    assert gauge >= 1, f"{kind} of {GONE} not counted"
