"""A live processor whose planned runs read a shadow upstream's planned runs is warned about
(docs/backfill.md, Executors): the targets executor sends a shadow processor's runs nothing
(production still runs them), so its live readers read the upstream's existing output, not
a re-run one. The runs are not blocked -- flipping processors live one at a time is the
rollout -- but the CLI says so on stderr (``--dry-run`` too), and ``POST /backfills`` and
``GET /backfills/ID`` in ``warnings``. A run's mode is its stored one (``backfill_runs.mode``,
its first attempt's), else its processor's now."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from backfill_support import REPO, repo_registry

from scoperouter.backfill.http_api import backfill_api
from scoperouter.backfill.plan import BackfillPlan, Request, plan_backfill
from scoperouter.backfill.shadow_reads import shadow_reads, shadow_warning
from scoperouter.cli import main
from scoperouter.messages.models import Trigger
from scoperouter.processor_registry.loader import load_config
from scoperouter.runtime.http import IngressApp
from scoperouter.runtime.metrics import Metrics

PGS, LR = "player_game_summary", "league_rankings"  # league_rankings reads PGS, same date
TDGS = "team_defense_game_summary"  # reads neither
D1, D2 = date(2025, 11, 10), date(2025, 11, 11)
BOTH_D2_SHADOW = {f"{PGS}@{D2}": "shadow", f"{LR}@{D2}": "shadow"}


def _plan(*processors: str) -> BackfillPlan:
    return plan_backfill(repo_registry(), Request(D1, D2, processors), as_of=date(2025, 11, 20))


def _modes(plan: BackfillPlan, stored: dict[str, str]) -> dict[int, str]:
    """Stored modes by ``processor@date`` key (``processor`` alone: every run of it)."""
    out: dict[int, str] = {}
    for i, r in enumerate(plan.runs):
        mode = stored.get(r.key) or stored.get(r.processor)
        if mode is not None:
            out[i] = mode
    return out


@pytest.mark.parametrize(
    ("processors", "shadow", "stored", "want"),
    [
        pytest.param((PGS, LR), {PGS}, {}, {LR: (PGS,)}, id="upstream-shadow-now"),
        pytest.param((PGS, LR), set(), {}, {}, id="all-live"),
        pytest.param((PGS, LR), {PGS, LR}, {}, {}, id="all-shadow-serve-shadow"),
        pytest.param((PGS, LR), {LR}, {}, {}, id="reader-shadow-upstream-live"),
        pytest.param((LR,), {PGS}, {}, {}, id="upstream-not-selected"),
        pytest.param((PGS, TDGS), {PGS}, {}, {}, id="no-reader"),
        # first attempted live, shadow now: its runs were sent (they keep their first mode)
        pytest.param((PGS, LR), {PGS}, {PGS: "live"}, {}, id="upstream-stored-live"),
        # first attempted in shadow, live now: done without a run
        pytest.param((PGS, LR), set(), {PGS: "shadow"}, {LR: (PGS,)}, id="upstream-stored-shadow"),
        # one upstream date stored shadow is enough: the reader of that date reads it
        pytest.param((PGS, LR), set(), {f"{PGS}@{D2}": "shadow"}, {LR: (PGS,)}, id="one-date"),
        # the readers' runs stored shadow (sent nothing either): no live reader
        pytest.param((PGS, LR), {PGS}, {LR: "shadow"}, {}, id="reader-stored-shadow"),
        # the reader of the shadow date stored shadow, the other date's reader live
        pytest.param((PGS, LR), set(), BOTH_D2_SHADOW, {}, id="the-shadow-dates-reader-shadow"),
    ],
)
def test_live_readers_of_shadow_upstreams(
    processors: tuple[str, ...],
    shadow: set[str],
    stored: dict[str, str],
    want: dict[str, tuple[str, ...]],
) -> None:
    """Each live processor whose planned runs read a shadow upstream's planned runs, with those upstreams; a run's mode is its stored one, else its processor's now."""
    plan = _plan(*processors)
    assert shadow_reads(plan, _modes(plan, stored), frozenset(shadow)) == want


def test_the_warning_names_each_reader_and_its_shadow_upstreams() -> None:
    """The text names the live reader and the shadow upstream, says what is read, and that nothing is blocked."""
    text = shadow_warning({LR: (PGS,)})
    assert text is not None and text.startswith("warning: ")
    assert f"{LR} reads {PGS}" in text and "existing output" in text
    assert shadow_warning({}) is None


def _flipped(tmp: Path) -> Path:
    """routes.yaml with player_game_summary in shadow mode (its readers live)."""
    text = (REPO / "routes.yaml").read_text()
    anchor = f"  {PGS}:\n    phase: 3\n"
    assert anchor in text
    path = tmp / "routes.yaml"
    path.write_text(text.replace(anchor, f"  {PGS}:\n    mode: shadow\n    phase: 3\n"))
    (tmp / "data").symlink_to(REPO / "data")
    return path


@pytest.mark.parametrize("dry_run", [False, True])
def test_the_cli_warns_on_stderr_and_still_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dry_run: bool
) -> None:
    """scoperouter backfill with a shadow upstream and its live reader: one warning on stderr naming both (--dry-run too, and in its --json), exit 0, the reader's runs sent."""
    args = ["backfill", "--config", str(_flipped(tmp_path)), "--as-of", "2025-11-20",
            "--start", str(D1), "--end", str(D2), "--processors", PGS, LR,
            "--state-dir", str(tmp_path / "s")] + (["--dry-run"] if dry_run else [])  # fmt: skip
    assert main(args) == 0
    err = capsys.readouterr().err
    assert err.count(f"{LR} reads {PGS}") == 1, err
    if dry_run:
        assert main([*args, "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert [w for w in out["warnings"] if f"{LR} reads {PGS}" in w], out
    else:
        sent = [json.loads(x) for x in (tmp_path / "s" / "outbox.jsonl").read_text().splitlines()]
        assert sorted((t["processor"], t["game_date"]) for t in sent) == [(LR, str(D1)), (LR, str(D2))]  # fmt: skip


class _Sink:
    async def send(self, trigger: Trigger, *, message_id: str, body: bytes | None = None) -> None:
        return None

    async def close(self) -> None:
        return None


async def test_post_and_get_answer_the_warning(tmp_path: Path) -> None:
    """POST /backfills and GET /backfills/ID carry the warning in ``warnings``; the backfill still runs to done."""
    reg = load_config(_flipped(tmp_path), with_relations=False).registry
    api = backfill_api(reg, lambda: None, tmp_path / "s", {LR: _Sink()}, date(2025, 11, 20))
    app = IngressApp(_router(), verifier=None)
    app.backfills = api
    c: TestClient[Any, Any] = TestClient(TestServer(app.app))
    await c.start_server()
    try:
        body = {"start": str(D1), "end": str(D2), "processors": [PGS, LR]}
        resp = await c.post("/backfills", json=body)
        posted = await resp.json()
        assert resp.status == 202, posted
        for _ in range(500):
            got = await (await c.get(f"/backfills/{posted['backfill_id']}")).json()
            if got["status"] != "running":
                break
            await asyncio.sleep(0.01)
    finally:
        await api.close()
        await c.close()
    for answer in (posted, got):
        assert [w for w in answer["warnings"] if f"{LR} reads {PGS}" in w], answer
    assert got["status"] == "done" and got["skipped"] == {"shadow": 2}


def _router() -> Any:
    from types import SimpleNamespace

    return SimpleNamespace(metrics=Metrics())  # only the rejection counter is used here
