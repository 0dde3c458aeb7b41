"""A stored window takes the registry's current ``quiet`` / ``max_wait`` at a restart, on
SQLite and PostgreSQL (``make_store``), as the in-memory book does at restore: its
deadline becomes ``min(last_at + quiet, opened_at + max_wait)`` under them, also when an
event joins it afterwards."""

from __future__ import annotations

import pytest
from state_support import StoreFactory, batch, contrib

from scoperouter.state.merge import registry_durations
from window_limit_support import one_processor_registry

T0 = 1_700_000_000.0
OLD = (21600.0, 43200.0)  # quiet 6h, max_wait 12h


def _opened(make_store: StoreFactory, processor: str = "p") -> None:
    """A window of ``processor`` opened at T0 and joined at T0 + 60 under quiet 6h, max_wait
    12h; the store is closed (the restart)."""
    s = make_store()
    for i, at in enumerate((T0, T0 + 60)):
        s.ingest(
            batch(contrib(f"e{i}", ("a",), processor=processor, quiet=OLD[0], max_wait=OLD[1])), at
        )
    s.close()


@pytest.mark.parametrize(
    ("processor", "now", "default", "changed", "deadline"),
    [
        ("p", (60.0, 300.0), (10.0, 60.0), 1, T0 + 120),  # shorter quiet wins
        ("p", (3600.0, 300.0), (10.0, 60.0), 1, T0 + 300),  # shorter max_wait wins
        ("p", (43200.0, 86400.0), (10.0, 60.0), 1, T0 + 60 + 43200),  # longer
        ("p", OLD, (10.0, 60.0), 0, T0 + 60 + OLD[0]),  # unchanged: not rewritten
        ("gone", (60.0, 300.0), (10.0, 600.0), 1, T0 + 70),  # not in the registry: defaults
    ],
    ids=["quiet-shorter", "max-wait-shorter", "longer", "unchanged", "gone"],
)
def test_restart_applies_the_current_durations_to_stored_windows(
    make_store: StoreFactory,
    processor: str,
    now: tuple[float, float],
    default: tuple[float, float],
    changed: int,
    deadline: float,
) -> None:
    """A window kept over a restart is due under the durations now (its times kept)."""
    _opened(make_store, processor)
    s = make_store()
    got = s.apply_limits({"p": 3}, 3, durations={"p": now}, default_durations=default)
    assert got == changed
    [w] = s.open_windows()
    want = now if processor == "p" else default
    assert (w.quiet_s, w.max_wait_s, w.opened_at, w.last_at) == (*want, T0, T0 + 60)
    assert s.next_deadline() == deadline
    assert s.fire_due(deadline - 1) == []
    assert len(s.fire_due(deadline)) == 1


def test_an_event_joining_after_the_restart_keeps_the_current_durations(
    make_store: StoreFactory,
) -> None:
    """An event merged after the restart leaves the window under the durations now."""
    _opened(make_store)
    s = make_store()
    s.apply_limits({"p": 3}, 3, durations={"p": (60.0, 300.0)}, default_durations=(10.0, 60.0))
    s.ingest(batch(contrib("e2", ("b",), quiet=60.0, max_wait=300.0)), T0 + 100)
    assert s.next_deadline() == T0 + 160


def test_registry_durations_are_the_books() -> None:
    """``registry_durations`` gives every processor's quiet/max_wait and the defaults'."""
    assert registry_durations(one_processor_registry(3)) == ({"p": (10.0, 60.0)}, (10.0, 60.0))
