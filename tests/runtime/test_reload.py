"""Hot reload of relation data: polling the CSV files, SIGHUP, a broken file keeping the
old data (ERROR + error counter), and --relations-refresh 0 turning polling off."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from reload_support import recording_router, small_registry
from runtime_support import GAME_DAY, STARTUP_BUDGET_S, load, write_registry

from scoperouter.commands.serve import _duration
from scoperouter.commands.serve import _relations_fingerprints as _serve_fingerprints
from scoperouter.messages.models import Trigger
from scoperouter.runtime.daemon import Daemon, DaemonSettings
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.reload import (
    RelationReloader,
    data_timestamp,
    log_relation_warnings,
    relation_fingerprint,
)
from scoperouter.runtime.router import Inbound

PROCESSOR = "team_offense_game_summary"  # reads player rows through player_team (and its
# opponent's: team_opponent, from the schedule, which no reload here changes)
NEW_PLAYER = "newguy01"  # in no roster until the test adds ",LAL,newguy01"


def event(event_id: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "source": "nba_raw.nbac_gamebook_player_stats",
        "game_date": str(GAME_DAY),
        "affected_entities": {"players": [NEW_PLAYER]},
        "changed_fields": ["points"],
    }


def add_roster_row(relations: Path) -> None:
    with (relations / "team_players.csv").open("a", encoding="utf-8") as fh:
        fh.write(f",LAL,{NEW_PLAYER}\n")


def break_roster(relations: Path) -> int:
    """Append a bad row; returns its line number."""
    path = relations / "team_players.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([*lines, "not-a-date,LAL,x"]) + "\n", encoding="utf-8")
    return len(lines) + 1


def scope_of(outbox: Path, event_id: str) -> tuple[str, tuple[str, ...] | None]:
    """(scope, entity ids) of the PROCESSOR trigger caused by ``event_id``."""
    for line in outbox.read_text(encoding="utf-8").splitlines():
        t = Trigger.model_validate_json(line)
        if t.processor == PROCESSOR and event_id in t.caused_by:
            return t.scope, t.entity_ids
    raise AssertionError(f"no {PROCESSOR} trigger for {event_id}")


def reloads(d: Daemon, result: str) -> float:
    value = d.metrics.registry.get_sample_value(
        "scoperouter_relation_reloads_total", {"result": result}
    )
    assert value is not None
    return value


async def route(d: Daemon, event_id: str) -> tuple[str, tuple[str, ...] | None]:
    assert (await d.router.submit(Inbound("test", obj=event(event_id)))).status == "accepted"
    assert await d.router.idle(5.0)
    return scope_of(d.settings.state_dir / "outbox.jsonl", event_id)


async def wait_for(cond: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.02)
    return True


@pytest.mark.parametrize(
    ("refresh_s", "trigger", "after"),
    [
        (0.05, "poll", ("entities", ("LAL", "MEM"))),
        (0.0, "reload", ("entities", ("LAL", "MEM"))),
        (0.0, "poll", ("date", None)),  # refresh 0: no polling, the old data stays
    ],
)
async def test_new_roster_row_takes_effect_after_reload(
    tmp_path: Path, refresh_s: float, trigger: str, after: tuple[str, tuple[str, ...] | None]
) -> None:
    """An unknown player routes date-scope (empty_mapping); once team_players.csv gains its
    row and a poll or reload() picks it up, the same event routes to the player's team;
    with refresh 0 nothing polls and the date scope stays."""
    cfg_path = write_registry(tmp_path / "cfg")
    cfg = load(cfg_path)
    settings = DaemonSettings(
        state_dir=tmp_path / "s",
        port=0,
        as_of=GAME_DAY,
        sync="normal",
        http_enabled=False,
        relations_refresh_s=refresh_s,
    )
    d = Daemon(cfg.registry, cfg.relations, settings)
    await d.start()
    try:
        assert d.reloader.polling == (refresh_s > 0)
        assert await route(d, "before") == ("date", None)
        add_roster_row(tmp_path / "cfg" / "relations")
        if trigger == "reload":
            assert await d.reloader.reload()
        else:
            await wait_for(lambda: reloads(d, "ok") > 0, 3.0 if refresh_s else 0.3)
        assert reloads(d, "ok") == (0 if after[0] == "date" else 1)
        assert await route(d, "after") == after
        assert reloads(d, "error") == 0
    finally:
        await d.stop()


async def test_broken_csv_keeps_old_data(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A reload of a bad CSV fails: ERROR names file:line, the error counter counts it, the
    previous data stays in use and the poller does not retry the same broken files."""
    cfg_path = write_registry(tmp_path / "cfg")
    rel = tmp_path / "cfg" / "relations"
    add_roster_row(rel)
    cfg = load(cfg_path)
    settings = DaemonSettings(
        state_dir=tmp_path / "s",
        port=0,
        as_of=GAME_DAY,
        sync="normal",
        http_enabled=False,
        relations_refresh_s=0.05,
    )
    d = Daemon(cfg.registry, cfg.relations, settings)
    await d.start()
    try:
        bad_line = break_roster(rel)
        assert await wait_for(lambda: reloads(d, "error") > 0, 3.0)
        await asyncio.sleep(0.3)  # several more polls: the same broken files are not retried
        assert (reloads(d, "ok"), reloads(d, "error")) == (0, 1)
        errors = [
            r
            for r in caplog.records
            if r.name == "scoperouter.runtime.reload" and r.levelname == "ERROR"
        ]
        assert len(errors) == 1 and f"team_players.csv:{bad_line}:" in errors[0].getMessage()
        assert await route(d, "still-old") == ("entities", ("LAL", "MEM"))
        assert d.router.ready
    finally:
        await d.stop()


@pytest.mark.parametrize(
    ("row", "warned"),
    [(",lal,newguy01", True), (",LAL,newguy01", False), (",MEM,LAL", False)],
    ids=["team_id_in_other_case", "same_spelling", "other_entity_type"],
)
async def test_reload_warns_of_ids_differing_only_by_case(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, row: str, warned: bool
) -> None:
    """A reload loading a team id that differs from another only by case logs a WARNING
    naming file:line of the new spelling; the data is loaded all the same."""
    cfg_path = write_registry(tmp_path / "cfg")
    rel = tmp_path / "cfg" / "relations"
    cfg = load(cfg_path)
    assert not cfg.relations.warnings
    settings = DaemonSettings(
        state_dir=tmp_path / "s", port=0, as_of=GAME_DAY, sync="normal", http_enabled=False
    )
    d = Daemon(cfg.registry, cfg.relations, settings)
    await d.start()
    try:
        path = rel / "team_players.csv"
        line = len(path.read_text(encoding="utf-8").splitlines()) + 1
        with path.open("a", encoding="utf-8") as fh:
            fh.write(row + "\n")
        assert await d.reloader.reload()
        warnings = [
            r.getMessage()
            for r in caplog.records
            if r.name == "scoperouter.runtime.reload"
            and r.levelname == "WARNING"
            and getattr(r, "code", None) == "relation_id_case"  # not the polling hint
        ]
        assert [f"team_players.csv:{line}:" in m for m in warnings] == ([True] if warned else [])
    finally:
        await d.stop()


def test_serve_start_logs_ids_differing_only_by_case(tmp_path: Path) -> None:
    """serve's log names file:line of a relation id that differs from another only by case."""
    cfg = write_registry(tmp_path / "cfg")
    path = tmp_path / "cfg" / "relations" / "team_players.csv"
    line = len(path.read_text(encoding="utf-8").splitlines()) + 1
    with path.open("a", encoding="utf-8") as fh:
        fh.write(",lal,newguy01\n")
    log_file = tmp_path / "serve.log"
    proc = _serve(cfg, tmp_path / "state", log_file)
    try:
        _wait_port(proc, log_file)
        warned = [
            json.loads(x)
            for x in log_file.read_text().splitlines()
            if x.startswith("{") and f"team_players.csv:{line}:" in x
        ]
        assert [w["severity"] for w in warned] == ["WARNING"], log_file.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.read().decode()


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exported")


def test_sighup_reloads_a_running_serve(tmp_path: Path) -> None:
    """`serve --relations-refresh 0`: SIGHUP on a broken CSV counts an error and the daemon
    stays ready and serving; SIGHUP after the fix loads it (ok counter, data timestamp)."""
    cfg = write_registry(tmp_path / "cfg")
    rel = tmp_path / "cfg" / "relations"
    log_file = tmp_path / "serve.log"
    proc = _serve(cfg, tmp_path / "state", log_file, "--sync", "normal")
    try:
        port = _wait_port(proc, log_file)
        base = f"http://127.0.0.1:{port}"
        ok, err = (
            'scoperouter_relation_reloads_total{result="ok"}',
            'scoperouter_relation_reloads_total{result="error"}',
        )
        bad_line = break_roster(rel)
        proc.send_signal(signal.SIGHUP)
        text = _poll_metrics(base, err, 1.0)
        assert _metric(text, ok) == 0
        assert _get(base + "/readyz")[0] == 200
        req = urllib.request.Request(
            base + "/events", data=json.dumps(event("e-1")).encode(), method="POST"
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            assert json.loads(r.read())["status"] == "accepted"
        assert f"team_players.csv:{bad_line}:" in log_file.read_text()
        lines = (rel / "team_players.csv").read_text(encoding="utf-8").splitlines()[:-1]
        (rel / "team_players.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        text = _poll_metrics(base, ok, 1.0)
        assert _metric(text, err) == 1
        newest = max(p.stat().st_mtime for p in rel.glob("*.csv"))
        assert _metric(text, "scoperouter_relations_loaded_timestamp_seconds") == pytest.approx(
            newest
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _serve(cfg: Path, state_dir: Path, log_file: Path, *extra: str) -> subprocess.Popen[bytes]:
    """``serve`` on a free port, relations reloaded on SIGHUP only, its log in ``log_file``."""
    args = ["serve", "--config", str(cfg), "--state-dir", str(state_dir), "--port", "0",
            "--no-log", "--relations-refresh", "0", "--as-of", str(GAME_DAY), *extra]  # fmt: skip
    with log_file.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "scoperouter.cli", *args], stdout=log, stderr=subprocess.STDOUT
        )


def _wait_port(proc: subprocess.Popen[bytes], log_file: Path) -> int:
    deadline = time.monotonic() + STARTUP_BUDGET_S
    while True:
        for line in log_file.read_text().splitlines():
            if line.startswith("{") and json.loads(line).get("message") == "HTTP ingress listening":
                return int(json.loads(line)["port"])
        assert time.monotonic() < deadline and proc.poll() is None, log_file.read_text()
        time.sleep(0.05)


def _poll_metrics(base: str, name: str, want: float) -> str:
    deadline = time.monotonic() + 60
    while True:
        text = _get(base + "/metrics")[1]
        if _metric(text, name) >= want or time.monotonic() >= deadline:
            assert _metric(text, name) == want
            return text
        time.sleep(0.05)


def test_fingerprint_tracks_size_mtime_and_missing_files(tmp_path: Path) -> None:
    """The fingerprint changes when a file's size or mtime changes or it disappears; the
    data timestamp is the newest mtime of the files that exist."""
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("date,from,to\n")
    b.write_text("date,from,to\n")
    os.utime(a, (1_000, 1_000))
    os.utime(b, (2_000, 2_000))
    fp0 = relation_fingerprint([b, a])
    assert data_timestamp(fp0) == 2_000
    os.utime(a, (1_500, 1_500))
    fp1 = relation_fingerprint([a, b])
    a.write_text("date,from,to\n,x,y\n")
    os.utime(a, (1_500, 1_500))
    fp2 = relation_fingerprint([a, b])
    b.unlink()
    fp3 = relation_fingerprint([a, b])
    assert len({fp0, fp1, fp2, fp3}) == 4
    assert data_timestamp(fp3) == 1_500
    assert data_timestamp(relation_fingerprint([b])) is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0.0), ("0s", 0.0), ("60s", 60.0), ("5m", 300.0), ("250ms", 0.25), ("60", 60.0)],
)
def test_relations_refresh_flag_parses_durations(text: str, seconds: float) -> None:
    """--relations-refresh takes a duration or a bare number of seconds (0: polling off)."""
    assert _duration(text) == seconds


@pytest.mark.parametrize("text", ["", "-1s", "-1", "soon"])
def test_relations_refresh_flag_rejects_garbage(text: str) -> None:
    """Anything else is an argparse error, not a crash at start-up."""
    with pytest.raises(argparse.ArgumentTypeError):
        _duration(text)


async def test_sighup_during_stop_starts_no_reload(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A SIGHUP that lands once the daemon's graceful stop has stopped the reloader (the
    signal handler stays installed until ``run_forever`` returns) loads nothing: no task
    outlives the stop, the router keeps its data, and the log says the request was ignored."""
    caplog.set_level(logging.INFO, logger="scoperouter.runtime.reload")
    cfg_path = write_registry(tmp_path / "cfg")
    cfg = load(cfg_path)
    loads: list[int] = []

    def loader(_registry: object) -> Any:
        loads.append(1)
        return cfg.relations

    router: Any = argparse.Namespace(set_relations=lambda _r: loads.append(2))
    reloader = RelationReloader(cfg.registry, router, Metrics(), interval_s=0.0, loader=loader)
    await reloader.start()
    await reloader.stop()
    reloader.request_reload()
    for _ in range(20):
        await asyncio.sleep(0.01)
    assert loads == [] and not reloader._requests
    assert any("ignored" in r.getMessage() for r in caplog.records if r.name.endswith("reload"))


async def test_a_change_during_start_up_is_loaded_without_polling(tmp_path: Path) -> None:
    """`--relations-refresh 0` (SIGHUP only): files changed after serve read them but before
    the SIGHUP handler was installed (a SIGHUP then is ignored) are loaded once at start --
    the fingerprint taken before the read says so -- instead of staying stale until the next
    SIGHUP."""
    cfg_path = write_registry(tmp_path / "cfg")
    cfg = load(cfg_path)
    rel = tmp_path / "cfg" / "relations"
    before = relation_fingerprint(rel.glob("*.csv"))  # as serve stats them, then reads
    add_roster_row(rel)  # lands while the daemon starts
    got: list[Any] = []
    router: Any = argparse.Namespace(set_relations=got.append)
    reloader = RelationReloader(cfg.registry, router, Metrics(), interval_s=0.0, fingerprint=before)
    await reloader.start()
    try:
        assert await wait_for(lambda: bool(got), 3.0)
        assert got[0].targets("player_team", GAME_DAY, NEW_PLAYER)
    finally:
        await reloader.stop()


def with_ready_file(cfg_path: Path, name: str = "_READY") -> None:
    """Name ``name`` as the registry's ``relation_data.csv.ready_file``."""
    text = cfg_path.read_text(encoding="utf-8")
    assert "    dir: relations\n" in text
    cfg_path.write_text(
        text.replace("    dir: relations\n", f"    dir: relations\n    ready_file: {name}\n"),
        encoding="utf-8",
    )


@pytest.mark.parametrize(
    ("ready", "touch_csv", "touch_ready", "reloaded"),
    [
        (False, True, False, True),  # no ready_file: any CSV change reloads
        (True, True, False, False),  # a CSV alone: the writer is not done yet
        (True, True, True, True),  # the ready file touched: every CSV is in place
        (True, False, True, True),  # the ready file appearing alone also reloads
    ],
)
async def test_a_ready_file_decides_when_relations_reload(
    tmp_path: Path, ready: bool, touch_csv: bool, touch_ready: bool, reloaded: bool
) -> None:
    """With `relation_data.csv.ready_file` only that file's change reloads the relation data
    (files replaced one by one are never read half old, half new); without it, any CSV's."""
    cfg_path = write_registry(tmp_path / "cfg")
    if ready:
        with_ready_file(cfg_path)
    cfg = load(cfg_path)
    rel = tmp_path / "cfg" / "relations"
    stats = _serve_fingerprints(str(cfg_path))  # as serve stats them before reading
    assert stats is not None
    before, read = stats
    if touch_csv:
        add_roster_row(rel)
    if touch_ready:
        (rel / "_READY").write_text("2025-11-19T06:00:00Z\n", encoding="utf-8")
    got: list[Any] = []
    router: Any = argparse.Namespace(set_relations=got.append)
    reloader = RelationReloader(
        cfg.registry, router, Metrics(), interval_s=0.0, fingerprint=before, read=read
    )
    await reloader.start()  # compares the watched files with ``before`` at once
    try:
        assert bool(reloader._requests) == reloaded
        await asyncio.gather(*reloader._requests)
        assert bool(got) == reloaded
        if got:
            assert bool(got[0].targets("player_team", GAME_DAY, NEW_PLAYER)) == touch_csv
    finally:
        await reloader.stop()


async def test_a_touched_ready_file_is_picked_up_by_polling(tmp_path: Path) -> None:
    """The poller reloads once the ready file changes, with the CSVs written before it."""
    cfg_path = write_registry(tmp_path / "cfg")
    with_ready_file(cfg_path)
    cfg = load(cfg_path)
    rel = tmp_path / "cfg" / "relations"
    got: list[Any] = []
    router: Any = argparse.Namespace(set_relations=got.append)
    reloader = RelationReloader(cfg.registry, router, Metrics(), interval_s=0.05)
    await reloader.start()
    try:
        assert reloader.watched == (rel / "_READY",)
        add_roster_row(rel)
        (rel / "_READY").write_text("done\n", encoding="utf-8")
        assert await wait_for(lambda: bool(got), 5.0)
        assert got[0].targets("player_team", GAME_DAY, NEW_PLAYER)
    finally:
        await reloader.stop()


@pytest.mark.parametrize("when", ["start", "reload"])
@pytest.mark.parametrize("ignored", [False, True], ids=["reported", "silenced"])
async def test_validate_ignore_silences_relation_warnings_in_serve(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, when: str, ignored: bool
) -> None:
    """A relation warning code in routes.yaml's `validate: {ignore: [...]}` is not logged by
    serve, at start-up or after a reload -- as `validate` does not print it."""
    caplog.set_level(logging.WARNING, logger="scoperouter.runtime.reload")
    cfg_path = small_registry(tmp_path)
    if ignored:
        with cfg_path.open("a", encoding="utf-8") as fh:
            fh.write("validate: {ignore: [relation_id_case]}\n")
    roster = tmp_path / "rel" / "team_players.csv"
    if when == "start":
        with roster.open("a", encoding="utf-8") as fh:
            fh.write(",lal,p9\n")
    cfg = load(cfg_path)
    if when == "start":
        log_relation_warnings(cfg.registry, cfg.relations, "start")  # as serve does
    else:
        router, _got = recording_router()
        reloader = RelationReloader(cfg.registry, router, Metrics(), interval_s=0.0)
        with roster.open("a", encoding="utf-8") as fh:
            fh.write(",lal,p9\n")
        assert await reloader.reload()
    logged = [r for r in caplog.records if getattr(r, "code", None) == "relation_id_case"]
    assert len(logged) == (0 if ignored else 1)


@pytest.mark.parametrize(
    ("burst_while_reading", "loads"), [(False, 1), (True, 2)], ids=["queued", "reading"]
)
async def test_sighup_bursts_coalesce_into_one_follow_up_reload(
    tmp_path: Path, burst_while_reading: bool, loads: int
) -> None:
    """SIGHUPs arriving while a reload is queued join it; while one is reading the files they
    make one follow-up reload between them -- not a parse (and a heap re-freeze) each."""
    cfg = load(small_registry(tmp_path))
    reading, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def loader(registry: Any) -> Any:
        calls.append(1)
        reading.set()
        release.wait(10)
        return cfg.relations

    router, got = recording_router()
    reloader = RelationReloader(
        cfg.registry, router, Metrics(), interval_s=0.0, settle_s=0.0, loader=loader
    )
    await reloader.start()
    try:
        if burst_while_reading:
            reloader.request_reload()
            assert await asyncio.to_thread(reading.wait, 5)
        for _ in range(5):
            reloader.request_reload()
        release.set()
        while reloader._requests:
            await asyncio.gather(*list(reloader._requests))
        assert len(calls) == loads and len(got) == loads
    finally:
        release.set()
        await reloader.stop()
