"""The execution log's bridge hands work to its thread in order, gathers a quiet daemon's
hand-offs into few passes, writes everything at stop, and exports the rows the log itself
dropped."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from runtime_support import GAME_DAY, date_trigger

from scoperouter.execution_log import NullExecutionLog, SqliteExecutionLog
from scoperouter.execution_log.api import ExecutionLog
from scoperouter.messages.models import Event
from scoperouter.runtime.log_bridge import LogBridge
from scoperouter.runtime.metrics import Metrics


class RecordingLog:
    """An execution log that remembers its calls, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def record_batch(self, items: list[Any], *_: Any, **__: Any) -> list[str]:
        self.calls.append(("batch", tuple(ev.event_id for ev, _ds, _js in items)))
        return []

    def record_dispatch(self, trigger: Any, **kw: Any) -> None:
        self.calls.append(("dispatch", (trigger.trigger_id, kw["status"])))

    def flush(self) -> None:
        self.calls.append(("flush", None))


def _event(i: int) -> Event:
    return Event.model_validate({"event_id": f"e{i}", "source": "s", "game_date": GAME_DAY})


def _hand(bridge: LogBridge, script: str) -> list[tuple[str, Any]]:
    """Hand over ``script`` ('b3': a batch of 3 events, 'd': an outcome, 'D2': a delivery's
    2 outcomes in one hand-off, 'K2': a delivery's 2 rows, ``dispatched_ok``); the calls
    expected."""
    want: list[tuple[str, Any]] = []
    n = 0
    for step in script.split():
        if step[0] == "b":
            evs = [_event(n + k) for k in range(int(step[1:]))]
            n += len(evs)
            bridge.batch([(e, (), None, None) for e in evs], datetime.now(UTC), GAME_DAY, None)  # type: ignore[arg-type]
            want.append(("batch", tuple(e.event_id for e in evs)))
        elif step[0] == "D":
            ts = [date_trigger(n + k) for k in range(int(step[1:]))]
            n += len(ts)
            bridge.dispatches([(t, "ok", 1, 0.001, 1.0, None) for t in ts])
            want += [("dispatch", (t.trigger_id, "ok")) for t in ts]
        elif step[0] == "K":
            ts = [date_trigger(n + k) for k in range(int(step[1:]))]
            n += len(ts)
            bridge.dispatched_ok([(k, t, None, 0, 1.0) for k, t in enumerate(ts)], 2.0)
            want += [("dispatch", (t.trigger_id, "ok")) for t in ts]
        else:
            t = date_trigger(n)
            n += 1
            bridge.dispatch(t, "ok", 1, 0.001, 1.0, None)
            want.append(("dispatch", (t.trigger_id, "ok")))
    return want


@pytest.mark.parametrize(
    "script",
    [
        "b1 d",
        "b3 d d d b2 d d",
        "d d b1 b1 d",
        "b4 b4 b4",
        "b3 D3 d b1 D1 D2",
        "K2 b1 d K1 D2 K3 b2",
    ],
)
@pytest.mark.parametrize("linger_s", [0.0, 60.0])
def test_hand_offs_reach_the_log_in_order_and_stop_writes_them(
    script: str, linger_s: float
) -> None:
    """Every batch and outcome reaches the log in hand-off order; stop (cutting a linger short) writes all, then flushes."""
    log = RecordingLog()
    bridge = LogBridge(log, None, linger_s=linger_s)  # type: ignore[arg-type]
    want = _hand(bridge, script)
    bridge.shutdown(timeout=30)
    assert bridge._thread is not None and not bridge._thread.is_alive()
    assert [c for c in log.calls if c[0] != "flush"] == want
    assert log.calls[-1] == ("flush", None)
    assert bridge.pending == 0 and bridge.dropped == 0


@pytest.mark.parametrize(
    "script", ["b1 d " * 20, "b5 " * 10 + "d " * 50, "b2 D2 " * 20, "b2 K2 d " * 20]
)
def test_a_lingering_thread_takes_many_hand_offs_in_one_pass(script: str) -> None:
    """Hand-offs made while the thread lingers are taken together: one pass, not one per hand-off."""
    log = RecordingLog()
    bridge = LogBridge(log, None, linger_s=60.0)  # type: ignore[arg-type]
    want = _hand(bridge, script)
    bridge.shutdown(timeout=30)
    assert bridge.passes == 1
    assert [c for c in log.calls if c[0] != "flush"] == want


@pytest.mark.parametrize("late", ["d", "D2", "K2"])
def test_outcomes_after_stop_are_written_at_once(late: str) -> None:
    """A dispatch outcome after stop (a late delivery) is written synchronously, not queued."""
    log = RecordingLog()
    bridge = LogBridge(log, None)  # type: ignore[arg-type]
    _hand(bridge, "b1")
    bridge.shutdown(timeout=30)
    want = _hand(bridge, late)
    assert log.calls[-len(want) :] == want and bridge.pending == 0


class KwLog(RecordingLog):
    """Remembers every keyword of each dispatch outcome."""

    def record_dispatch(self, trigger: Any, **kw: Any) -> None:
        self.calls.append(("dispatch", (trigger.trigger_id, kw)))


FIRED = datetime(2025, 11, 19, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    "rows",
    [
        [(1, FIRED, 0, 0.0), (2, FIRED, 0, 0.0)],  # one batch's triggers
        [(1, None, 0, FIRED.timestamp() - 3.0)],  # no fired_at: from its row's creation
        [(1, FIRED, 2, 0.0), (2, None, 0, FIRED.timestamp() + 9.0)],  # retried; created later
        [(1, datetime(2025, 11, 19, 13, tzinfo=UTC), 0, 0.0)],  # fired after now: 0
        # the timestamp of a run of equal fired_at is taken once: a change, a None, the same
        # instant in another zone, and back
        [
            (1, FIRED, 0, 0.0),
            (2, FIRED - timedelta(seconds=2), 0, 0.0),
            (3, None, 0, FIRED.timestamp() - 4.0),
            (4, FIRED.astimezone(timezone(timedelta(hours=-5))), 1, 0.0),
            (5, FIRED, 0, 0.0),
        ],
    ],
)
def test_rows_of_a_delivery_log_what_their_outcomes_would(
    rows: list[tuple[int, datetime | None, int, float]],
) -> None:
    """dispatched_ok(rows, now) writes what dispatches() of each row's (trigger, ok, attempts, latency, now) writes."""
    now = FIRED.timestamp() + 1.5
    logs = KwLog(), KwLog()
    by_rows, by_outcomes = (LogBridge(log, None) for log in logs)  # type: ignore[arg-type]
    full = [(i, date_trigger(i, fired_at=at), None, before, made) for i, at, before, made in rows]
    by_rows.dispatched_ok(full, now)
    by_outcomes.dispatches(
        [
            (
                t,
                "ok",
                before + 1,
                max(0.0, now - (t.fired_at.timestamp() if t.fired_at else made)),
                now,
                None,
            )
            for _i, t, _b, before, made in full
        ]
    )
    for bridge in (by_rows, by_outcomes):
        bridge.shutdown(timeout=30)
    assert logs[0].calls == logs[1].calls and len(logs[0].calls) == len(rows) + 1


def _sqlite_refusing_one_row(path: Path) -> SqliteExecutionLog:
    log = SqliteExecutionLog(path / "log.sqlite")
    log.record_completion(
        "p", GAME_DAY, trigger_id="t-1", records_processed=2**64, entities_changed=None,
        duration_s=0.0,
    )  # fmt: skip
    log.flush()  # the row SQLite cannot store: dropped, counted in the log's own dropped
    return log


@pytest.mark.parametrize(
    ("make_log", "dropped"),
    [
        (lambda _p: None, 0),
        (lambda _p: NullExecutionLog(), 0),
        (lambda p: SqliteExecutionLog(p / "log.sqlite"), 0),
        (_sqlite_refusing_one_row, 1),
    ],
    ids=["no-log", "null-log", "sqlite", "sqlite-refused-a-row"],
)
def test_metrics_export_the_rows_the_log_itself_dropped(
    tmp_path: Path, make_log: Callable[[Path], ExecutionLog | None], dropped: int
) -> None:
    """/metrics counts the rows the execution log itself dropped, apart from the bridge's drops."""
    log = make_log(tmp_path)
    bridge = LogBridge(log, None)  # type: ignore[arg-type]
    m = Metrics()
    m.watch_log(bridge)
    text = m.render().decode().splitlines()
    assert f"scoperouter_execution_log_rows_dropped_total {float(dropped)}" in text
    assert "scoperouter_execution_log_dropped_total 0.0" in text
    bridge.shutdown(timeout=5)
    if log is not None:
        log.close()
