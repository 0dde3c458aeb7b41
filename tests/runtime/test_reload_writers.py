"""Relation files read while a writer is at them: a file cut mid-line is refused (old data
kept, ERROR, error counter), a requested reload (SIGHUP, start-up) waits until the files
stay unchanged, a file replaced with the same size and mtime is still seen, polling
without a ready_file warns at start, and a removed ready file means "not ready"."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from reload_support import DAY, ROSTER, players, recording_router, small_registry

from scoperouter.processor_registry.loader import load_config, relation_watch_paths
from scoperouter.runtime.metrics import Metrics
from scoperouter.runtime.reload import RelationReloader, relation_fingerprint

LOGGER = "scoperouter.runtime.reload"


def errors_counted(metrics: Metrics) -> float | None:
    return metrics.registry.get_sample_value(
        "scoperouter_relation_reloads_total", {"result": "error"}
    )


def logged(caplog: pytest.LogCaptureFixture, level: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelname == level]


async def test_a_file_cut_mid_line_is_refused_until_its_writer_is_done(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A roster read while its writer is mid-id (no final newline) is not loaded: the old
    data stays, an ERROR names file:line and the error counter counts it; once the writer
    is done the next reload loads it."""
    cfg = load_config(small_registry(tmp_path))
    router, got = recording_router()
    metrics = Metrics()
    reloader = RelationReloader(cfg.registry, router, metrics, interval_s=0.0)
    await reloader.start()
    roster = tmp_path / "rel" / "team_players.csv"
    roster.write_text("date,from,to\n,LAL,p1\n,LAL,p", encoding="utf-8")  # p2 half written
    try:
        assert not await reloader.reload("changed")
        assert got == [] and errors_counted(metrics) == 1
        [error] = logged(caplog, "ERROR")
        assert f"{roster}:3:" in error and "newline" in error
        roster.write_text("date,from,to\n,LAL,p1\n,LAL,p2\n", encoding="utf-8")
        assert await reloader.reload("changed")
        assert players(got[-1]) == {"p1", "p2"}
    finally:
        await reloader.stop()


class Writer:
    """A writer that truncated the roster and wrote its first rows; each settle wait (the
    reloader's injected sleep) lets it write the next chunk -- or, ``endless``, one more row
    every time."""

    def __init__(self, path: Path, chunks: list[str], *, endless: bool = False) -> None:
        self.path, self.chunks, self.endless = path, chunks, endless
        self.waits: list[float] = []
        path.write_text(chunks.pop(0) if chunks else ROSTER, encoding="utf-8")

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.chunks or self.endless:
            text = self.chunks.pop(0) if self.chunks else f",LAL,x{len(self.waits)}\n"
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(text)


@pytest.mark.parametrize(
    ("chunks", "endless", "loaded"),
    [
        ([], False, {"p1", "p2", "p3", "p4"}),  # the files are complete: loaded at once
        (
            ["date,from,to\n,LAL,p1\n", ",LAL,p2\n,LAL,p3\n,LAL,p4\n"],
            False,
            {"p1", "p2", "p3", "p4"},
        ),
        (["date,from,to\n,LAL,p1\n", ",LAL,p2\n", ",LAL,p3\n"], False, {"p1", "p2", "p3"}),
        (["date,from,to\n,LAL,p1\n"], True, None),  # never still: not loaded, an error
    ],
    ids=["complete", "finished_during_a_wait", "paused_twice", "still_writing"],
)
async def test_a_requested_reload_waits_until_the_files_stay_unchanged(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    chunks: list[str],
    endless: bool,
    loaded: set[str] | None,
) -> None:
    """A SIGHUP landing while a writer rewrites the roster in place (whole rows, pausing)
    loads the roster only once it stayed unchanged for a settle wait -- never the rows
    written so far; files still changing after the longest wait keep the old data (ERROR,
    error counter)."""
    cfg = load_config(small_registry(tmp_path))
    router, got = recording_router()
    metrics = Metrics()
    writer = Writer(tmp_path / "rel" / "team_players.csv", chunks, endless=endless)
    reloader = RelationReloader(
        cfg.registry, router, metrics, interval_s=0.0, settle_s=0.5, sleep=writer.sleep
    )
    await reloader.start()
    try:
        reloader.request_reload("signal")  # the SIGHUP handler
        await asyncio.gather(*reloader._requests)
        assert [players(r) for r in got] == ([loaded] if loaded else [])
        assert errors_counted(metrics) == (0 if loaded else 1)
        assert writer.waits and set(writer.waits) == {0.5}
        if not loaded:
            [error] = logged(caplog, "ERROR")
            assert "still changing" in error
    finally:
        await reloader.stop()


def test_fingerprint_sees_a_file_replaced_with_the_same_size_and_mtime(tmp_path: Path) -> None:
    """A roster replaced atomically by one of the same size whose mtime was kept (cp -p,
    rsync -t, tar x) changes the fingerprint: its inode (and ctime) differ."""
    roster = tmp_path / "team_players.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    st = roster.stat()
    before = relation_fingerprint([roster])
    tmp = tmp_path / "team_players.csv.tmp"
    tmp.write_text(ROSTER.replace("p4", "p9"), encoding="utf-8")
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(tmp, roster)
    after = roster.stat()
    assert (after.st_size, after.st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert relation_fingerprint([roster]) != before


async def _start_warnings(
    cfg: Any, caplog: pytest.LogCaptureFixture, interval_s: float, code: str
) -> list[str]:
    """The WARNINGs of ``code`` a reloader of ``cfg`` logs when it starts (then stops)."""
    router, _ = recording_router()
    reloader = RelationReloader(cfg.registry, router, Metrics(), interval_s=interval_s)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        await reloader.start()
        await reloader.stop()
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelname == "WARNING" and getattr(r, "code", None) == code
    ]


@pytest.mark.parametrize(
    ("interval_s", "ready_file", "warned"),
    [(60.0, None, True), (60.0, "_READY", False), (0.0, None, False)],
    ids=["polling", "polling_with_ready_file", "sighup_only"],
)
async def test_polling_without_a_ready_file_warns_at_start(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    interval_s: float,
    ready_file: str | None,
    warned: bool,
) -> None:
    """Polling files a writer may rewrite in place (no ready_file) logs a WARNING at start
    pointing to deploy/README.md: only an atomic replace or a ready file is safe."""
    cfg = load_config(small_registry(tmp_path, ready_file=ready_file))
    hints = await _start_warnings(cfg, caplog, interval_s, "polled_without_ready_file")
    assert len(hints) == (1 if warned else 0)
    assert all("deploy/README.md" in m for m in hints)


@pytest.mark.parametrize(
    ("touched", "warned"), [(False, True), (True, False)], ids=["never_touched", "present"]
)
async def test_a_missing_ready_file_warns_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, touched: bool, warned: bool
) -> None:
    """Polling a ready_file that does not exist (a name the job never touches) logs a WARNING naming it."""
    cfg = load_config(small_registry(tmp_path, ready_file="_READY"))
    ready = next(p for p in relation_watch_paths(cfg.registry) if p.name == "_READY")
    if touched:
        ready.touch()
    hints = await _start_warnings(cfg, caplog, 60.0, "ready_file_missing")
    assert len(hints) == (1 if warned else 0)
    assert all(str(ready) in m for m in hints)


async def _until(cond: Any, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.02)
    return True


@pytest.mark.parametrize("removed", ["while_running", "during_start_up"])
async def test_a_removed_ready_file_means_not_ready(tmp_path: Path, removed: str) -> None:
    """A writer that removes the ready file, rewrites the CSVs one by one, then recreates it
    gets them loaded once, all new: the ready file's disappearance is no change to load."""
    cfg_path = small_registry(tmp_path, ready_file="_READY")
    rel = tmp_path / "rel"
    ready = rel / "_READY"
    ready.write_text("", encoding="utf-8")
    before = relation_fingerprint(relation_watch_paths(load_config(cfg_path).registry))
    cfg = load_config(cfg_path)
    router, got = recording_router()
    reloader = RelationReloader(
        cfg.registry, router, Metrics(), interval_s=0.05, settle_s=0.0, fingerprint=before
    )

    def replace(name: str, text: str) -> None:
        tmp = rel / f"{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.rename(rel / name)

    if removed == "while_running":
        await reloader.start()
    try:
        ready.unlink()  # 1. not ready any more
        replace("team_players.csv", "date,from,to\n,LAL,p1\n,LAL,p9\n")  # 2. the roster
        if removed == "during_start_up":
            await reloader.start()
            assert not reloader._requests
        await asyncio.sleep(0.5)  # (the schedule takes a while)
        assert got == []
        replace("game_teams.csv", "date,from,to\n2025-11-19,g2,LAL\n")  # 3. the schedule
        ready.write_text("", encoding="utf-8")  # 4. ready
        assert await _until(lambda: bool(got), 5.0)
        await asyncio.sleep(0.3)
        [loaded] = got
        assert players(loaded) == {"p1", "p9"}
        assert loaded.targets("game_teams", DAY, "g2") and not loaded.targets(
            "game_teams", DAY, "g1"
        )
    finally:
        await reloader.stop()
