"""One real ``scoperouter demo`` run shared by the test modules that read it (the CLI's JSON
contract in tests/nba, the execution log it writes in tests/execution_log): a whole demo
day takes about 15 s idle, so it runs once per session (the ``demo_run`` fixture)."""

from __future__ import annotations

import contextlib
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import scoperouter.examples.nba.demo as demo_mod
from scoperouter.cli import main
from scoperouter.examples.nba.demo import DemoResult


@dataclass
class DemoRun:
    rc: int
    out: dict[str, Any]
    result: DemoResult
    seconds: float
    html: Path
    cwd: Path  # where it ran: its execution log is at the default path under it


def run_demo(cwd: Path) -> DemoRun:
    """``scoperouter demo --json --html --export-events`` in ``cwd`` (no ./routes.yaml: the
    packaged registry is used), the result object captured on the way."""
    captured: list[DemoResult] = []
    real = demo_mod.run_demo

    def spy(*args: Any, **kwargs: Any) -> DemoResult:
        res = real(*args, **kwargs)
        captured.append(res)
        return res

    html = cwd / "demo.html"
    buf = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        mp.setattr(demo_mod, "run_demo", spy)
        t0 = time.process_time()  # CPU time: the demo's work, not the shared machine's load
        with contextlib.redirect_stdout(buf):
            rc = main(
                [
                    "demo",
                    "--json",
                    "--html",
                    str(html),
                    "--export-events",
                    str(cwd / "events.jsonl"),
                ]
            )
        seconds = time.process_time() - t0
    return DemoRun(rc, json.loads(buf.getvalue()), captured[0], seconds, html, cwd)
