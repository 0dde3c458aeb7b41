"""A backfill run keeps the mode of its first attempt (docs/backfill.md, Executors): one
first sent live is sent to its target on every later attempt, a restart that made its
processor shadow included (``mode: shadow`` in routes.yaml, ``serve --shadow``); one first
attempted in shadow stays done as shadow; a run never attempted takes its processor's mode
when it first is; a run stored before the mode was kept is sent by the mode at send."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from backfill_support import REPO

from scoperouter.backfill.daemon_executor import TargetExecutor, log_completions
from scoperouter.backfill.plan import Request, plan_backfill
from scoperouter.backfill.runner import open_backfill, run_backfill
from scoperouter.backfill.schedule import Policy
from scoperouter.backfill.service import prepare, status
from scoperouter.backfill.store import BackfillStore
from scoperouter.cli import main
from scoperouter.errors import DispatchError
from scoperouter.messages.models import Trigger
from scoperouter.processor_registry.loader import load_config

P = "player_game_summary"
REQ = Request(date(2025, 11, 1), date(2025, 11, 2), (P,))
ONE = {P: Policy(max_attempts=1, concurrency=4)}


class Sink:
    """Records what it is sent; ``fail``: refuses every trigger, ``hold``: never answers."""

    def __init__(self, *, fail: bool = False, hold: bool = False) -> None:
        self.sent: list[Trigger] = []
        self.fail = fail
        self.hold = hold

    async def send(self, trigger: Trigger, *, message_id: str, body: bytes | None = None) -> None:
        if self.hold:
            await asyncio.Event().wait()
        if self.fail:
            raise DispatchError(P, "test", "refused")
        self.sent.append(trigger)

    async def close(self) -> None:
        return None


def _executor(tmp: Path, sinks: dict[str, Any], *, shadow: bool, **kw: Any) -> TargetExecutor:
    return TargetExecutor(sinks, log_completions(tmp / "none.sqlite"), ack_is_completion=True,
                          shadow=frozenset({P}) if shadow else frozenset(), **kw)  # fmt: skip


def _open(tmp: Path) -> tuple[BackfillStore, str, Any]:
    reg = load_config(REPO / "routes.yaml", with_relations=False).registry
    store = BackfillStore(tmp / "backfills.sqlite")
    bid, plan, _ = open_backfill(
        store, "k", lambda: plan_backfill(reg, REQ, as_of=date(2025, 11, 30)), 0.0
    )
    return store, bid, plan


async def _failed_live(tmp: Path) -> tuple[BackfillStore, str, Any, Any]:
    """A backfill whose runs were attempted live and failed (the target down): the store,
    its id, its plan and the run's summary."""
    store, bid, plan = _open(tmp)
    summary = await run_backfill(
        store, bid, plan, _executor(tmp, {P: Sink(fail=True)}, shadow=False), ONE
    )
    return store, bid, plan, summary


async def test_a_run_failed_live_is_sent_after_a_flip_to_shadow(tmp_path: Path) -> None:
    """Failed live, resumed after its processor went shadow: sent to its target, not skipped."""
    store, bid, plan, first = await _failed_live(tmp_path)
    assert first.counts["failed"] == 2
    sink = Sink()
    again = await run_backfill(store, bid, plan, _executor(tmp_path, {P: sink}, shadow=True), ONE,
                               resumed=True)  # fmt: skip
    assert again.ok and again.skipped == {}
    assert sorted(t.game_date for t in sink.sent) == [date(2025, 11, 1), date(2025, 11, 2)]
    got = status(store, bid)
    assert got is not None and got["skipped"] == {} and got["counts"] == {"done": 2}
    assert {r.mode for r in store.runs(bid)} == {"live"}
    store.close()


async def test_a_run_stopped_in_flight_live_is_sent_after_a_flip_to_shadow(tmp_path: Path) -> None:
    """A run in flight when a stop came (sent live, no answer yet) is sent again after the flip."""
    store, bid, plan = _open(tmp_path)
    task = asyncio.ensure_future(
        run_backfill(store, bid, plan, _executor(tmp_path, {P: Sink(hold=True)}, shadow=False), ONE)
    )
    for _ in range(1000):
        if all(r.state == "running" for r in store.runs(bid)):
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert {(r.state, r.mode) for r in store.runs(bid)} == {("waiting", "live")}
    sink = Sink()
    again = await run_backfill(store, bid, plan, _executor(tmp_path, {P: sink}, shadow=True), ONE,
                               resumed=True)  # fmt: skip
    assert again.ok and again.skipped == {} and len(sink.sent) == 2
    store.close()


async def test_a_run_first_attempted_in_shadow_stays_done_after_a_flip_to_live(
    tmp_path: Path,
) -> None:
    """Done as shadow stays done as shadow once its processor is live: never sent."""
    store, bid, plan = _open(tmp_path)
    first = await run_backfill(store, bid, plan, _executor(tmp_path, {}, shadow=True), ONE)
    assert first.ok and first.skipped == {"shadow": 2}
    assert {r.mode for r in store.runs(bid)} == {"shadow"}
    sink = Sink()
    again = await run_backfill(store, bid, plan, _executor(tmp_path, {P: sink}, shadow=False), ONE,
                               resumed=True)  # fmt: skip
    assert again.executed == 0 and again.skipped == {"shadow": 2} and sink.sent == []
    store.close()


async def test_a_run_never_attempted_takes_the_mode_of_its_first_attempt(tmp_path: Path) -> None:
    """Planned while live (as --dry-run stores it), first run after a flip: shadow, not sent."""
    store, bid, plan = _open(tmp_path)
    assert {r.mode for r in store.runs(bid)} == {None}
    sink = Sink()
    got = await run_backfill(store, bid, plan, _executor(tmp_path, {P: sink}, shadow=True), ONE)
    assert got.ok and got.skipped == {"shadow": 2} and sink.sent == []
    store.close()


async def test_a_run_stored_before_the_mode_column_is_sent_by_the_mode_at_send(
    tmp_path: Path,
) -> None:
    """A store without the mode column gains it; its failed runs take the mode they are retried in."""
    store, bid, plan, _ = await _failed_live(tmp_path)
    store.close()
    db = sqlite3.connect(tmp_path / "backfills.sqlite")
    db.execute("ALTER TABLE backfill_runs DROP COLUMN mode")
    db.commit()
    db.close()
    store = BackfillStore(tmp_path / "backfills.sqlite")
    assert {(r.state, r.mode) for r in store.runs(bid)} == {("failed", None)}
    sink = Sink()
    again = await run_backfill(store, bid, plan, _executor(tmp_path, {P: sink}, shadow=True), ONE,
                               resumed=True)  # fmt: skip
    assert again.ok and again.skipped == {"shadow": 2} and sink.sent == []
    assert {r.mode for r in store.runs(bid)} == {"shadow"}
    store.close()


async def test_a_live_run_of_a_processor_without_a_sink_gets_its_target_built(
    tmp_path: Path,
) -> None:
    """Shadow now, so no sink at start (the daemon's): a run stored live builds its target once."""
    store, bid, plan, _ = await _failed_live(tmp_path)
    built: list[str] = []
    sink = Sink()

    def build(processor: str) -> Sink:
        built.append(processor)
        return sink

    ex = _executor(tmp_path, {}, shadow=True, build_sink=build)
    again = await run_backfill(store, bid, plan, ex, ONE, resumed=True)
    assert again.ok and built == [P] and len(sink.sent) == 2
    store.close()


def _seed_failed_live(state_dir: Path, body: dict[str, Any], as_of: date) -> str:
    """The backfill ``POST /backfills`` with ``body`` stores, its first attempts failed live."""
    cfg = load_config(REPO / "routes.yaml")
    req = Request(date.fromisoformat(body["start"]), date.fromisoformat(body["end"]),
                  tuple(body.get("processors", ())))  # fmt: skip
    prep = prepare(cfg.registry, cfg.relations, req, state_dir=state_dir, as_of=as_of)
    sinks: dict[str, Any] = {p: Sink(fail=True) for p in cfg.registry.processor_names}
    policies = {p: Policy(max_attempts=1) for p in cfg.registry.processor_names}
    ex = _executor(state_dir, sinks, shadow=False)
    summary = asyncio.run(run_backfill(prep.store, prep.backfill_id, prep.plan, ex, policies))
    assert summary.counts["failed"] == 2
    prep.store.close()
    return prep.backfill_id


def test_daemon_resumes_runs_failed_live_through_their_target_under_serve_shadow(
    tmp_path: Path,
) -> None:
    """POST /backfills on a serve --shadow daemon: runs failed live go to the outbox target."""
    from scoperouter.runtime.daemon import Daemon, DaemonSettings

    body = {"start": "2025-11-10", "end": "2025-11-11", "processors": [P]}
    state = tmp_path / "s"
    bid = _seed_failed_live(state, body, date(2025, 11, 14))
    cfg = load_config(REPO / "routes.yaml")
    settings = DaemonSettings(state_dir=state, port=0, as_of=date(2025, 11, 14), sync="normal",
                              bearer_token="tok", shadow=True)  # fmt: skip

    async def go() -> dict[str, Any]:
        d = Daemon(cfg.registry, cfg.relations, settings)
        await d.start()
        try:
            headers = {"Authorization": "Bearer tok"}
            url = f"http://127.0.0.1:{d.port}/backfills"
            async with aiohttp.ClientSession() as s:
                async with s.post(url, json=body, headers=headers) as r:
                    assert r.status == 202, await r.text()
                    assert (await r.json())["backfill_id"] == bid
                for _ in range(1000):
                    async with s.get(f"{url}/{bid}", headers=headers) as r:
                        got: dict[str, Any] = await r.json()
                    if got["status"] != "running":
                        return got
                    await asyncio.sleep(0.01)
        finally:
            await d.stop()
        raise AssertionError("the backfill did not finish")

    got = asyncio.run(go())
    assert got["status"] == "done" and got["skipped"] == {}
    sent = [json.loads(x) for x in (state / "outbox.jsonl").read_text().splitlines()]
    assert sorted(t["game_date"] for t in sent) == ["2025-11-10", "2025-11-11"]
    assert {t["reason"] for t in sent} == {"backfill"}


def test_cli_resumes_runs_failed_live_through_their_target_after_mode_shadow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """scoperouter backfill with routes.yaml flipped to mode: shadow: runs failed live are sent;
    --dry-run counts them to run, not shadow."""
    body = {"start": "2025-11-10", "end": "2025-11-11", "processors": [P]}
    state = tmp_path / "s"
    _seed_failed_live(state, body, date(2025, 11, 22))
    flipped = tmp_path / "routes.yaml"
    text = (REPO / "routes.yaml").read_text()
    anchor = f"  {P}:\n    phase: 3\n"
    assert anchor in text
    flipped.write_text(text.replace(anchor, f"  {P}:\n    mode: shadow\n    phase: 3\n"))
    for src in ("data",):
        if (REPO / src).exists():
            (tmp_path / src).symlink_to(REPO / src)
    args = ["backfill", "--config", str(flipped), "--as-of", "2025-11-22", "--start",
            "2025-11-10", "--end", "2025-11-11", "--processors", P, "--state-dir", str(state),
            "--max-attempts", "1"]  # fmt: skip
    assert main([*args, "--dry-run", "--json"]) == 0
    est = json.loads(capsys.readouterr().out)["estimate"]
    assert est["runs"] == 2 and est["runs_shadow"] == 0
    rc = main([*args, "--json"])
    out = capsys.readouterr().out
    end = [json.loads(x) for x in out.splitlines() if '"end"' in x][-1]
    assert rc == 0 and end["skipped"] == {} and end["counts"]["done"] == 2, out
    sent = [json.loads(x) for x in (state / "outbox.jsonl").read_text().splitlines()]
    assert sorted(t["game_date"] for t in sent) == ["2025-11-10", "2025-11-11"]
