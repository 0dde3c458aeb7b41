"""Phase 5 (predictions) and phase 6 (publishing) reference processors.

Invariant: a row depends only on input rows that ``routes.yaml`` maps to that entity (on
``day``, or on the earlier dates its lookback covers), so ``compute(ids)`` returns exactly
the full-date rows of ``ids``; the date-granularity exporter always computes the whole date.
"""

from __future__ import annotations

from datetime import date

from scoperouter.examples.nba.refbase import (
    INJURY,
    LEAGUE_AVG_ALLOWED,
    MLFS,
    OUT_STATUSES,
    PEXP_LAST_GAMES,
    PGS,
    PRED,
    PROPS,
    UPGC,
    Ids,
    avg,
    before,
    f,
    squad_injuries,
)
from scoperouter.examples.nba.warehouse import RowDict, Warehouse


def prediction_coordinator(wh: Warehouse, day: date, ids: Ids) -> dict[str, RowDict]:
    """The features (predictions/worker/data_loaders.py:940), the current line at prediction
    time (player_loader.py:662), the player's baseline (player_loader.py:817-830) and his
    injury status from today's context (``player_status as injury_status``,
    player_loader.py:338, put in his prediction request at :374; production leaves OUT and
    DOUBTFUL players out at :344, the reference predicts them 0 and 80%).

    And the worker's direct read of the injury report on the date
    (predictions/shared/injury_integration.py:239-255, the player's latest row): his
    teammates' OUT and DOUBTFUL players (:432-443) give the usage boost (OUT teammates,
    capped at 1.25, :485-526) that scales his points and the opportunity score (15 per OUT
    teammate, 5 per DOUBTFUL one, capped at 100, :528-551; production also weighs starters
    and stars, which the reference does not know), both written into the prediction row
    (predictions/worker/worker.py:1454-1468, :2136-2146). The reference boost is 2% per OUT
    teammate (production's redistributes the teammates' usage rates)."""
    feats = wh.rows(MLFS, day, ids)
    props = wh.rows(PROPS, day, feats)
    ctx = wh.rows(UPGC, day, feats)
    squad = squad_injuries(wh, day, (p for p in feats if p in wh.player_team))
    out: dict[str, RowDict] = {}
    for p in sorted(feats):
        x = feats[p]
        mates = [
            str(squad.get(q, {}).get("injury_status"))
            for q in (wh.rosters[wh.player_team[p]] if p in wh.player_team else ())
            if q != p and squad.get(q, {}).get("injury_status") in OUT_STATUSES
        ]
        n_out, n_doubtful = mates.count("out"), mates.count("doubtful")
        boost = min(1.25, 1.0 + 0.02 * n_out)
        status = ctx.get(p, {}).get("player_status")
        mean = f(x["avg_points"]) or 0.0
        recent = f(x["points_avg_last_10"]) or mean
        baseline = f(ctx.get(p, {}).get("points_avg_last_10")) or recent
        allowed = f(x["opp_points_allowed"]) or LEAGUE_AVG_ALLOWED
        pace = f(x["team_pace"]) or 100.0
        pred = (
            0.3 * mean
            + 0.1 * recent
            + 0.1 * baseline
            + 0.3 * (f(x["matchup_factor"]) or 0.0)
            + 0.2 * mean * allowed / LEAGUE_AVG_ALLOWED
        )
        pred += 0.05 * (pace - 100.0)
        pred *= boost
        if status == "out":
            pred = 0.0
        elif status in ("doubtful", "questionable"):
            pred *= 0.8
        line = f(props.get(p, {}).get("points_line"))
        edge = None if line is None else round(pred - line, 1)
        if status == "out" or edge is None or abs(edge) < 1.5:
            rec = "PASS"
        else:
            rec = "OVER" if edge > 0 else "UNDER"
        out[p] = {
            "predicted_points": round(pred, 1),
            "points_line": line,
            "edge": edge,
            "recommendation": rec,
            "teammate_usage_boost": round(boost, 2),
            "teammate_opportunity_score": float(min(100, 15 * n_out + 5 * n_doubtful)),
        }
    return out


def player_prediction_exporter(wh: Warehouse, day: date, ids: Ids) -> dict[str, RowDict]:
    """One player's page: the prediction (tonight_player_exporter.py:212), tonight's game
    (:165), the injury report (:180) and recent form, the last 10 games (:297-301)."""
    preds = wh.rows(PRED, day, ids)
    ctx = wh.rows(UPGC, day, preds)
    inj = wh.rows(INJURY, day, preds)
    form = wh.window_sums(PGS, preds, before(day), PEXP_LAST_GAMES, ("points",))
    out: dict[str, RowDict] = {}
    for p, x in sorted(preds.items()):
        n, pts = form.get(p, (0, 0))
        out[p] = {
            "predicted_points": x["predicted_points"],
            "points_line": x["points_line"],
            "recommendation": x["recommendation"],
            "opponent": ctx.get(p, {}).get("opponent"),
            "home": ctx.get(p, {}).get("home"),
            "injury_status": inj.get(p, {}).get("injury_status"),
            "last_10_ppg": avg(pts, n),
        }
    return out


def daily_predictions_exporter(wh: Warehouse, day: date, ids: Ids) -> dict[str, RowDict]:
    del ids  # the day's file: always the whole date
    preds = wh.rows(PRED, day)
    ranked = sorted(
        (p for p in preds if preds[p]["edge"] is not None),
        key=lambda p: (-abs(float(preds[p]["edge"])), p),  # type: ignore[arg-type]
    )
    rank = {p: n + 1 for n, p in enumerate(ranked)}
    return {
        p: {
            "predicted_points": x["predicted_points"],
            "recommendation": x["recommendation"],
            "edge": x["edge"],
            "edge_rank": rank.get(p),
        }
        for p, x in sorted(preds.items())
    }
