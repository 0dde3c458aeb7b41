"""``loop.json``, the closed loop's mirror (runtime/durable_windows.py): rewritten at most once
a second, and a rewrite that takes long (a large ledger: the whole document each time)
waits long enough that rewriting takes at most ``MIRROR_MAX_SHARE`` of the state thread;
a change skipped for the interval is written by a later commit."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from runtime_support import GAME_DAY, load, write_registry

from scoperouter.router.closed_loop import ClosedLoop
from scoperouter.runtime import loop_runtime
from scoperouter.runtime.durable_windows import DurableWindows
from scoperouter.runtime.options import RouterOptions
from scoperouter.runtime.store import Store


class SlowMirror:
    """Records each rewrite's time and takes ``cost`` seconds of the (fake) clock."""

    def __init__(self, now: list[float], cost: float) -> None:
        self.now, self.cost = now, cost
        self.saves: list[tuple[float, int]] = []  # (time, the loop version written)
        self.version = 0

    def save(self, snapshot: dict[str, Any]) -> None:
        self.saves.append((self.now[0], self.version))
        self.now[0] += self.cost

    def committed(self) -> None: ...

    def rolled_back(self) -> None: ...


@pytest.mark.parametrize("cost", [0.0, 0.01, 0.2, 1.5])
def test_mirror_rewrites_take_a_bounded_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cost: float
) -> None:
    """A change every 0.1 s for a minute: rewrites at least 1 s apart, and (cost / share)
    apart once a rewrite took ``cost``; their time stays within the share; the last change
    is written by the commits that follow."""
    path = write_registry(tmp_path / "cfg", defaults={"run_retries": 1})  # the closed loop
    now = [1_764_000_000.0]
    store = Store(tmp_path / "state" / "state.sqlite3", sync="normal")
    dw = DurableWindows(load(path).registry, store, RouterOptions(as_of=GAME_DAY), lambda: now[0])
    mirror = SlowMirror(now, cost)
    dw.mirror = mirror  # type: ignore[assignment]
    monkeypatch.setattr(ClosedLoop, "version", property(lambda _loop: mirror.version))
    start = now[0]
    for _ in range(600):  # the ledger changes at every commit
        mirror.version += 1
        now[0] += 0.1
        dw.after_commit()
    last = mirror.version
    gap = max(loop_runtime.MIRROR_MIN_INTERVAL_S, cost / loop_runtime.MIRROR_MAX_SHARE)
    for _ in range(int(gap / 0.1) + 10):  # commits without a change (the request poll's)
        now[0] += 0.1
        dw.after_commit()
    store.close()
    times = [t for t, _v in mirror.saves]
    assert len(times) >= 2
    assert all(b - a >= gap - 1e-6 for a, b in pairwise(times))
    assert cost * len(times) <= loop_runtime.MIRROR_MAX_SHARE * (now[0] - start) + cost
    assert mirror.saves[-1][1] == last  # nothing left unwritten
