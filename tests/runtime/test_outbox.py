"""The outbox sink rotates by size without losing or reordering a line, and the execution
log's bridge bounds what waits for the log thread (backpressure) and drains at stop."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from runtime_support import date_trigger

from scoperouter.runtime.log_bridge import LogBridge
from scoperouter.runtime.outbox import OutboxSink
from scoperouter.runtime.payloads import trigger_bytes

trigger = date_trigger  # processor 'p'


def lines(tmp_path: Path) -> list[str]:
    """Every trigger id in the outbox files, oldest file first."""
    files = sorted(tmp_path.glob("outbox.jsonl.*"), key=lambda p: -int(p.suffix[1:]))
    files.append(tmp_path / "outbox.jsonl")
    return [json.loads(x)["trigger_id"] for f in files for x in f.read_text().splitlines()]


@pytest.mark.parametrize(
    ("fsync", "max_bytes", "sends", "keep"),
    [
        (True, 0, 40, 3),  # no rotation
        (True, 2_000, 40, 20),  # a new file every few lines, all kept
        (False, 2_000, 40, 20),
        (True, 2_000, 100, 2),  # files beyond keep are deleted
    ],
)
async def test_outbox_rotates_by_size(
    tmp_path: Path,
    fsync: bool,
    max_bytes: int,
    sends: int,
    keep: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Past max_bytes outbox.jsonl moves to .1 (.1 to .2 ...); kept files hold every line in order."""
    size = len(trigger_bytes(trigger(0))) + 1  # every line has this size
    per_file = -(-max_bytes // size) if max_bytes else sends + 1  # lines until a rotation
    rotations = sends // per_file
    kept_lines = sends - max(0, rotations - keep) * per_file
    sink = OutboxSink(tmp_path / "outbox.jsonl", fsync=fsync, max_bytes=max_bytes, keep=keep)
    for n in range(0, sends, 10):  # concurrent sends share flushes across rotations
        await asyncio.gather(*(sink.send(trigger(i), message_id="m") for i in range(n, n + 10)))
    await sink.close()
    assert sink.rotations == rotations
    assert len(list(tmp_path.glob("outbox.jsonl.*"))) == min(rotations, keep)
    want = [trigger(i).trigger_id for i in range(sends)]
    assert lines(tmp_path) == want[sends - kept_lines :]  # the newest lines, in order
    # each file deleted past keep is counted and named at WARNING, never silently
    deleted = max(0, rotations - keep)
    gone = sum(len(trigger_bytes(trigger(i))) + 1 for i in range(sends - kept_lines))
    assert (sink.deleted_files, sink.deleted_bytes) == (deleted, gone)
    warned = [r for r in caplog.records if "outbox rotation deleted" in r.getMessage()]
    assert len(warned) == deleted and all(r.levelname == "WARNING" for r in warned)


@pytest.mark.parametrize(
    ("present", "deleted"),
    [
        ((2, 3), 0),  # .1 missing: a crash between the shift and the rename
        ((1, 3), 0),  # a gap in the middle
        ((1, 2), 0),  # only .3 missing: fewer than keep, nothing to delete
        ((1, 2, 3), 1),  # all kept: the oldest goes
    ],
)
async def test_a_rotation_after_a_gap_deletes_nothing(
    tmp_path: Path, present: tuple[int, ...], deleted: int
) -> None:
    """A gap in .1 .. .keep (a crash inside a rotation) is filled by the next rotation: it
    deletes no rotated file while fewer than keep are kept (it deleted .keep every time)."""
    path = tmp_path / "outbox.jsonl"
    for k in present:  # rotated files, older the higher their number
        path.with_name(f"outbox.jsonl.{k}").write_bytes(trigger_bytes(trigger(100 - k)) + b"\n")
    path.write_bytes(trigger_bytes(trigger(100)) + b"\n")
    sink = OutboxSink(path, fsync=True, max_bytes=1, keep=3)
    await sink.send(trigger(101), message_id="m")  # past max_bytes: rotates first
    await sink.close()
    assert (sink.rotations, sink.deleted_files) == (1, deleted)
    kept = sorted(present, reverse=True)[deleted:]  # oldest first
    want = [trigger(100 - k).trigger_id for k in kept] + [trigger(100).trigger_id]
    got = lines(tmp_path)
    assert got[: len(want)] == want and len(got) == len(want) + 1
    assert len(list(tmp_path.glob("outbox.jsonl.*"))) == min(3, len(present) + 1)


class SlowLog:
    """An execution log whose calls block until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.batches: list[int] = []
        self.flushes = 0

    def record_batch(self, items: list[Any], *_: Any, **__: Any) -> list[str]:
        self.release.wait(10)
        self.batches.append(len(items))
        return []

    def record_dispatch(self, *_: Any, **__: Any) -> None:
        return None

    def flush(self) -> None:
        self.flushes += 1


def _event(i: int) -> Any:
    from scoperouter.messages.models import Event

    return Event.model_validate({"event_id": f"e{i}", "source": "s", "game_date": "2025-11-19"})


@pytest.mark.parametrize(("max_pending", "batches"), [(5, 3), (100, 3)])
async def test_log_bridge_is_bounded(max_pending: int, batches: int) -> None:
    """Past max_pending events the bridge is full (the ingest worker waits); it drains in order."""
    log = SlowLog()
    bridge = LogBridge(log, None, max_pending=max_pending)  # type: ignore[arg-type]
    for b in range(batches):
        bridge.batch([(_event(b * 4 + k), (), None, None) for k in range(4)], None, None, None)  # type: ignore[arg-type]
    assert bridge.pending == 4 * batches
    assert bridge.full == (4 * batches >= max_pending)
    waiter = asyncio.ensure_future(bridge.room())
    await asyncio.sleep(0.05)
    assert waiter.done() == (not bridge.full)
    log.release.set()
    await asyncio.wait_for(waiter, 5)
    bridge.shutdown(timeout=5)
    assert log.batches == [4] * batches and bridge.pending == 0 and bridge.dropped == 0


async def test_log_bridge_counts_the_ingest_waits_for_room() -> None:
    """A wait for room while the bridge is full is counted, with its duration; a bridge with room is not."""
    log = SlowLog()
    bridge = LogBridge(log, None, max_pending=4)  # type: ignore[arg-type]
    await bridge.room()  # room at once: no wait
    assert (bridge.waits, bridge.waited_s) == (0, 0.0)
    bridge.batch([(_event(k), (), None, None) for k in range(4)], None, None, None)  # type: ignore[arg-type]
    assert bridge.full
    threading.Timer(0.2, log.release.set).start()
    await asyncio.wait_for(bridge.room(), 120)  # a budget for a loaded machine
    # at least until the timer released the log (a lower bound no load can break)
    assert bridge.waits == 1 and bridge.waited_s >= 0.1
    bridge.shutdown(timeout=5)


def test_metrics_export_the_log_bridge_at_scrape_time() -> None:
    """/metrics reads the bridge when scraped: queued, its bound, ingest waits, its drops and the log's."""
    from scoperouter.runtime.metrics import Metrics

    class Bridge:
        pending, max_pending, waits, waited_s, dropped, log_rows_dropped = 7, 20, 3, 1.5, 2, 4

    m, b = Metrics(), Bridge()
    m.watch_log(b)  # type: ignore[arg-type]
    text = m.render().decode()
    for line in (
        "scoperouter_execution_log_pending 7.0",
        "scoperouter_execution_log_max_pending 20.0",
        "scoperouter_execution_log_backpressure_waits_total 3.0",
        "scoperouter_execution_log_backpressure_seconds_total 1.5",
        "scoperouter_execution_log_dropped_total 2.0",
        "scoperouter_execution_log_rows_dropped_total 4.0",
    ):
        assert line in text.splitlines(), line
    b.pending = 9  # read again at the next scrape
    assert "scoperouter_execution_log_pending 9.0" in m.render().decode().splitlines()
    m.watch_log(Bridge())  # type: ignore[arg-type]  # another bridge replaces the first
    samples = [
        x
        for x in m.render().decode().splitlines()
        if x.startswith("scoperouter_execution_log_pending ")
    ]
    assert samples == ["scoperouter_execution_log_pending 7.0"]


async def test_log_bridge_drops_what_the_shutdown_budget_cannot_write() -> None:
    """A log stuck past the shutdown budget: stop returns in time and counts what it dropped."""
    log = SlowLog()
    bridge = LogBridge(log, None)  # type: ignore[arg-type]
    for b in range(3):
        bridge.batch([(_event(b), (), None, None)], None, None, None)  # type: ignore[arg-type]
    threading.Timer(0.5, log.release.set).start()  # the first call blocks past the budget
    bridge.shutdown(timeout=0.1)
    assert bridge.dropped == 2 and log.batches == [1]


@pytest.mark.parametrize(
    ("error", "raised"),
    [
        (OSError(5, "EIO"), "DispatchError"),  # the disk
        (ValueError("a bug"), "ValueError"),  # anything else: the thread lives on (it hung)
    ],
)
async def test_failed_flush_fails_its_sends_and_the_next_flush_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception, raised: str
) -> None:
    """A failing flush fails its sends (any exception); the thread lives on, later sends work."""
    import scoperouter.runtime.outbox as outbox_mod

    real, calls = outbox_mod._datasync, [0]

    def flaky(fd: int) -> None:
        calls[0] += 1
        if calls[0] == 1:
            raise error
        real(fd)

    monkeypatch.setattr(outbox_mod, "_datasync", flaky)
    sink = OutboxSink(tmp_path / "outbox.jsonl", fsync=True)
    first = await asyncio.wait_for(
        asyncio.gather(
            *(sink.send(trigger(i), message_id="m") for i in range(5)), return_exceptions=True
        ),
        60,  # a liveness bound: a dead sink thread never answers
    )
    assert [type(r).__name__ for r in first] == [raised] * 5
    await asyncio.gather(*(sink.send(trigger(i), message_id="m") for i in range(5, 8)))
    await sink.close()
    assert sink.flushes == 1 and lines(tmp_path)[-3:] == [trigger(i).trigger_id for i in (5, 6, 7)]


def held_syncs(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """Make the sink's ``fdatasync`` wait: the first event is set once a sync started, the
    syncs go on once the second is set."""
    import scoperouter.runtime.outbox as outbox_mod

    real, entered, release = outbox_mod._datasync, threading.Event(), threading.Event()

    def slow(fd: int) -> None:
        entered.set()
        release.wait(5)
        real(fd)

    monkeypatch.setattr(outbox_mod, "_datasync", slow)
    return entered, release


@pytest.mark.parametrize("cancel", [False, True])
async def test_sends_queued_during_a_flush_get_the_next_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cancel: bool
) -> None:
    """Lines sent while a flush runs wait for the next flush (never acked by one that did not cover them); a cancelled send leaves the others' flushes alone."""
    entered, release = held_syncs(monkeypatch)
    sink = OutboxSink(tmp_path / "outbox.jsonl", fsync=True)
    first = asyncio.ensure_future(sink.send(trigger(0), message_id="m"))
    assert await asyncio.to_thread(entered.wait, 5)  # the first flush is syncing
    later = [asyncio.ensure_future(sink.send(trigger(i), message_id="m")) for i in (1, 2)]
    await asyncio.sleep(0.05)
    assert not first.done() and not any(f.done() for f in later)
    if cancel:
        later[0].cancel()
    release.set()
    await first
    assert sink.flushes == 1 and not later[1].done()  # its line: not covered by that flush
    await later[1]
    await sink.close()
    assert sink.flushes == 2 and later[0].cancelled() == cancel
    assert lines(tmp_path) == [trigger(i).trigger_id for i in (0, 1, 2)]


def test_readme_names_the_log_queue_bound() -> None:
    """The README's /metrics paragraph gives the execution log queue's real bound."""
    from scoperouter.runtime.log_bridge import DEFAULT_MAX_PENDING

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert f"`scoperouter_execution_log_max_pending` ({DEFAULT_MAX_PENDING:,})" in readme


async def test_close_waits_for_the_sends_queued_behind_the_running_flush(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """close() called while a flush runs and sends wait behind it returns only once their flush wrote them too (none left hanging on a closed file)."""
    entered, release = held_syncs(monkeypatch)
    sink = OutboxSink(tmp_path / "outbox.jsonl", fsync=True)
    first = asyncio.ensure_future(sink.send(trigger(0), message_id="m"))
    assert await asyncio.to_thread(entered.wait, 5)  # the first flush is syncing
    later = asyncio.ensure_future(sink.send(trigger(1), message_id="m"))
    await asyncio.sleep(0)
    closing = asyncio.ensure_future(sink.close())
    await asyncio.sleep(0.05)
    release.set()
    await asyncio.wait_for(closing, 10)
    assert first.done() and later.done(), "a send was left waiting after close()"
    await first
    await later
    assert lines(tmp_path) == [trigger(i).trigger_id for i in (0, 1)]


@pytest.mark.parametrize(
    ("reopened", "line"),
    [
        (None, None),  # a store that counts no losses (SQLite): nothing exported
        (0, "scoperouter_state_connections_reopened_total 0.0"),
        (3, "scoperouter_state_connections_reopened_total 3.0"),
    ],
)
def test_metrics_export_the_store_connections_reopened(
    reopened: int | None, line: str | None
) -> None:
    """/metrics reads a shared store's reopened connections when scraped; a later store
    replaces the one watched, and a store without the count exports nothing."""
    from scoperouter.runtime.metrics import Metrics

    class Store:
        pass

    store = Store()
    if reopened is not None:
        store.connections_reopened = reopened  # type: ignore[attr-defined]
    m = Metrics()
    m.watch_store(store)
    samples = [
        x for x in m.render().decode().splitlines() if x.startswith("scoperouter_state_conn")
    ]
    assert samples == ([line] if line else [])
    if reopened is not None:
        store.connections_reopened += 1  # type: ignore[attr-defined]
        assert f"{reopened + 1}.0" in m.render().decode()
    m.watch_store(Store())  # another store (none counted) replaces the first
    assert "scoperouter_state_connections_reopened" not in m.render().decode()
