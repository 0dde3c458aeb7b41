"""The ``cpus`` setting: which CPUs ``serve``'s threads run on (runtime/affinity.py)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from runtime_support import STARTUP_BUDGET_S, free_port, wait_ready, write_registry

from scoperouter.runtime import affinity
from scoperouter.runtime.affinity import choose, cpu_list, format_cpus, parse_cpus

ALL = frozenset({0, 1, 2, 3})


@pytest.mark.parametrize(
    ("setting", "allowed", "current", "want"),
    [
        ("all", ALL, 2, None),
        ("auto", ALL, 2, {2}),  # the CPU it runs on
        ("auto", ALL, None, {0}),  # unknown: the lowest allowed
        ("auto", frozenset({2, 3}), 0, {2}),  # running outside its set: the lowest allowed
        ("auto", frozenset({5}), 5, None),  # one CPU already
        ("1", ALL, 0, {1}),
        ("1-2", ALL, 0, {1, 2}),
        ("0-3", ALL, 0, None),  # the whole set: nothing to narrow
        ("0,3", ALL, 1, {0, 3}),
    ],
)
def test_choose(
    setting: str, allowed: frozenset[int], current: int | None, want: set[int] | None
) -> None:
    """``choose`` keeps auto on one allowed CPU, leaves all alone and takes a list as given."""
    got = choose(setting, allowed, current)
    assert got == (frozenset(want) if want is not None else None)


def test_choose_refuses_cpus_outside_the_set() -> None:
    """A list naming a CPU the process may not use is an error naming it and the set."""
    with pytest.raises(ValueError, match=r"CPU 4-5 is not available .*may use 0-3"):
        choose("3-5", ALL, 0)


@pytest.mark.parametrize("text", ["auto", "all", "0", "2-3", "0,2-3,7", " 1 "])
def test_parse_accepts(text: str) -> None:
    """Valid settings parse to themselves (stripped)."""
    assert parse_cpus(text) == text.strip()


@pytest.mark.parametrize("text", ["", "one", "1-", "-1", "1,,2", "3-1", "0 1", "auto,1"])
def test_parse_refuses(text: str) -> None:
    """Anything else is a ValueError (the config layer names its source)."""
    with pytest.raises(ValueError):
        parse_cpus(text)


@given(st.frozensets(st.integers(0, 40), min_size=1))
def test_format_round_trips(cpus: frozenset[int]) -> None:
    """``format_cpus`` writes runs as ranges that ``cpu_list`` reads back exactly."""
    text = format_cpus(cpus)
    assert cpu_list(text) == cpus
    assert len(text.split(",")) == sum(1 for c in cpus if c - 1 not in cpus)


# --------------------------------------------------------------------------- the daemon
ON_LINUX = hasattr(os, "sched_getaffinity")


def _allowed_of(pid: int) -> dict[str, frozenset[int]]:
    """Thread id -> the CPUs that thread may run on (``/proc``)."""
    out: dict[str, frozenset[int]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except OSError:
            continue
        line = next(ln for ln in status.splitlines() if ln.startswith("Cpus_allowed_list:"))
        out[task.name] = cpu_list(line.split(":", 1)[1].strip())
    return out


async def _wait(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    async with aiohttp.ClientSession() as s:
        await wait_ready(s, port, proc, log)


def _serve(tmp: Path, *extra: str) -> tuple[subprocess.Popen[bytes], int, Path]:
    cfg = write_registry(tmp / "cfg")
    port, log = free_port(), tmp / "serve.log"
    cmd = [sys.executable, "-m", "scoperouter.cli", "serve", "--config", str(cfg),
           "--state-dir", str(tmp / "state"), "--port", str(port), "--as-of", "2025-11-19",
           "--no-log", *extra]  # fmt: skip
    with log.open("wb") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT), port, log


@pytest.mark.skipif(not ON_LINUX, reason="CPU affinity is Linux-only (sched_setaffinity)")
@pytest.mark.parametrize("setting", [None, "all"])
def test_serve_threads_stay_where_the_setting_says(tmp_path: Path, setting: str | None) -> None:
    """Default serve keeps every thread on one CPU of its set (said in its log); ``all``
    leaves them all on the whole set."""
    mine = frozenset(os.sched_getaffinity(0))
    if setting is None and len(mine) < 2:
        pytest.skip(f"this process may use one CPU only ({format_cpus(mine)}): nothing to pin")
    proc, port, log = _serve(tmp_path, *(["--cpus", setting] if setting else []))
    try:
        asyncio.run(_wait(port, proc, log))
        threads = _allowed_of(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
    assert len(threads) >= 3  # the loop, state and outbox threads at least
    sets = set(threads.values())
    if setting == "all":
        assert sets == {mine}
        assert "cpus all: unchanged" in log.read_text()
    else:
        assert len(sets) == 1
        (only,) = sets
        assert len(only) == 1 and only <= mine
        assert f"cpus auto: pinned, threads on CPU {format_cpus(only)}" in log.read_text()


@pytest.mark.skipif(not ON_LINUX, reason="CPU affinity is Linux-only (sched_setaffinity)")
def test_serve_refuses_a_cpu_it_may_not_use(tmp_path: Path) -> None:
    """``--cpus`` naming a CPU outside the process's set exits 1 with that CPU named."""
    proc, _port, log = _serve(tmp_path, "--cpus", "4095")
    assert proc.wait(STARTUP_BUDGET_S) == 1
    assert "CPU 4095 is not available to this process" in log.read_text()


def test_apply_all_changes_nothing() -> None:
    """``apply('all')`` leaves this process's CPUs as they are and says so."""
    before = frozenset(os.sched_getaffinity(0)) if ON_LINUX else frozenset()
    placed = affinity.apply("all")
    assert placed.after == placed.before == before
    assert placed.note in ("unchanged", "no CPU affinity on this platform")
