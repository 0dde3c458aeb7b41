"""Router robustness (daemon audit): poison messages are isolated and dead-lettered, a failed
commit never leaves a fired window to fire again, an unwritable store backs off and turns
not-ready, and the outbox/dead-letter housekeeping."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from runtime_support import (
    MemorySink,
    RouterFactory,
    dry_run_keys,
    game_day_stream,
    key_of,
    load,
    write_registry,
)

import scoperouter.runtime.intake as intake_mod
from scoperouter.errors import ConfigError, DispatchError
from scoperouter.messages.models import Event, Trigger
from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.runtime.daemon import Daemon, DaemonSettings
from scoperouter.runtime.router import Inbound

STREAM = [e for e in game_day_stream(60) if "affected_entities" in e]
POISON_ID = "poison-1"


def poison_event(player: str = "lalplayer01") -> dict[str, Any]:
    """A canonical event (made poisonous by the player id or by a patched normaliser)."""
    return {
        "event_id": POISON_ID,
        "source": "nba_raw.nbac_injury_report",  # injury_reason: player_game_summary alone
        "game_date": "2025-11-19",
        "affected_entities": {"players": [player]},
        "changed_fields": ["injury_reason"],
    }


def _surrogate_ids(ev: Event) -> Event:
    return ev.model_copy(update={"affected_entities": {"players": ("s\udc00",)}})


async def _submit_batch(r: Any, events: list[dict[str, Any]]) -> list[Any]:
    # all submitted before the ingest worker runs: one batch, one transaction
    return list(
        await asyncio.gather(
            *(
                r.submit(
                    Inbound(
                        "pubsub", obj=e, message_id=f"m-{e['event_id']}", dead_letter_on_reject=True
                    )
                )
                for e in events
            )
        )
    )


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("surrogate_id", "invalid_field"),
        ("unserialisable_event", "unserialisable"),
        ("book_raises", "internal_error"),
    ],
)
async def test_poison_item_is_dead_lettered_and_the_batch_commits(
    zero_cfg: LoadedConfig,
    make_router: RouterFactory,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
    reason: str,
) -> None:
    """One item failing inside the batch is dead-lettered (acked); the rest commit and route."""
    sink = MemorySink()
    r = make_router(zero_cfg, sink)
    if fault == "unserialisable_event":
        real = intake_mod.normalize_event

        def normalize(raw: object, registry: Any, **kw: Any) -> Event:
            ev = real(raw, registry, **kw)
            return _surrogate_ids(ev) if ev.event_id == POISON_ID else ev

        monkeypatch.setattr(intake_mod, "normalize_event", normalize)  # the router normalises there
    await r.start()
    if fault == "book_raises":
        real_add = r.book.add_states

        def add(ev: Event, d: Any, now: float, live: bool = False) -> Any:
            if ev.event_id == POISON_ID:
                raise RuntimeError("injected window bug")
            return real_add(ev, d, now, live)

        monkeypatch.setattr(r.book, "add_states", add)
    good = STREAM[:20]
    poison = poison_event("s\udc00" if fault == "surrogate_id" else "lalplayer01")
    outs = await _submit_batch(r, [*good[:10], poison, *good[10:]])
    by_id = {o.event_id: o for o in outs}
    assert all(by_id[e["event_id"]].status == "accepted" for e in good)
    bad = by_id[POISON_ID]
    assert bad.status == "rejected" and bad.dead_lettered and bad.ack
    dls = [d for d in r.store.dead_letters() if d.kind == "event"]
    assert [d.ref for d in dls] == [f"m-{POISON_ID}"]
    assert dls[0].reason == reason
    assert await r.idle()
    assert sorted(key_of(t) for t in sink.received) == dry_run_keys(zero_cfg, good)
    assert r.store.is_seen(good[0]["event_id"]) and not r.store.is_seen(POISON_ID)


class FlakyDb:
    """Wraps the store's SQLite connection; ``fail_commits`` COMMITs raise a disk error, and
    with ``broken`` every write fails (a full or read-only disk)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.fail_commits = 0
        self.broken = False
        self.writes = 0

    def _check(self, sql: str) -> None:
        head = sql.lstrip().split(None, 1)[0].upper()
        if head in {"SELECT", "PRAGMA", "ROLLBACK", "RELEASE"}:
            return
        self.writes += 1
        if self.broken and head != "BEGIN":
            raise sqlite3.OperationalError("database or disk is full")
        if head == "COMMIT" and self.fail_commits:
            self.fail_commits -= 1
            raise sqlite3.OperationalError("disk I/O error")

    def execute(self, sql: str, *args: Any) -> Any:
        self._check(sql)
        return self.db.execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> Any:
        self._check(sql)
        return self.db.executemany(sql, *args)

    def executescript(self, sql: str) -> Any:
        return self.db.executescript(sql)

    @property
    def in_transaction(self) -> bool:
        return self.db.in_transaction

    def close(self) -> None:
        self.db.close()


def windowed_cfg(tmp_path: Path) -> LoadedConfig:
    return load(write_registry(tmp_path / "win", quiet="30s", max_wait="2m"))


def crash(r: Any) -> None:
    """Abandon a router without stop() (as a SIGKILL would)."""
    for t in r._background:
        t.cancel()
    r._started = False


def timer(r: Any) -> Any:
    """The router's window timer task."""
    return next(t for t in r._background if t.get_name() == "windows")


async def test_window_fired_after_a_failed_commit_does_not_fire_again_after_a_crash(
    tmp_path: Path, make_router: RouterFactory
) -> None:
    """A window whose fire commit failed, then fired for real, is journaled: a crash does not re-fire it."""
    cfg = windowed_cfg(tmp_path)
    now = [5_000_000.0]
    sink = MemorySink()
    r1 = make_router(cfg, sink, clock=lambda: now[0])
    flaky = FlakyDb(r1.store._db)
    r1.store._db = flaky  # type: ignore[assignment]
    await r1.start()
    timer(r1).cancel()  # the test fires by hand: no concurrent fire of the timer task
    out = await r1.submit(Inbound("test", obj=poison_event()))
    assert out.status == "accepted" and r1.book.open_count == 1
    now[0] += 200.0
    flaky.fail_commits = 1
    assert await r1.fire_due() == 0  # the commit failed: nothing fired, the window is back
    assert r1.book.open_count == 1
    assert await r1.fire_due() == 1
    assert await r1.idle()
    await r1._flush_marks()
    assert len(sink.received) == 1
    crash(r1)
    r2 = make_router(cfg, sink, clock=lambda: now[0])
    await r2.start()
    assert r2.book.open_count == 0
    now[0] += 200.0
    assert await r2.fire_due() == 0
    assert await r2.idle()
    assert len(sink.received) == 1


async def test_unwritable_store_backs_off_turns_not_ready_and_recovers(
    tmp_path: Path, make_router: RouterFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing store is retried with backoff and few log lines, /readyz is not ready, and it recovers."""
    cfg = windowed_cfg(tmp_path)
    now = [6_000_000.0]
    sink = MemorySink()
    r = make_router(cfg, sink, clock=lambda: now[0], store_backoff_cap_s=0.2)
    flaky = FlakyDb(r.store._db)
    r.store._db = flaky  # type: ignore[assignment]
    await r.start()
    assert (await r.submit(Inbound("test", obj=poison_event()))).status == "accepted"
    assert r.ready and r.store_healthy and r.store_problem() is None
    flaky.broken = True
    flaky.writes = 0
    now[0] += 200.0  # the window is due: every attempt to fire it fails
    r._window_wake.set()
    await asyncio.sleep(1.0)
    assert not r.store_healthy and not r.ready and r.store_problem()
    assert 1 <= flaky.writes <= 40  # backoff, not a spin (thousands per second before)
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert 1 <= len(errors) <= 3
    assert sink.received == []
    late = {**poison_event(), "event_id": "late-1"}
    out = await r.submit(Inbound("test", obj=late))
    assert (out.status, out.reason) == ("unavailable", "store_error")
    flaky.broken = False
    for _ in range(100):
        if r.ready and sink.received:
            break
        await asyncio.sleep(0.05)
    assert r.ready and r.store_healthy and r.store_problem() is None
    assert len(sink.received) == 1


class FailThenHang:
    """Fails its first ``fail`` calls (retryable), then hangs; or always fails."""

    def __init__(self, fail: int, *, hang_after: bool = True) -> None:
        self.name = "flaky"
        self.fail = fail
        self.hang_after = hang_after
        self.calls = 0

    async def send(self, trigger: Trigger, *, message_id: str, body: bytes | None = None) -> None:
        self.calls += 1
        if self.calls > self.fail and self.hang_after:
            await asyncio.sleep(3600)
        raise DispatchError(trigger.processor, self.name, "injected failure")

    async def close(self) -> None:
        return None


async def test_pending_trigger_attempts_survive_a_restart(
    tmp_path: Path, make_router: RouterFactory
) -> None:
    """Failed attempts of a pending trigger are persisted: after a restart it is dead-lettered at max_attempts."""
    cfg = load(write_registry(tmp_path / "r", default_target={"outbox": {}, "max_attempts": 3}))
    first = FailThenHang(2)
    r1 = make_router(cfg, first, backoff_base_s=0.001, backoff_cap_s=0.01)
    await r1.start()
    assert (await r1.submit(Inbound("test", obj=poison_event()))).triggers == 1
    for _ in range(100):
        if first.calls == 3:
            break
        await asyncio.sleep(0.01)
    await r1.stop(timeout=0.2)  # the third attempt is in flight: the trigger stays pending
    assert r1.store.trigger_counts() == {"pending": 1}
    second = FailThenHang(0, hang_after=False)
    r2 = make_router(cfg, second, backoff_base_s=0.001, backoff_cap_s=0.01)
    await r2.start()
    assert await r2.idle()
    await r2._flush_marks()
    assert second.calls == 1  # attempts 1 and 2 were spent before the restart
    assert r2.store.trigger_counts() == {"dead": 1}
    assert [d.reason for d in r2.store.dead_letters()] == ["max_attempts"]


async def test_housekeeping_keeps_dead_triggers_prunes_old_done_and_event_dead_letters(
    zero_cfg: LoadedConfig, make_router: RouterFactory
) -> None:
    """Old done rows and rejected-event dead letters are pruned; dead triggers and their dead letters stay (issue 18)."""
    now = [7_000_000.0]
    day = 86400.0
    r = make_router(zero_cfg, clock=lambda: now[0])
    s = r.store
    with s.transaction():
        rows = {}
        for name, status, age in [
            ("old-done", "done", 8),
            ("old-dead", "dead", 8),
            ("new-dead", "dead", 1),
            ("old-pending", "pending", 30),
        ]:
            rid = s.insert_trigger(name, "p", "{}", now[0] - age * day)
            rows[name] = rid
            if status == "done":
                s.mark_done(rid, 1, now[0] - age * day)
            elif status == "dead":
                s.mark_dead(rid, 3, now[0] - age * day, "boom")
        s.dead_letter("event", "old", "not_json", None, b"x", now[0] - 8 * day)
        s.dead_letter("event", "new", "not_json", None, b"x", now[0] - 1 * day)
        s.dead_letter(
            "trigger",
            f"old-dead#{rows['old-dead']}",
            "retry_horizon",
            None,
            b"{}",
            now[0] - 8 * day,
        )
    assert r._prune().dead_letters == 1  # the old event's letter (said by housekeeping.said)
    left = {row[0] for row in s._db.execute("SELECT trigger_id FROM triggers").fetchall()}
    assert left == {"old-dead", "new-dead", "old-pending"}
    assert [d.ref for d in s.dead_letters()] == ["new", f"old-dead#{rows['old-dead']}"]


def _file_as_state_dir(tmp: Path) -> Path:
    (tmp / "f").write_text("x")
    return tmp / "f"


def _file_as_parent(tmp: Path) -> Path:
    (tmp / "f").write_text("x")
    return tmp / "f" / "state"


def _dir_as_database(tmp: Path) -> Path:
    (tmp / "s" / "state.db").mkdir(parents=True)
    return tmp / "s"


def _corrupt_database(tmp: Path) -> Path:
    (tmp / "s").mkdir()
    (tmp / "s" / "state.db").write_bytes(b"this is not a database" * 100)
    return tmp / "s"


def _corrupt_old_database(tmp: Path) -> Path:
    """The snapshot + journal store left by an older version cannot be imported."""
    (tmp / "s").mkdir()
    (tmp / "s" / "state.sqlite3").write_bytes(b"this is not a database" * 100)
    return tmp / "s"


@pytest.mark.parametrize(
    "make_state_dir",
    [
        _file_as_state_dir,
        _file_as_parent,
        _dir_as_database,
        _corrupt_database,
        _corrupt_old_database,
    ],
)
def test_unusable_state_dir_is_a_one_line_config_error(
    tmp_path: Path, zero_cfg: LoadedConfig, make_state_dir: Any
) -> None:
    """A state dir (or its database) that cannot be used fails start-up with a one-line ConfigError naming it."""
    state = make_state_dir(tmp_path)
    with pytest.raises(ConfigError) as info:
        Daemon(
            zero_cfg.registry,
            zero_cfg.relations,
            DaemonSettings(state_dir=state, port=0, sync="normal", lock_timeout_s=0.1),
        )
    text = str(info.value)
    assert "\n" not in text and str(state) in text and "not usable" in text


def test_serve_with_unusable_state_dir_exits_1_with_one_line(tmp_path: Path) -> None:
    """`scoperouter serve` on an unusable state dir exits 1 with one error line, no traceback."""
    cfg = write_registry(tmp_path / "cfg")
    state = _file_as_state_dir(tmp_path)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "scoperouter.cli",
            "serve",
            "--config",
            str(cfg),
            "--state-dir",
            str(state),
            "--no-log",
            "--port",
            "0",
            "--lock-timeout",
            "0.1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "not usable" in lines[0] and "Traceback" not in proc.stderr
