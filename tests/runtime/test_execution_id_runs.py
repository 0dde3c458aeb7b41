"""Production's ``execution_id`` names a run, not a message: one processor object keeps its
``run_id`` across ``run()`` calls (``data_processors/analytics/analytics_base.py:472-475``)
and publishes it as ``execution_id`` for each date it runs (``:1642``, ``:1644``; the cron
job ``bin/maintenance/phase3_backfill_check.py:152-169`` runs one object over many dates),
and it is 8 hex digits (``data_processors/raw/processor_base.py:369``). Taken as the event
id alone, every completion after a run's first was answered ``duplicate`` and routed
nothing; a redelivery (the same body) must still be one.
"""

from __future__ import annotations

from typing import Any

import pytest
from runtime_support import GAME_DAY, MemorySink, RouterFactory

from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.router.completion_ref import completion_ref
from scoperouter.runtime.router import Inbound


def _unified(
    day: str, status: str = "success", table: str = "player_game_summary"
) -> dict[str, Any]:
    """A unified completion as ``analytics_base.py:1638-1666`` publishes it."""
    return {
        "processor_name": "PlayerGameSummaryProcessor",
        "phase": "phase_3_analytics",
        "execution_id": "a1b2c3d4",
        "correlation_id": "a1b2c3d4",
        "game_date": day,
        "output_table": table,
        "output_dataset": "nba_analytics",
        "status": status,
        "record_count": 12,
        "timestamp": f"{day}T06:00:00+00:00",
    }


DAY0 = GAME_DAY.isoformat()


def _later(days: int) -> str:
    from datetime import timedelta

    return (GAME_DAY - timedelta(days=days)).isoformat()


# (name, the messages in order, the statuses the router answers)
CASES = [
    (
        "one_run_over_three_dates",
        [_unified(_later(2)), _unified(_later(1)), _unified(DAY0)],
        ["accepted", "accepted", "accepted"],
    ),
    (
        "a_failed_date_then_a_success",
        [_unified(_later(1), "failed"), _unified(DAY0)],
        ["accepted", "accepted"],
    ),
    (
        "a_redelivery_is_still_a_duplicate",
        [_unified(DAY0), _unified(DAY0)],
        ["accepted", "duplicate"],
    ),
    (
        "two_runs_whose_8_hex_ids_collide",
        [
            _unified(DAY0, table="player_game_summary"),
            _unified(DAY0, table="team_offense_game_summary"),
        ],
        ["accepted", "accepted"],
    ),
]


@pytest.mark.parametrize(("name", "messages", "want"), CASES, ids=[c[0] for c in CASES])
async def test_one_execution_id_many_messages(
    zero_cfg: LoadedConfig,
    make_router: RouterFactory,
    name: str,
    messages: list[dict[str, Any]],
    want: list[str],
) -> None:
    """Each message of a run is routed; only a redelivered body is a duplicate."""
    r = make_router(zero_cfg, MemorySink())
    await r.start()
    got = [(await r.submit(Inbound("test", obj=m))).status for m in messages]
    await r.stop()
    assert got == want


def test_completion_taken_once_per_message_not_per_run() -> None:
    """The closed loop takes a completion once by the same id: a run's two dates are two."""
    a = completion_ref(_unified(_later(1)))
    b = completion_ref(_unified(DAY0))
    again = completion_ref(_unified(DAY0))
    assert a is not None and b is not None and again is not None
    assert a.event_id != b.event_id
    assert b.event_id == again.event_id
    assert a.execution_id == b.execution_id == "a1b2c3d4"
