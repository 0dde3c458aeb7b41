"""Overlapping backfills are refused across processes sharing one state dir: the CLI checks
the backfills the store holds live (run lock held), the daemon's included, and the daemon
checks the CLI's; a record left ``running`` by a dead process blocks nothing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from backfill_support import REPO
from backfill_support import repo_registry as reg

from scoperouter.backfill.executor import RunOutcome
from scoperouter.backfill.http_api import BackfillApi
from scoperouter.backfill.plan import Request
from scoperouter.backfill.service import prepare, store_path
from scoperouter.backfill.store import BackfillStore
from scoperouter.cli import main

AS_OF = date(2025, 11, 22)
PGS = Request(date(2025, 11, 1), date(2025, 11, 2), ("player_game_summary",))


@contextlib.contextmanager
def other_process(state_dir: Path, req: Request, *, alive: bool = True) -> Iterator[str]:
    """A backfill another process started on ``state_dir``: stored running, its run lock held
    while the block runs (``alive``), or left as a killed process leaves it (lock free)."""
    prep = prepare(reg(), None, req, state_dir=state_dir, as_of=AS_OF)
    bid = prep.backfill_id
    with prep.store.running(bid):
        prep.store.set_status(bid, "running", 0.0)
        if alive:
            yield bid
    if not alive:
        yield bid
    prep.store.close()


def cli(state_dir: Path, start: str, end: str, *procs: str) -> list[str]:
    return ["backfill", "--config", str(REPO / "routes.yaml"), "--as-of", AS_OF.isoformat(),
            "--state-dir", str(state_dir), "--start", start, "--end", end,
            "--processors", *procs, "--json"]  # fmt: skip


@pytest.mark.parametrize(
    ("start", "end", "procs", "refused"),
    [
        # reads player_game_summary on the dates the other rewrites
        ("2025-11-02", "2025-11-03", ("league_rankings",), True),
        # the same processor on overlapping dates
        ("2025-11-02", "2025-11-02", ("player_game_summary",), True),
        # unrelated processors, the same dates
        ("2025-11-01", "2025-11-02", ("team_defense_game_summary",), False),
        # a reader of it, far later dates
        ("2025-11-10", "2025-11-11", ("league_rankings",), False),
    ],
)
def test_cli_backfill_against_a_live_one(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    start: str,
    end: str,
    procs: tuple[str, ...],
    refused: bool,
) -> None:
    """A CLI backfill conflicting with one a live process runs exits 1 naming it; others run."""
    with other_process(tmp_path, PGS) as bid:
        rc = main(cli(tmp_path, start, end, *procs))
    err = capsys.readouterr().err
    if refused:
        assert rc == 1
        assert f"backfill {bid} is running" in err
        assert "player_game_summary" in err and "2025-11-01 .. 2025-11-02" in err
        assert "once it has ended" in err
        store = BackfillStore(store_path(tmp_path))
        mine = [b for b in store.ids() if b != bid]
        # refused before anything ran: its runs all waiting, and not stored running
        assert all({r.state for r in store.runs(b)} == {"waiting"} for b in mine)
        assert all(store.status(b) == "planned" for b in mine)
        store.close()
    else:
        assert rc == 0, err
        assert "overlapping" not in err


def test_a_record_left_running_by_a_dead_process_blocks_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Stored running with its run lock free (process died): interrupted, the new one runs."""
    with other_process(tmp_path, PGS, alive=False) as bid:
        rc = main(cli(tmp_path, "2025-11-02", "2025-11-03", "league_rankings"))
    assert rc == 0, capsys.readouterr().err
    store = BackfillStore(store_path(tmp_path))
    assert store.status(bid) == "interrupted"
    store.close()


class Gated:
    """Runs wait for ``release``."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def execute(
        self, processor: str, day: date, *, backfill_id: str, attempt: int
    ) -> RunOutcome:
        await self.release.wait()
        return RunOutcome(True, rows=1)


def _api(state_dir: Path, ex: Gated) -> BackfillApi:
    return BackfillApi(reg(), lambda: None, state_dir, lambda _b: ex, as_of=lambda: AS_OF)


async def test_the_cli_is_refused_a_backfill_overlapping_the_daemons(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The daemon runs a backfill on the state dir: a conflicting CLI backfill exits 1."""
    gate = Gated()
    api = _api(tmp_path, gate)
    code, got = await api.start(
        {"start": "2025-11-01", "end": "2025-11-02", "processors": ["player_game_summary"]}
    )
    assert code == 202, got
    argv = cli(tmp_path, "2025-11-02", "2025-11-03", "league_rankings")
    rc = await asyncio.to_thread(main, argv)
    assert rc == 1 and f"backfill {got['backfill_id']} is running" in capsys.readouterr().err
    gate.release.set()
    await asyncio.gather(*api.tasks.values())
    await api.close()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"start": "2025-11-02", "end": "2025-11-03", "processors": ["league_rankings"]}, 409),
        ({"start": "2025-11-10", "end": "2025-11-11", "processors": ["league_rankings"]}, 202),
    ],
)
async def test_the_daemon_refuses_a_backfill_overlapping_another_process(
    tmp_path: Path, body: dict[str, object], code: int
) -> None:
    """A backfill another process (the CLI) runs on the state dir: POST answers 409 naming it."""
    gate = Gated()
    api = _api(tmp_path, gate)
    with other_process(tmp_path, PGS) as bid:
        got_code, got = await api.start(body)
        assert got_code == code, got
        if code == 409:
            assert got["error"] == "overlapping_backfill" and got["backfill_id"] == bid
            assert "player_game_summary" in got["detail"]
    gate.release.set()
    await asyncio.gather(*api.tasks.values())
    await api.close()
