"""Running a finished backfill again: the same request resumes it and runs nothing, and says
so with the way out; ``--rerun`` (``"rerun": true``) plans it again as a new backfill whose
runs all run, the stored one keeping its record; refused while the stored one runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from backfill_support import REPO
from test_http_api import AUTH, BODY, _wait_done, client  # noqa: F401  (the fixture)

from scoperouter.backfill.http_body import rerun_of
from scoperouter.backfill.store import BackfillStore
from scoperouter.cli import main

ARGV = ["backfill", "--start", "2025-11-10", "--end", "2025-11-10", "--processors",
        "player_game_summary", "league_rankings", "--as-of", "2025-11-12", "--json"]  # fmt: skip


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture
def repo_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The repository's routes.yaml and data in a fresh directory (outbox targets)."""
    shutil.copy(REPO / "routes.yaml", tmp_path / "routes.yaml")
    shutil.copytree(REPO / "data", tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _sent(root: Path) -> list[str]:
    outbox = root / ".scoperouter" / "outbox.jsonl"
    return [json.loads(x)["processor"] for x in outbox.read_text().splitlines()]


def test_a_finished_backfill_again_runs_nothing_and_says_how_to_rerun_it(
    repo_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same command after a finished backfill: exit 0, nothing sent, a note naming --rerun."""
    rc, _out, err = _run(ARGV, capsys)
    assert rc == 0, err
    assert "note:" not in err
    first = _sent(repo_copy)
    rc, out, err = _run(ARGV, capsys)
    assert rc == 0 and '"executed": 0' in out.splitlines()[-1]
    assert "already finished" in err and "--rerun" in err
    assert _sent(repo_copy) == first


def test_rerun_runs_every_run_again_as_a_new_backfill(
    repo_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--rerun: a new id, every run sent again, the old record kept; then the plain command resumes the new one."""
    rc, out, err = _run(ARGV, capsys)
    assert rc == 0, err
    old = json.loads(out.splitlines()[-1])["backfill_id"]
    first = _sent(repo_copy)
    rc, out, err = _run([*ARGV, "--rerun"], capsys)
    assert rc == 0, err
    new = json.loads(out.splitlines()[-1])
    assert new["backfill_id"] != old and new["executed"] == len(first)
    assert f"a rerun of backfill {old}" in err and "already finished" not in err
    assert sorted(_sent(repo_copy)) == sorted(first * 2)
    store = BackfillStore(repo_copy / ".scoperouter" / "backfills.sqlite")
    assert sorted(store.ids()) == sorted([old, new["backfill_id"]])
    assert store.status(old) == store.status(new["backfill_id"]) == "done"
    store.close()
    rc, out, err = _run(ARGV, capsys)  # the request's key now names the rerun
    assert rc == 0 and json.loads(out.splitlines()[-1])["backfill_id"] == new["backfill_id"]
    assert '"executed": 0' in out.splitlines()[-1] and len(_sent(repo_copy)) == 2 * len(first)


def test_rerun_is_refused_while_the_stored_backfill_runs(
    repo_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """While another process holds the stored backfill's run lock, --rerun exits 1 and changes nothing."""
    assert _run([*ARGV, "--dry-run"], capsys)[0] == 0
    store = BackfillStore(repo_copy / ".scoperouter" / "backfills.sqlite")
    (bid,) = store.ids()
    with store.running(bid):
        rc, _out, err = _run([*ARGV, "--rerun"], capsys)
    assert rc == 1 and f"backfill {bid} of this request is running" in err
    assert store.ids() == [bid]
    store.close()
    assert not (repo_copy / ".scoperouter" / "outbox.jsonl").exists()


async def test_post_with_rerun_runs_the_request_again(client: Any) -> None:  # noqa: F811
    """POST again: resumed with a note; with "rerun": true, a new backfill that runs every run."""
    c, calls, _app = client
    bid = (await (await c.post("/backfills", headers=AUTH, json=BODY)).json())["backfill_id"]
    await _wait_done(c, bid)
    again = await (await c.post("/backfills", headers=AUTH, json=BODY)).json()
    assert again["backfill_id"] == bid and again["resumed"] is True
    assert '"rerun": true' in again["note"]
    await _wait_done(c, bid)
    assert len(calls) == 4
    resp = await c.post("/backfills", headers=AUTH, json={**BODY, "rerun": True})
    got = await resp.json()
    assert resp.status == 202 and got["replaces"] == bid and got["resumed"] is False
    assert "note" not in got
    assert (await _wait_done(c, got["backfill_id"]))["counts"] == {"done": 4}
    assert len(calls) == 8
    old = await (await c.get(f"/backfills/{bid}", headers=AUTH)).json()
    assert old["status"] == "done"  # the replaced backfill is still answered by its id


@pytest.mark.parametrize(
    ("body", "want"),
    [({}, False), ({"rerun": False}, False), ({"rerun": True}, True), (["x"], False)],
)
def test_rerun_of_reads_a_json_boolean(body: Any, want: bool) -> None:
    """rerun defaults to false and is read from a JSON boolean."""
    assert rerun_of(body) is want


@pytest.mark.parametrize("value", ["true", "false", 1, 0, None])
def test_rerun_of_refuses_anything_but_a_boolean(value: Any) -> None:
    """A string or number is not a rerun flag: a 400, not a guess."""
    with pytest.raises(ValueError, match="rerun must be true or false"):
        rerun_of({"rerun": value})
