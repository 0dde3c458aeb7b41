"""bench/state_thread.py measures what it says: every event accepted and fired once, in
batches of the asked size; the figure itself is timing and is not checked here."""

from __future__ import annotations

from typing import Any

import pytest

from bench_scripts import bench_module


def bench() -> Any:
    return bench_module("state_thread")


@pytest.mark.parametrize(("events", "batch"), [(1, 1), (50, 7), (48, 24)])
def test_every_event_is_accepted_and_fires_one_trigger(events: int, batch: int) -> None:
    """Each of the benchmark's events is new and fires exactly one trigger, whatever the batch size."""
    out = bench().one_round(events, batch, "t")
    assert (out["accepted"], out["fired"]) == (events, events)
    assert out["cpu_ms_per_event"] >= 0


def test_profile_names_the_batch_function() -> None:
    """--profile prints cProfile's table, in which the batch function appears."""
    out = bench().one_round(20, 5, "p", profile=40)
    assert "process_shared_batch" in out["profile"]


@pytest.mark.parametrize("argv", [["--batch", "0"], ["--events", "0"], ["--rounds", "0"]])
def test_nonsense_sizes_are_refused(argv: list[str]) -> None:
    """A batch, event count or round count under 1 is a usage error, not a division by zero."""
    with pytest.raises(SystemExit) as exc:
        bench().main(argv)
    assert exc.value.code == 2
