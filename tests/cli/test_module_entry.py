"""``python -m scoperouter`` runs the same CLI as the ``scoperouter`` script."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("argv", "code", "needle"),
    [
        (["--help"], 0, "validate"),
        (["validate", "no-such-file.yaml"], 1, "cannot read"),
    ],
)
def test_module_entry_matches_script(argv: list[str], code: int, needle: str) -> None:
    """The module entry point passes argv and the exit code through."""
    out = subprocess.run(
        [sys.executable, "-m", "scoperouter", *argv], capture_output=True, text=True, check=False
    )
    assert out.returncode == code, out.stderr
    assert needle in out.stdout + out.stderr
