"""Builders of contributions and admissions for the state-store tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from scoperouter.router.decisions import Reason
from scoperouter.state import StateStore
from scoperouter.state.model import Admission, Contribution, IngestBatch, WindowState

StoreFactory = Callable[..., StateStore]

# the registry of the old store's tests (import, hand-over): one player processor on raw.a
ONE_INPUT_REGISTRY = {
    "version": 1,
    "entities": {"player": {}},
    "defaults": {"max_entities": 3, "window": {"quiet": "10s", "max_wait": "60s"}},
    "processors": {
        "p": {"phase": 3, "granularity": "player", "inputs": [{"source": "raw.a"}]},
    },
}


def need_psycopg() -> None:
    """Skip the module when psycopg is absent (fail when PostgreSQL is required)."""
    import os

    import pytest

    if os.environ.get("SCOPEROUTER_REQUIRE_POSTGRES") != "1":
        pytest.importorskip("psycopg", reason="psycopg 3 is not installed (extra [postgres])")


DAY = date(2025, 11, 19)


def contrib(
    event_id: str,
    ids: tuple[str, ...] | None = ("a",),
    *,
    processor: str = "p",
    day: date = DAY,
    critical: bool = False,
    quiet: float = 10.0,
    max_wait: float = 60.0,
    max_entities: int = 3,
    etype: str | None = "player",
    reason: str | None = None,
    correlation: str | None = None,
) -> Contribution:
    """One contribution; ``ids=None`` is a full-date decision."""
    return Contribution(
        processor=processor,
        day=day,
        event_id=event_id,
        correlation_id=correlation,
        critical=critical,
        entity_type=None if ids is None else etype,
        entity_ids=ids,
        reason=reason or ("entity_scope" if ids is not None else "no_entities_in_event"),
        quiet_s=quiet,
        max_wait_s=max_wait,
        max_entities=max_entities,
        granularity="player",
    )


def batch(*admissions: Admission | Contribution) -> IngestBatch:
    """A batch; a bare contribution becomes its event's admission."""
    return IngestBatch(
        admissions=tuple(
            a if isinstance(a, Admission) else Admission(a.event_id, (a,)) for a in admissions
        )
    )


def raw_connection(dsn: str) -> Any:
    """An autocommit psycopg connection beside the stores (another replica's transactions,
    held open to drive an interleaving)."""
    import psycopg

    return psycopg.connect(dsn, autocommit=True)


def win(
    ids: set[str] | None,
    *,
    opened: float = 100.0,
    last: float = 110.0,
    causes: tuple[str, ...] = ("e1",),
    etype: str = "player",
    reason: Reason | None = None,
    day: date = DAY,
    corr: str | None = None,
) -> WindowState:
    """A stored window of processor p (quiet 10 s, max_wait 60 s, max_entities 3)."""
    return WindowState(
        "p",
        day,
        opened,
        last,
        None if ids is None else frozenset(ids),
        etype,
        reason,
        frozenset(causes),
        corr,
        "normal",
        10.0,
        60.0,
        3,
    )
