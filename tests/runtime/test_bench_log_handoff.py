"""bench/log_handoff.py pickles what the daemon hands its log thread, and all of it comes
back; the figures themselves are timing and are not checked here."""

from __future__ import annotations

from typing import Any

import pytest

from bench_scripts import bench_module
from scoperouter.messages.models import Event, Trigger
from scoperouter.router.decisions import Decision


def bench() -> Any:
    return bench_module("log_handoff")


@pytest.mark.parametrize(("events", "batch"), [(1, 1), (50, 7), (48, 24)])
def test_handoffs_have_the_bridges_shapes(events: int, batch: int) -> None:
    """Every event is in one batch's hand-off, with its decisions (one run) and its trigger."""
    items = bench().handoffs(events, batch)
    assert [len(d) for d, _ in items] == [min(batch, events - k) for k in range(0, events, batch)]
    for decided, delivered in items:
        for (ev, ds, tid, js), (_row, trig, *_rest) in zip(decided, delivered, strict=True):
            assert isinstance(ev, Event) and tid is None and ev.event_id in js
            assert all(isinstance(d, Decision) for d in ds)
            assert [d.processor for d in ds if d.action == "run"] == [trig.processor]
            assert isinstance(trig, Trigger) and trig.caused_by == (ev.event_id,)


def test_a_round_sends_every_event() -> None:
    """A round pickles and unpickles the whole stream and reports per-event figures."""
    out = bench().one_round(bench().handoffs(30, 7))
    assert out["bytes_per_event"] > 0 and out["dumps_ms_per_event"] >= 0
    assert out["loads_ms_per_event"] >= 0


@pytest.mark.parametrize("argv", [["--batch", "0"], ["--events", "0"], ["--rounds", "0"]])
def test_nonsense_sizes_are_refused(argv: list[str]) -> None:
    """A batch, event count or round count under 1 is a usage error."""
    with pytest.raises(SystemExit) as exc:
        bench().main(argv)
    assert exc.value.code == 2
