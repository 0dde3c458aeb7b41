"""One player's critical injury update through every phase, date level and routed.

Invariant: both runs start from copies of the same overnight warehouse and see the same
single update; latencies are simulated seconds from t=0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from scoperouter.examples.nba.processors import (
    BY_NAME,
)
from scoperouter.examples.nba.routers import DateLevelRouter, Job, PlannedRouter
from scoperouter.examples.nba.simulation import CostModel, simulate
from scoperouter.examples.nba.stream import Update
from scoperouter.router.loop_params import LoopOverrides

if TYPE_CHECKING:
    from scoperouter.examples.nba.harness import GameDay


@dataclass(frozen=True)
class SingleUpdate:
    """Latency of one player's change, date level and routed (simulated seconds from t=0).

    ``*_s`` (reaches every phase): per phase 3-6 the end of the FIRST run that rewrote the
    player's row; the slowest phase counts. ``*_all_s`` (every consumer done): the end of the
    LAST run, of any processor, that rewrote the player's row -- including date-granularity
    processors such as ``daily_predictions_exporter``; ``*_slowest`` names that processor."""

    player: str
    date_level_s: float
    routed_s: float
    date_level_all_s: float
    routed_all_s: float
    date_level_slowest: str
    routed_slowest: str


def single_update(
    day: GameDay, cost: CostModel | None = None, *, loop: bool | LoopOverrides = False
) -> SingleUpdate:
    """One player's injury change (critical, just before tip-off) through every phase,
    run date level and routed on copies of the overnight warehouse (``loop``: the routed
    run with the closed loop, e.g. a barrier)."""
    cost = cost or CostModel()
    gd = day.game_date
    wh0 = day.overnight
    players = sorted(
        p
        for p in wh0.rows("nba_analytics.upcoming_player_game_context", gd)
        if p in wh0.rows("nba_predictions.ml_feature_store_v2", gd)
    )
    inj = wh0.rows("nba_raw.nbac_injury_report", gd)
    player = players[0]
    status = "out" if inj.get(player, {}).get("injury_status") != "out" else "questionable"
    upd = Update(
        0.0,
        f"single injury {player}",
        "nba_raw.nbac_injury_report",
        gd,
        (
            (
                player,
                (
                    ("injury_reason", "Ankle sprain"),
                    ("injury_status", status),
                    ("team", wh0.player_team[player]),
                ),
            ),
        ),
        "player",
        priority="critical",
    )
    results: list[tuple[float, float, str]] = []
    for router in (
        DateLevelRouter(day.registry, day.relations, gd),
        PlannedRouter(day.registry, day.relations, gd, loop=loop),
    ):
        reached: dict[int, float] = {}  # phase -> end of its first run that rewrote the row
        last: dict[str, float] = {}  # processor -> end of its last run that rewrote the row

        def on_run(
            job: Job,
            now: float,
            dur: float,
            rows: int,
            changed: frozenset[str],
            reached: dict[int, float] = reached,
            last: dict[str, float] = last,
        ) -> None:
            if player in changed:
                phase = BY_NAME[job.processor].phase
                reached[phase] = min(reached.get(phase, now + dur), now + dur)
                last[job.processor] = max(last.get(job.processor, 0.0), now + dur)

        simulate(
            wh0.copy(),
            (upd,),
            router,
            day.registry,
            gd,
            cost,
            date_level=isinstance(router, DateLevelRouter),
            on_run=on_run,
        )
        slowest = max(sorted(last), key=lambda n: last[n]) if last else ""
        results.append(
            (max(reached.values()) if reached else 0.0, last[slowest] if last else 0.0, slowest)
        )
    (dl_s, dl_all, dl_slow), (ro_s, ro_all, ro_slow) = results
    return SingleUpdate(player, dl_s, ro_s, dl_all, ro_all, dl_slow, ro_slow)
