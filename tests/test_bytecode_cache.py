"""tests/bytecode_cache.py: the test run caches bytecode where the environment turns that
off, for itself and the processes it starts; elsewhere it changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
PROBE = (
    "import json, os, sys; import bytecode_cache; print(json.dumps([sys.dont_write_bytecode,"
    " os.environ.get('PYTHONDONTWRITEBYTECODE')]))"
)


def _env(**set_: str) -> dict[str, str]:
    """This environment without PYTHONDONTWRITEBYTECODE, then ``set_``."""
    return {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}, **set_}


@pytest.mark.parametrize(
    ("set_", "flags"),
    [({}, []), ({"PYTHONDONTWRITEBYTECODE": "1"}, []), ({}, ["-B"])],
    ids=["caching-on", "off-by-environment", "off-by-flag"],
)
def test_caching_is_on_after_the_import(set_: dict[str, str], flags: list[str]) -> None:
    """However caching was off, a fresh interpreter that imports the module has it on and
    hands no PYTHONDONTWRITEBYTECODE down."""
    out = subprocess.run(
        [sys.executable, *flags, "-c", PROBE],
        cwd=TESTS,
        env=_env(**set_),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [False, None]


@pytest.mark.parametrize("imported", [True, False], ids=["imported", "not-imported"])
def test_processes_started_afterwards_cache_what_they_import(
    tmp_path: Path, imported: bool
) -> None:
    """A child started after the import (its environment inherited) writes the bytecode of
    a module it imports; without the import it writes none (the environment's setting)."""
    (tmp_path / "probe_mod.py").write_text("X = 1\n", encoding="utf-8")
    code = (
        ("import bytecode_cache; " if imported else "")
        + "import subprocess, sys;"
        + f" subprocess.run([sys.executable, '-c', 'import probe_mod'], cwd={str(tmp_path)!r},"
        + " check=True)"
    )
    env = _env(PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPYCACHEPREFIX", None)
    subprocess.run([sys.executable, "-c", code], cwd=TESTS, env=env, check=True)
    cached = [p.name.split(".")[0] for p in (tmp_path / "__pycache__").glob("*.pyc")]
    assert cached == (["probe_mod"] if imported else [])


def test_this_run_caches_bytecode() -> None:
    """The session (each xdist worker too) runs with caching on and hands it down."""
    assert not sys.dont_write_bytecode
    assert "PYTHONDONTWRITEBYTECODE" not in os.environ
