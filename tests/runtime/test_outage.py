"""Issue 18: delivery outlasts a target outage -- circuit breaker, backlog in the store,
redrive on recovery, retry horizon, bounded tasks at restart, dead triggers kept."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from runtime_support import RouterFactory, game_day_stream, load, write_registry

from scoperouter.cli import main
from scoperouter.errors import DispatchError
from scoperouter.messages.models import Trigger
from scoperouter.runtime.backlog import RESTART_LOG_LINES
from scoperouter.runtime.breaker import Breaker, Start
from scoperouter.runtime.router import Inbound, Router
from scoperouter.runtime.store import Store

STREAM = game_day_stream()
FAST = {
    "backoff_base_s": 0.01,
    "backoff_cap_s": 0.05,
    "breaker_threshold": 2,
    "pump_interval_s": 0.05,
}


class Switch:
    """A sink that is down (retryable failure, or a hang) until ``up`` is set."""

    def __init__(self, *, hang: bool = False) -> None:
        self.name = "switch"
        self.up = False
        self.hang = hang
        self.calls = 0
        self.inflight = 0
        self.max_inflight = 0
        self.received: list[str] = []

    async def send(self, trigger: Trigger, *, message_id: str, body: bytes | None = None) -> None:
        self.calls += 1
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            if not self.up:
                if self.hang:
                    await asyncio.sleep(3600)
                raise DispatchError(trigger.processor, self.name, "target down")
            await asyncio.sleep(0)
            self.received.append(trigger.trigger_id)
        finally:
            self.inflight -= 1

    async def close(self) -> None:
        return None


async def wait_until(cond: Any, timeout: float = 20.0) -> bool:
    for _ in range(int(timeout / 0.02)):
        if cond():
            return True
        await asyncio.sleep(0.02)
    return bool(cond())


async def submit_all(r: Router, events: list[dict[str, Any]]) -> int:
    outs = await asyncio.gather(*(r.submit(Inbound("test", obj=e)) for e in events))
    assert all(o.ack for o in outs)
    return sum(o.triggers for o in outs)


@pytest.mark.parametrize(
    ("steps", "state", "slots"),
    [
        ([], "closed", 4),
        (["fail"], "closed", 4),
        (["fail", "fail"], "open", 0),
        (["fail", "fail", "wait"], "half_open", 1),
        (["fail", "fail", "wait", "probe"], "half_open", 0),
        (["fail", "fail", "wait", "probe", "probe_fail"], "open", 0),
        (["fail", "fail", "wait", "probe", "ok"], "closed", 4),
        (["fail", "ok", "fail"], "closed", 4),
    ],
)
def test_breaker_states(steps: list[str], state: str, slots: int) -> None:
    """The breaker opens after threshold failures in a row, lets one probe through when half-open, closes on success."""
    b = Breaker(threshold=2, base_s=1.0, cap_s=8.0)
    now = 0.0
    probe = None
    for s in steps:
        if s == "fail":
            b.failed(now, Start(False, b.epoch))
        elif s == "wait":
            now = b.open_until
        elif s == "probe":
            b.slots(now, 4)
            probe = b.started()
            assert probe.probe
        elif s == "probe_fail":
            assert probe is not None
            b.failed(now, probe)
        elif s == "ok":
            b.succeeded()
    assert b.slots(now, 4) == slots
    assert b.state == state


def test_breaker_probe_interval_doubles_up_to_the_cap() -> None:
    """Each failed probe opens the breaker twice as long as before, never longer than the cap."""
    b = Breaker(threshold=1, base_s=1.0, cap_s=5.0)
    now, waits = 0.0, []
    b.failed(now, Start(False, b.epoch))
    for _ in range(5):
        waits.append(b.open_until - now)
        now = b.open_until
        b.slots(now, 1)
        b.failed(now, b.started())
    assert waits == [1.0, 2.0, 4.0, 5.0, 5.0]


async def test_outage_parks_the_backlog_in_the_store_and_redrives_it(
    tmp_path: Path, make_router: RouterFactory
) -> None:
    """While the target is down no trigger dies and tasks stay under the in-flight caps; when it is back every trigger is delivered once."""
    cfg = load(write_registry(tmp_path / "r", default_target={"outbox": {}, "concurrency": 2}))
    sink = Switch()
    r = make_router(cfg, sink, **FAST)
    await r.start()
    fired = await submit_all(r, STREAM[:200])
    assert fired > 50
    lanes = len(cfg.registry.processors)
    peak = 0
    for _ in range(40):  # a while of outage: probes fail, nothing dies, tasks stay bounded
        peak = max(peak, len(r.dispatcher.tasks))
        await asyncio.sleep(0.02)
    await r._flush_marks()
    counts = r.store.trigger_counts()
    assert counts.get("dead", 0) == 0 and counts.get("pending", 0) == fired
    assert peak <= 2 * lanes
    assert any(ln.breaker.state != "closed" for ln in r.dispatcher.lanes.values())
    assert sum(r.metrics.circuit_open.labels(n)._value.get() for n in r.dispatcher.lanes) > 0
    sink.up = True
    assert await r.idle(timeout=30)
    assert r.store.trigger_counts() == {"done": fired}
    assert len(set(sink.received)) == fired
    assert sum(r.metrics.circuit_open.labels(n)._value.get() for n in r.dispatcher.lanes) == 0
    assert sink.max_inflight <= 2 * lanes


async def test_retry_horizon_dead_letters_only_past_it(
    tmp_path: Path, make_router: RouterFactory
) -> None:
    """A target that never comes back: its triggers are dead-lettered with reason retry_horizon, not before."""
    cfg = load(
        write_registry(tmp_path / "r", default_target={"outbox": {}, "retry_horizon": "300ms"})
    )
    sink = Switch()
    r = make_router(cfg, sink, **FAST)
    await r.start()
    fired = await submit_all(r, STREAM[:20])
    assert await r.idle(timeout=30)
    assert r.store.trigger_counts() == {"dead": fired}
    letters = [d for d in r.store.dead_letters() if d.kind == "trigger"]
    assert {d.reason for d in letters} == {"retry_horizon"}
    assert len(letters) == fired
    created = dict(r.store._db.execute("SELECT trigger_id, created_at FROM triggers").fetchall())
    # not before the horizon, by the clock (not by how fast the machine submitted); ref: trigger_id#row
    early = [d.ref for d in letters if d.at < created[str(d.ref).rsplit("#", 1)[0]] + 0.3]
    assert early == []


async def test_restart_with_a_backlog_starts_bounded_tasks_and_one_warning(
    tmp_path: Path, make_router: RouterFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A restart with many pending triggers creates tasks only up to the caps and logs one WARNING, not one per trigger."""
    cfg = load(write_registry(tmp_path / "r", default_target={"outbox": {}, "concurrency": 2}))
    r1 = make_router(cfg, Switch(), **FAST)
    await r1.start()
    fired = await submit_all(r1, STREAM[:300])
    await r1.stop(timeout=0.2)
    assert r1.store.trigger_counts().get("pending", 0) == fired > RESTART_LOG_LINES
    hang = Switch(hang=True)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="scoperouter.runtime"):
        r2 = make_router(cfg, hang, **FAST)
        await r2.start()
        assert await wait_until(lambda: len(r2.dispatcher.tasks) > 0)
        tasks = 0
        for _ in range(15):
            tasks = max(tasks, len(r2.dispatcher.tasks))
            await asyncio.sleep(0.02)
    lanes = len(cfg.registry.processors)
    assert 0 < tasks <= 2 * lanes
    assert r2.metrics.redispatched._value.get() == fired
    warnings = [
        x for x in caplog.records if x.levelno >= logging.WARNING and "restart" in x.getMessage()
    ]
    named = [
        x for x in caplog.records if "re-dispatching trigger pending at restart" in x.getMessage()
    ]
    assert len(warnings) == 1
    assert len(named) == RESTART_LOG_LINES
    await r2.stop(timeout=0.2)  # hanging deliveries are cancelled: they stay pending
    assert r2.store.trigger_counts().get("pending", 0) == fired


async def test_dead_triggers_redrive_and_discard(
    tmp_path: Path, make_router: RouterFactory
) -> None:
    """Redriving dead triggers makes them pending again (fresh attempts, dead letters gone); discarding deletes both."""
    cfg = load(write_registry(tmp_path / "r", default_target={"outbox": {}, "max_attempts": 1}))
    sink = Switch()
    r = make_router(cfg, sink, **FAST)
    await r.start()
    fired = await submit_all(r, STREAM[:10])
    assert await r.idle(timeout=30)
    s = r.store
    assert s.trigger_counts() == {"dead": fired}
    assert len([d for d in s.dead_letters() if d.kind == "trigger"]) == fired
    procs = sorted({row[0] for row in s._db.execute("SELECT processor FROM triggers")})
    with s.transaction():
        n = s.redrive_dead(r.clock(), procs[0])
    assert 0 < n < fired
    assert s.trigger_counts() == {"dead": fired - n, "pending": n}
    assert len([d for d in s.dead_letters() if d.kind == "trigger"]) == fired - n
    sink.up = True
    assert await wait_until(lambda: len(sink.received) == n)  # the pump picks redriven rows up
    with s.transaction():
        assert s.discard_dead() == fired - n
    assert [d for d in s.dead_letters() if d.kind == "trigger"] == []
    assert await r.idle(timeout=30)
    assert s.trigger_counts() == {"done": n}


@pytest.mark.parametrize(
    ("argv", "counts", "letters"),
    [
        (["list"], {"dead": 3}, 3),
        (["redrive"], {"pending": 3}, 0),
        (["redrive", "--processor", "a"], {"pending": 2, "dead": 1}, 1),
        (["discard"], {}, 0),
        (["discard", "--processor", "b"], {"dead": 2}, 2),
    ],
)
def test_dead_letters_command(
    tmp_path: Path, argv: list[str], counts: dict[str, int], letters: int
) -> None:
    """`scoperouter outbox` lists, redrives or discards dead triggers (all, or one processor's)."""
    s = Store(tmp_path / "state.sqlite3", sync="normal")
    with s.transaction():
        for i, proc in enumerate(["a", "a", "b"]):
            rid = s.insert_trigger(f"t{i}", proc, "{}", 1.0)
            s.mark_dead(rid, 3, 2.0, "boom")
            s.dead_letter(
                "trigger",
                f"t{i}#{rid}",
                "retry_horizon",
                "boom",
                f'{{"processor": "{proc}"}}'.encode(),
                2.0,
            )
    s.close()
    assert main(["outbox", *argv, "--state-dir", str(tmp_path)]) == 0
    s = Store(tmp_path / "state.sqlite3", sync="normal")
    try:
        assert s.trigger_counts() == counts
        assert len(s.dead_letters()) == letters
    finally:
        s.close()


def _three_dead(path: Path) -> None:
    """Dead triggers t0, t1 (processor a) and t2 (b), each with its dead letter."""
    s = Store(path, sync="normal")
    with s.transaction():
        for i, proc in enumerate(["a", "a", "b"]):
            rid = s.insert_trigger(f"t{i}", proc, "{}", 1.0)
            s.mark_dead(rid, 3, 2.0, "boom")
            payload = f'{{"processor": "{proc}"}}'.encode()
            s.dead_letter("trigger", f"t{i}#{rid}", "retry_horizon", "boom", payload, 2.0)
    s.close()


@pytest.mark.parametrize("action", ["list", "redrive", "discard"])
def test_outbox_refuses_an_empty_processor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], action: str
) -> None:
    """`outbox ACTION --processor ""` (an unset shell variable) is exit 2, the store unchanged."""
    _three_dead(tmp_path / "state.sqlite3")
    with pytest.raises(SystemExit) as exc:
        main(["outbox", action, "--state-dir", str(tmp_path), "--processor", ""])
    assert exc.value.code == 2
    out = capsys.readouterr()
    assert out.out == "" and "argument --processor: must not be empty" in out.err
    s = Store(tmp_path / "state.sqlite3", sync="normal")
    try:
        assert s.trigger_counts() == {"dead": 3} and len(s.dead_letters()) == 3
    finally:
        s.close()


@pytest.mark.parametrize("action", ["list", "redrive", "discard"])
@pytest.mark.parametrize("scheme", ["sqlite:///", ""], ids=["url", "path"])
def test_outbox_state_that_is_not_there_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], action: str, scheme: str
) -> None:
    """`outbox --state` naming a SQLite file that is not there: exit 1, one line, nothing created."""
    missing = tmp_path / "typo" / "sub" / "state.db"
    assert main(["outbox", action, "--state", f"{scheme}{missing}"]) == 1
    out = capsys.readouterr()
    assert out.out == "" and out.err.strip() == f"error: no state database at {missing} (--state)"
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize("action", ["list", "redrive", "discard"])
def test_outbox_keyword_dsn_state_is_refused_unrepeated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, action: str
) -> None:
    """`outbox --state 'host=... password=...'`: exit 1, the password not printed (it was echoed as a missing SQLite file)."""
    monkeypatch.chdir(tmp_path)
    assert main(["outbox", action, "--state", "host=127.0.0.1 password=S3cretPW"]) == 1
    out = capsys.readouterr()
    assert "keyword-form connection string" in out.err
    assert "S3cretPW" not in out.out + out.err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("action", ["redrive", "discard"])
def test_old_store_empty_processor_matches_none(tmp_path: Path, action: str) -> None:
    """The snapshot + journal store, as the state stores: processor "" is no processor's, not all."""
    _three_dead(tmp_path / "state.sqlite3")
    s = Store(tmp_path / "state.sqlite3", sync="normal")
    try:
        with s.transaction():
            n = s.redrive_dead(5.0, "") if action == "redrive" else s.discard_dead("")
        assert n == 0
        assert s.trigger_counts() == {"dead": 3} and len(s.dead_letters()) == 3
    finally:
        s.close()


@pytest.mark.parametrize("dated", [False, True], ids=["range", "date_and_range"])
async def test_small_events_are_not_queued_behind_long_backfills(
    tmp_path: Path, make_router: RouterFactory, dated: bool
) -> None:
    """Backfills longer than HEAVY_DAYS (a game_date beside the range too) run one per transaction after the light events queued with them."""
    cfg = load(write_registry(tmp_path / "r"))
    r = make_router(cfg, Switch())
    await r.start()
    backfills = [{"event_id": f"bf-{k}", "source": "nba_raw.nbac_gamebook_player_stats", "changed_fields": ["points"],
                  "start_date": "2024-11-01", "end_date": f"2025-0{k + 1}-28"} for k in range(3)]  # fmt: skip
    if dated:  # the planner runs the range too (router/event_range.py): as heavy
        backfills = [{**b, "game_date": "2024-11-01"} for b in backfills]
    small = [e for e in STREAM[:40] if "game_date" in e and "event_id" in e]
    order: list[str] = []

    async def one(ev: dict[str, Any]) -> None:
        out = await r.submit(Inbound("test", obj=ev))
        assert out.ack
        order.append(ev["event_id"])

    await asyncio.gather(*(one(e) for e in [*backfills, *small]))  # backfills queued first
    heavy_at = [order.index(b["event_id"]) for b in backfills]
    assert max(order.index(e["event_id"]) for e in small) < min(heavy_at)
    assert heavy_at == sorted(heavy_at)  # heavy events keep their order
    assert r.store.is_seen("bf-2")


@pytest.mark.slow
def test_outage_bench_small_budget(tmp_path: Path) -> None:
    """bench/outage.py with a 20 s outage and 2,000 events: every check holds (acked, delivered, none dead, RSS, SIGTERM exit 0)."""
    import json
    import subprocess
    import sys

    bench = Path(__file__).resolve().parents[2] / "bench" / "outage.py"
    proc = subprocess.run(
        [sys.executable, str(bench), "--outage", "20", "--events", "2000", "--json"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    out = json.loads(proc.stdout)
    assert out["checks"] == dict.fromkeys(out["checks"], True), out
    assert proc.returncode == 0
