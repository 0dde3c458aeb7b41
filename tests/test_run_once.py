"""tests/run_once.py: a session value computed by the first xdist worker that asks, read
by the others; computed in place without xdist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from run_once import computed_once


class RunTemp:
    """A stand-in for pytest's TempPathFactory: this worker's base temp dir under ``run``."""

    def __init__(self, run: Path, worker: str) -> None:
        self.base = run / f"popen-{worker}"

    def getbasetemp(self) -> Path:
        return self.base


def test_the_first_worker_computes_the_others_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers of one run: the value is computed once, packed, and the second worker
    gets the first's value unpacked; another name is computed on its own."""
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    calls: list[str] = []

    def compute(who: str) -> dict[str, Any]:
        calls.append(who)
        return {"who": who, "rows": [1, 2]}

    def ask(worker: str, name: str = "v") -> dict[str, Any]:
        return computed_once(
            RunTemp(tmp_path, worker),  # type: ignore[arg-type]
            name,
            lambda: compute(worker),
            pack=lambda v: {**v, "packed": True},
            unpack=lambda v: {**v, "unpacked": True},  # type: ignore[dict-item]
        )

    first = ask("gw0")
    assert first == {"who": "gw0", "rows": [1, 2]}  # the computed value itself
    assert ask("gw1") == {"who": "gw0", "rows": [1, 2], "packed": True, "unpacked": True}
    assert ask("gw1", "other")["who"] == "gw1"
    assert calls == ["gw0", "gw1"]


def test_a_failed_computation_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A computation that raises writes no value: the next worker computes its own."""
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")

    def fail() -> int:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        computed_once(RunTemp(tmp_path, "gw0"), "v", fail)  # type: ignore[arg-type]
    assert computed_once(RunTemp(tmp_path, "gw1"), "v", lambda: 7) == 7  # type: ignore[arg-type]


def test_without_xdist_it_computes_every_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One process (no xdist worker): computed in place, nothing written (pytest caches
    the session fixture itself)."""
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    factory = RunTemp(tmp_path, "gw0")
    assert computed_once(factory, "v", lambda: 1) == 1  # type: ignore[arg-type]
    assert computed_once(factory, "v", lambda: 2) == 2  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
