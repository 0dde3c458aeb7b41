"""The README's ``explain`` / ``replay`` examples run as written, on the sample events in
``examples/events/``, and its ``explain`` transcript is what the command prints."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")


def _bash_lines() -> list[str]:
    """Commands of the README's ```bash blocks that run explain or replay (comments cut)."""
    out: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        for line in block.splitlines():
            cmd = line.split(" #", 1)[0].strip()
            if cmd.startswith(("scoperouter explain", "scoperouter replay")):
                out.append(cmd)
    return out


COMMANDS = _bash_lines()


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """What the examples read, copied: the registry, its relation data, the sample events
    (so that a replay without --dry-run writes into the copy, not the repository)."""
    shutil.copy(REPO / "routes.yaml", tmp_path / "routes.yaml")
    shutil.copytree(REPO / "data", tmp_path / "data")
    shutil.copytree(REPO / "examples" / "events", tmp_path / "examples" / "events")
    return tmp_path


def _run(cmd: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    argv = shlex.split(cmd)
    assert argv[0] == "scoperouter"
    return subprocess.run(
        [sys.executable, "-m", "scoperouter.cli", *argv[1:]],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def test_readme_has_explain_and_replay_examples() -> None:
    """The tour shows explain, explain --cascade and replay on files that exist."""
    assert any(c.startswith("scoperouter explain") and "--cascade" in c for c in COMMANDS)
    assert any(c.startswith("scoperouter replay") for c in COMMANDS)
    for cmd in COMMANDS:
        for arg in shlex.split(cmd):
            if arg.startswith("examples/"):
                assert (REPO / arg).is_file(), arg


@pytest.mark.parametrize("cmd", COMMANDS)
def test_readme_command_runs_as_written(checkout: Path, cmd: str) -> None:
    """Each README explain/replay command exits 0 and prints decisions or triggers."""
    r = _run(cmd, checkout)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    if "explain" in cmd:
        assert "PROCESSOR" in r.stdout and "run" in r.stdout
    else:
        assert "replay: 30 events, 0 rejected" in r.stderr and r.stdout.strip()


def test_readme_explain_transcript(checkout: Path) -> None:
    """The `$ echo ... | scoperouter explain -` transcript: the command runs as written and
    every line shown (`...` stands for lines left out) is in the output, in order."""
    m = re.search(
        r"\$ echo '(.*?)' \\\n\s*\| (scoperouter explain [^\n]*)\n(.*?)\n```", README, re.S
    )
    assert m is not None
    event = " ".join(m.group(1).split())
    r = _run(m.group(2), checkout, stdin=event)
    assert r.returncode == 0, r.stderr
    got = r.stdout.splitlines()
    at = 0
    for shown in m.group(3).splitlines():
        if shown.strip() == "...":
            continue
        assert shown in got[at:], f"{shown!r} not in the output after line {at}:\n{r.stdout}"
        at = got.index(shown, at) + 1
