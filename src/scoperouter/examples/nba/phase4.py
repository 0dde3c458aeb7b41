"""Phase 4 (precompute) reference processors: one deterministic ``compute(wh, day, ids)`` each.

Invariant: a row depends only on input rows that ``routes.yaml`` maps to that entity (on
``day``, or on the earlier dates its lookback covers: windows are production's, see
:mod:`.refbase`), so ``compute(ids)`` returns exactly the full-date rows of ``ids``. One
exception, empty in the reference: whether ``player_daily_cache`` has a row for a player
without a context row depends on his teammates' context rows (production's roster
expansion, :func:`_daily_cache_players`), which routes.yaml maps to them only.
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import date, timedelta

from scoperouter.examples.nba.refbase import (
    LEAGUE_AVG_ALLOWED,
    MLFS_LAST_GAMES,
    MLFS_MATE_MIN_MINUTES,
    MLFS_MATE_USAGE_DAYS,
    MLFS_RECENT_DAYS,
    MLFS_SEASON_DAYS,
    OUT_STATUSES,
    PCF,
    PCF_HISTORY_DAYS,
    PDC,
    PDC_LAST_GAMES,
    PDC_ROSTER_DAYS,
    PDC_SEASON_DAYS,
    PGS,
    PROPS,
    PSZA,
    PSZA_GAMES,
    PSZA_TREND_GAMES,
    TDGS,
    TDZA,
    TDZA_GAMES,
    TOGS,
    UPGC,
    UTGC,
    Ids,
    avg,
    before,
    f,
    i,
    r,
    squad_injuries,
)
from scoperouter.examples.nba.warehouse import RowDict, Warehouse

PLAYED = "COALESCE(minutes, 0) > 0"
# feature 10: player_status -> risk, unknown or no status 0.0 (feature_calculator.py:97-106)
INJURY_RISK = {"available": 0.0, "probable": 1.0, "questionable": 2.0, "doubtful": 3.0,
               "out": 3.0}  # fmt: skip
FINAL_PACE = "status = 'final' AND pace IS NOT NULL"


def _keys(wh: Warehouse, source: str, day: date, ids: Ids) -> list[str]:
    """The entities of ``source`` on ``day``: the scope's, or all."""
    return wh.keys_on(source, day) if ids is None else sorted(wh.rows(source, day, ids))


def team_defense_zone_analysis(wh: Warehouse, day: date, ids: Ids) -> dict[str, RowDict]:
    teams = _keys(wh, TDGS, day, ids)
    cols = ("points_allowed", "opp_fg_made", "opp_fg_attempted", "opp_three_made", "steals")
    sums = wh.window_sums(TDGS, teams, day, TDZA_GAMES, cols, "status = 'final'")
    out: dict[str, RowDict] = {}
    for team in teams:
        n, pts, fgm, fga, threes, steals = sums.get(team, (0, 0, 0, 0, 0, 0))
        out[team] = {
            "games": n,
            "avg_points_allowed": avg(pts, n),
            "opp_fg_pct": avg(fgm, fga),
            "avg_opp_three_made": avg(threes, n),
            "avg_steals": avg(steals, n),
        }
    return out


def player_shot_zone_analysis(wh: Warehouse, day: date, ids: Ids) -> dict[str, RowDict]:
    """The last 10 games (sample window) and the last 20 (trend window) per player."""
    players = _keys(wh, PGS, day, ids)
    cols = ("points", "minutes", "paint_fga", "mid_fga", "three_fga")
    sums = wh.window_sums(PGS, players, day, PSZA_GAMES, cols, PLAYED)
    trend = wh.window_sums(PGS, players, day, PSZA_TREND_GAMES, ("paint_fga", "mid_fga",
                                                                 "three_fga"), PLAYED)  # fmt: skip
    out: dict[str, RowDict] = {}
    for p in players:
        n, pts, mins, paint, mid, three = sums.get(p, (0, 0, 0, 0, 0, 0))
        tot = paint + mid + three
        _n20, paint20, mid20, three20 = trend.get(p, (0, 0, 0, 0))
        out[p] = {
            "games_played": n,
            "avg_points": avg(pts, n),
            "avg_minutes": avg(mins, n),
            "paint_rate": avg(paint, tot),
            "mid_rate": avg(mid, tot),
            "three_rate": avg(three, tot),
            "paint_rate_last_20": avg(paint20, paint20 + mid20 + three20),
        }
    return out


def player_composite_factors(wh: Warehouse, day: date, ids: Ids) -> dict[str, RowDict]:
    ctx = wh.rows(UPGC, day, ids)
    teams = {str(x["team"]) for x in ctx.values()}
    opps = {str(x["opponent"]) for x in ctx.values()}
    tctx = wh.rows(UTGC, day, teams)
    zone = wh.rows(PSZA, day, ctx)
    defense = wh.rows(TDZA, day, opps)
    # fatigue and usage from the player's own games in the 14 days before ``day``
    # (player_composite_factors_processor.py:540-566)
    recent = wh.window_sums(
        PGS, ctx, before(day), 0, ("minutes", "usage_rate"), PLAYED,
        since=day - timedelta(days=PCF_HISTORY_DAYS),
    )  # fmt: skip
    yesterday = wh.rows(PGS, before(day), ctx)
    out: dict[str, RowDict] = {}
    # the usage-spike factor's context (usage_context_json, written at
    # player_composite_factors_processor.py:1627) carries the context's star_teammates_out
    # (:351; usage_spike_factor.py:85, :99); its score needs the projected usage, not modelled
    for p in sorted(ctx):
        c = ctx[p]
        tc = tctx.get(str(c["team"]), {})
        z = zone.get(p, {})
        d = defense.get(str(c["opponent"]), {})
        games, minutes, usage = recent.get(p, (0, 0, 0))
        b2b = i(yesterday.get(p, {}).get("minutes")) > 0
        mean_points = f(z.get("avg_points"))
        allowed = f(d.get("avg_points_allowed"))
        spread = f(tc.get("spread"))
        factor = (mean_points or 0.0) * (allowed or LEAGUE_AVG_ALLOWED) / LEAGUE_AVG_ALLOWED
        factor += -0.1 * (spread or 0.0) + (0.5 if c["home"] else 0.0)
        factor += -0.002 * minutes - (0.5 if b2b else 0.0) + 0.01 * (avg(usage, games) or 0.0)
        out[p] = {
            "opponent": c["opponent"],
            "points_line": c["points_line"],
            "avg_points": mean_points,
            "three_rate": z.get("three_rate"),
            "opp_points_allowed": allowed,
            "opp_fg_pct": d.get("opp_fg_pct"),
            "team_spread": spread,
            "game_total": tc.get("total"),
            "games_last_14": games,
            "minutes_last_14": minutes,
            "back_to_back": int(b2b),
            "star_teammates_out": i(c.get("star_teammates_out")),
            "matchup_factor": r(factor, 3),
        }
    return out


def _daily_cache_players(wh: Warehouse, day: date, ids: Ids) -> dict[str, RowDict]:
    """The players production's daily cache processes on ``day``, each with his context row
    (player_daily_cache_processor.py:477-545, the UNION of :538-540): the date's
    upcoming_player_game_context rows (:492-508), and the "roster expansion" (:480-482,
    :509-537): on the teams those rows name (:510-513), every player with a
    player_game_summary row in the 30 days before the date (:531-533) who has no context row
    (:535), with the team of his latest such row (:520, :536; the team whose pace he gets,
    :1453-1455) and no context columns (NULL, :523-530: here the fatigue stand-ins). Rosters
    are static here, so a player's rows are all his roster team's (as
    :func:`.phase3._stars` says).

    The expansion reads the WHOLE date's context whatever the scope: whether a teammate has a
    context row decides a roster player's row. In the reference the expansion is empty, as
    its context holds every rostered player of a team playing on the date
    (:func:`.phase3.upcoming_player_game_context`); production's leaves players out -- the
    OUT/DOUBTFUL ones on the game day (daily mode, upcoming_player_game_context/queries/
    shared_ctes.py:319-321) and those the gamebook does not list as playing on a played date
    (backfill mode, shared_ctes.py:277-293) -- and there the teammates' rows matter
    (routes.yaml, player_daily_cache's upcoming_player_game_context input)."""
    every = wh.rows(UPGC, day)
    teams = sorted({str(x["team"]) for x in every.values()})
    out = {p: x for p, x in every.items() if ids is None or p in ids}
    roster = [
        q for t in teams for q in wh.rosters.get(t, ()) if q not in every and (ids is None or q in ids)
    ]  # fmt: skip
    recent = wh.window_sums(
        PGS, roster, before(day), 0, (), since=day - timedelta(days=PDC_ROSTER_DAYS)
    )
    none = {"games_last_14": None, "minutes_last_14": None}
    out.update({q: {"team": wh.player_team[q], **none} for q in roster if q in recent})
    return out


def player_daily_cache(wh: Warehouse, day: date, ids: Ids) -> dict[str, RowDict]:
    """Season-to-date and last-10 averages from games before ``day``
    (player_daily_cache_processor.py:425-444, stats_aggregator.py:38-56), the team's pace
    over its last 10 games (:455-470), today's context's fatigue and the shot zones, for
    today's context's players and production's roster expansion
    (:func:`_daily_cache_players`). Production's copies the context's fatigue columns and
    age (:492-508, aggregators/context_aggregator.py:29-52); the reference copies its
    context's stand-ins for two of them (``games_last_14``, ``minutes_last_14``:
    games_in_last_14_days, minutes_in_last_14_days) and, like production's, reads no line
    (no ``points_line`` in player_daily_cache/)."""
    ctx = _daily_cache_players(wh, day, ids)
    since = day - timedelta(days=PDC_SEASON_DAYS)
    season = wh.window_sums(PGS, ctx, before(day), 0, ("points",), PLAYED, since=since)
    last10 = wh.window_sums(
        PGS, ctx, before(day), PDC_LAST_GAMES, ("points", "minutes", "usage_rate"), PLAYED,
        since=since,
    )  # fmt: skip
    teams = {str(x["team"]) for x in ctx.values()}
    pace = wh.window_sums(
        TOGS, teams, before(day), PDC_LAST_GAMES, ("pace",), FINAL_PACE, since=since
    )
    zone = wh.rows(PSZA, day, ctx)
    out: dict[str, RowDict] = {}
    for p in sorted(ctx):
        n_season, pts_season = season.get(p, (0, 0))
        n, pts, mins, usage = last10.get(p, (0, 0, 0, 0))
        n_pace, pace_sum = pace.get(str(ctx[p]["team"]), (0, 0))
        out[p] = {
            "games_last_14": ctx[p]["games_last_14"],
            "minutes_last_14": ctx[p]["minutes_last_14"],
            "games_played_season": n_season,
            "points_avg_season": avg(pts_season, n_season),
            "points_avg_last_10": avg(pts, n),
            "minutes_avg_last_10": avg(mins, n),
            "usage_rate_last_10": avg(usage, n),
            "shot_zone_avg_points": zone.get(p, {}).get("avg_points"),
            "team_pace_last_10": avg(pace_sum, n_pace),
        }
    return out


def ml_feature_store(wh: Warehouse, day: date, ids: Ids) -> dict[str, RowDict]:
    """The feature vector: Phase 4 tables (ml_feature_store_processor.py:600-650) plus what
    feature_extractor.py reads directly -- the player's games (:675-722 last 10 in 60 days,
    :762 season), the team's pace (:932 season), today's context (:233), the line (:1020)
    -- the player's own injury status, and production's feature 47
    (``teammate_usage_available``, :1423-1484, used at ml_feature_store_processor.py:2058,
    though :147 calls it dead): the sum of his OUT/DOUBTFUL teammates' average usage_rate
    over the 30 days before the date, games with minutes > 10 (:1444-1464), so it reads his
    whole team's injury report and the injured teammates' box scores (routes.yaml:
    ``also_map`` on both inputs). As in production, a player who is himself OUT/DOUBTFUL, or
    whose team has no one out with such games, gets no value (:1465-1474). Three features
    read today's context as production's do (the context's columns: feature_extractor.py:
    619-623): feature 10 ``injury_risk`` from ``player_status`` (feature_calculator.py:77-113,
    called at ml_feature_store_processor.py:1822), feature 37 ``star_teammates_out`` (0.0 when
    missing, ml_feature_store_processor.py:1979-1984) and feature 38 ``game_total``
    (:1986-1990)."""
    comp = wh.rows(PCF, day, ids)
    zone = wh.rows(PSZA, day, comp)
    cache = wh.rows(PDC, day, comp)
    ctx = wh.rows(UPGC, day, comp)
    props = wh.rows(PROPS, day, comp)
    squads = {str(x["team"]) for x in ctx.values()}
    inj = squad_injuries(wh, day, comp)
    hurt = sorted(q for q, x in inj.items() if x.get("injury_status") in OUT_STATUSES)
    hurt_usage = wh.window_sums(
        PGS, hurt, before(day), 0, ("usage_rate",),
        f"usage_rate IS NOT NULL AND COALESCE(minutes, 0) > {MLFS_MATE_MIN_MINUTES}",
        since=day - timedelta(days=MLFS_MATE_USAGE_DAYS),
    )  # fmt: skip
    defense = wh.rows(TDZA, day, {str(x["opponent"]) for x in comp.values()})
    last10 = wh.window_sums(
        PGS, comp, before(day), MLFS_LAST_GAMES, ("points",), PLAYED,
        since=day - timedelta(days=MLFS_RECENT_DAYS),
    )  # fmt: skip
    season = wh.window_sums(
        PGS, comp, before(day), 0, ("points",), PLAYED,
        since=day - timedelta(days=MLFS_SEASON_DAYS),
    )  # fmt: skip
    pace = wh.window_sums(
        TOGS, squads, before(day), 0, ("pace",), FINAL_PACE,
        since=day - timedelta(days=MLFS_SEASON_DAYS),
    )  # fmt: skip
    out: dict[str, RowDict] = {}
    for p in sorted(comp):
        c = comp[p]
        z = zone.get(p, {})
        k = cache.get(p, {})
        team = str(ctx.get(p, {}).get("team"))
        n, pts = last10.get(p, (0, 0))
        ns, pts_season = season.get(p, (0, 0))
        n_pace, pace_sum = pace.get(team, (0, 0))
        own = inj.get(p, {}).get("injury_status")
        cx = ctx.get(p, {})
        stars_out, total = cx.get("star_teammates_out"), f(cx.get("game_total"))
        freed = [
            u / n_mate
            for q in wh.rosters[wh.player_team[p]]
            if q != p
            for n_mate, u in (hurt_usage.get(q, (0, 0)),)
            if n_mate
        ]
        out[p] = {
            "points_line": props.get(p, {}).get("points_line"),
            "avg_points": z.get("avg_points"),
            "three_rate": z.get("three_rate"),
            "opp_points_allowed": defense.get(str(c["opponent"]), {}).get("avg_points_allowed"),
            "matchup_factor": c["matchup_factor"],
            "team_pace": k.get("team_pace_last_10"),
            "team_pace_season": avg(pace_sum, n_pace),
            "avg_minutes": k.get("minutes_avg_last_10"),
            "usage_rate": k.get("usage_rate_last_10"),
            "points_avg_last_10": avg(pts, n),
            "points_avg_season": avg(pts_season, ns),
            "home": cx.get("home"),
            "injury_status": own,
            "injury_risk": INJURY_RISK.get(str(cx.get("player_status") or "").lower(), 0.0),
            "star_teammates_out": 0.0 if stars_out is None else float(i(stars_out)),
            "game_total": total,
            "teammate_usage_available": r(sum(freed))
            if freed and own not in OUT_STATUSES
            else None,
        }
    return out


def league_rankings(wh: Warehouse, day: date, ids: Ids) -> dict[str, RowDict]:
    del ids  # league-wide: always the whole date
    played = {p: x for p, x in wh.rows(PGS, day).items() if i(x["minutes"]) > 0}
    pts = sorted(i(x["points"]) for x in played.values())
    n = len(pts)
    out: dict[str, RowDict] = {}
    for p in sorted(played):
        v = i(played[p]["points"])
        out[p] = {
            "points": v,
            "minutes": played[p]["minutes"],
            "points_pct": r(bisect_left(pts, v) / n),
        }
    return out
