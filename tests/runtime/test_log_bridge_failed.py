"""What the log bridge could not write is counted, also after its thread failed."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from runtime_support import GAME_DAY, date_trigger
from test_log_bridge import RecordingLog, _event

from scoperouter.runtime.log_bridge import LogBridge


def test_work_handed_over_after_the_log_thread_failed_is_counted_as_dropped() -> None:
    """After the log thread died, what was queued and what comes later is counted dropped."""
    log = RecordingLog()
    bridge = LogBridge(log, None, linger_s=0.0)  # type: ignore[arg-type]
    failures: list[BaseException] = []
    bridge.on_failure = failures.append
    bad: Any = (0, None, None, 0, 1.0)  # no trigger: building its outcome raises
    bridge.dispatched_ok([bad], 2.0)
    deadline = time.monotonic() + 5.0
    while not failures and time.monotonic() < deadline:
        time.sleep(0.01)
    assert failures
    bridge.batch(
        [(_event(k), (), None, None) for k in range(3)],
        datetime.now(UTC),
        GAME_DAY,
        None,  # type: ignore[arg-type]
    )
    bridge.dispatch(date_trigger(9), "ok", 1, 0.001, 1.0, None)
    bridge.shutdown(timeout=1.0)
    assert [c for c in log.calls if c[0] != "flush"] == []
    assert bridge.dropped == 5  # the delivery that failed, the batch's 3 events, the outcome
    assert bridge.pending == 0
