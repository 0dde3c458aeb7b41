"""The daemon exempts its long-lived heap (modules, registry, relation data) from the cyclic
garbage collector once started, freezes relation data again after a reload, and gives
everything back to the collector when it stops."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

from runtime_support import GAME_DAY, load, write_registry

from scoperouter.runtime.daemon import GC_GEN0_THRESHOLD, Daemon, DaemonSettings


def frozen(obj: object) -> bool:
    """Tracked by the collector but in none of its generations: in the permanent one."""
    return gc.is_tracked(obj) and all(o is not obj for o in gc.get_objects())


def make_daemon(tmp_path: Path) -> Daemon:
    cfg = load(write_registry(tmp_path / "cfg"))
    settings = DaemonSettings(
        state_dir=tmp_path / "s",
        port=0,
        as_of=GAME_DAY,
        sync="normal",
        http_enabled=False,
        relations_refresh_s=0.0,
    )
    return Daemon(cfg.registry, cfg.relations, settings)


async def test_freeze_heap_then_stop_unfreezes(tmp_path: Path) -> None:
    """freeze_heap moves the registry and relation data out of the collector's reach; stop() brings them back."""
    d = make_daemon(tmp_path)
    before = gc.get_threshold()
    await d.start()
    try:
        assert not frozen(d.router.relations)
        d.freeze_heap()
        assert gc.get_freeze_count() > 0
        assert frozen(d.router.relations) and frozen(d.registry)
        assert gc.get_threshold() == (GC_GEN0_THRESHOLD, *before[1:])
    finally:
        await d.stop()
    assert gc.get_freeze_count() == 0
    assert not frozen(d.router.relations)
    assert gc.get_threshold() == before


async def test_reload_freezes_new_relations_and_frees_old(tmp_path: Path) -> None:
    """After a relation reload the new data is frozen too and the replaced data is reclaimed."""
    d = make_daemon(tmp_path)
    await d.start()
    try:
        before = gc.get_threshold()
        d.freeze_heap()
        old = weakref.ref(d.router.relations)
        assert await d.reloader.reload()
        assert d.router.relations is not old()
        assert frozen(d.router.relations)
        assert old() is None
        assert gc.get_threshold()[0] == GC_GEN0_THRESHOLD
    finally:
        await d.stop()
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before


async def test_reload_without_freeze_leaves_heap_alone(tmp_path: Path) -> None:
    """A daemon that never froze its heap (tests, embedding) does not freeze it on reload."""
    d = make_daemon(tmp_path)
    await d.start()
    try:
        assert await d.reloader.reload()
        assert gc.get_freeze_count() == 0
        assert not frozen(d.router.relations)
    finally:
        await d.stop()
