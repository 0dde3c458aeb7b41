"""One daemon per SQLite state file (the embedded store is single-instance): while one
``serve`` runs on the file, a second one on it -- however it names the file -- is refused
with one line naming the file and the holder, before it touches the store (so it never
rescues the first one's leases); offline commands keep working on the file beside the
running daemon; the file is free again once the first daemon stops."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from runtime_support import GAME_DAY

from scoperouter.cli import main
from scoperouter.errors import ConfigError
from scoperouter.runtime.daemon import Daemon, DaemonSettings


def _settings(state_dir: Path, state: str | None, replica: str) -> DaemonSettings:
    return DaemonSettings(
        state_dir=state_dir,
        port=0,
        as_of=GAME_DAY,
        sync="normal",
        state=state,
        replica_id=replica,
        lock_timeout_s=0.0,
    )


# (the first daemon's --state, the second's; None: the state dir's own state.db) -- paths
# relative to the test's directory, the working directory
CASES = [
    pytest.param("sqlite:///db/state.db", "sqlite:///db/state.db", id="both-name-the-file"),
    pytest.param(None, "sqlite:///s1/state.db", id="second-names-the-first-ones-default-store"),
    pytest.param("sqlite:///db/state.db", "sqlite:///link/state.db", id="through-a-symlink"),
    pytest.param("sqlite:///db/state.db", "db/state.db", id="a-bare-relative-path"),
]


@pytest.mark.parametrize(("first", "second"), CASES)
async def test_a_second_daemon_on_the_file_is_refused(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    zero_cfg: Any,
    first: str | None,
    second: str,
) -> None:
    """A second serve on a running daemon's SQLite file fails with one line naming the file and holder."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "db").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "db", target_is_directory=True)
    a = Daemon(zero_cfg.registry, zero_cfg.relations, _settings(tmp_path / "s1", first, "rep-a"))
    await a.start()
    try:
        with pytest.raises(ConfigError) as err:
            Daemon(
                zero_cfg.registry, zero_cfg.relations, _settings(tmp_path / "s2", second, "rep-b")
            )
        [issue] = err.value.issues
        db = tmp_path / ("s1" if first is None else "db") / "state.db"
        assert "\n" not in issue.message
        assert str(db) in issue.message and "in use" in issue.message
        assert f"pid {os.getpid()}" in issue.message and "rep-a" in issue.message
    finally:
        await a.stop()


@pytest.mark.parametrize(
    "argv",
    [
        ["outbox", "list", "--state", "sqlite:///db/state.db"],
        ["outbox", "redrive", "--state", "sqlite:///db/state.db"],
        ["outbox", "discard", "--processor", "nope", "--state", "sqlite:///db/state.db"],
    ],
)
async def test_offline_commands_work_beside_the_running_daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zero_cfg: Any, argv: list[str]
) -> None:
    """scoperouter outbox list/redrive/discard still open the file while serve holds it."""
    monkeypatch.chdir(tmp_path)
    a = Daemon(
        zero_cfg.registry,
        zero_cfg.relations,
        _settings(tmp_path / "s1", "sqlite:///db/state.db", "rep-a"),
    )
    await a.start()
    try:
        assert main(argv) == 0
    finally:
        await a.stop()


async def test_the_file_is_free_once_the_daemon_stops(tmp_path: Path, zero_cfg: Any) -> None:
    """After the first daemon stops, a second one starts on the same file."""
    loc = f"sqlite:///{tmp_path / 'state.db'}"
    a = Daemon(zero_cfg.registry, zero_cfg.relations, _settings(tmp_path / "s1", loc, "rep-a"))
    await a.start()
    await a.stop()
    b = Daemon(zero_cfg.registry, zero_cfg.relations, _settings(tmp_path / "s2", loc, "rep-b"))
    await b.start()
    await b.stop()
