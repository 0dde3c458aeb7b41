"""The daemon records each processor's effective mode in the execution log when it starts
(review defect 4): ``serve --shadow`` makes every processor shadow whatever routes.yaml
says, and ``report`` reads the logged mode for a processor that has no runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from runtime_support import GAME_DAY, load, write_registry

from scoperouter.execution_log import SqliteExecutionLog
from scoperouter.execution_log.reader import read_log
from scoperouter.runtime.daemon import Daemon, DaemonSettings


@pytest.mark.parametrize(("shadow", "mode"), [(True, "shadow"), (False, "live")])
async def test_daemon_logs_its_modes_at_start(shadow: bool, mode: str, tmp_path: Path) -> None:
    """serve --shadow logs every processor shadow; without it, routes.yaml's (live here)."""
    cfg = load(write_registry(tmp_path / "cfg"))
    path = tmp_path / "log.sqlite"
    log = SqliteExecutionLog(path)
    d = Daemon(
        cfg.registry,
        cfg.relations,
        DaemonSettings(state_dir=tmp_path / "state", port=0, as_of=GAME_DAY, shadow=shadow),
        log=log,
    )
    await d.start()
    await d.stop()
    log.close()
    assert read_log(path).modes == {n: mode for n in cfg.registry.processors}
