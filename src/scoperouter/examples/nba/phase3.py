"""Phase 3 (analytics) reference processors: one deterministic ``compute(wh, day, ids)`` each.

Invariant: a row depends only on input rows that ``routes.yaml`` maps to that entity (on
``day``, or on earlier dates its lookback covers), so ``compute(ids)`` returns exactly the
full-date rows of ``ids``. ``reads`` (in :mod:`.processors`) lists every column read here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from scoperouter.examples.nba.refbase import (
    BDL,
    GAMEBOOK,
    INJURY,
    LINES,
    OUT_STATUSES,
    PBP,
    PGS,
    PROPS,
    SCHEDULE,
    SCOREBOARD,
    TDGS,
    TEAM_BOX,
    TOGS,
    UPGC_FATIGUE_DAYS,
    UPGC_HISTORY_DAYS,
    UPGC_LAST_GAMES,
    UPGC_SEASON_DAYS,
    UPGC_STAR_MIN_GAMES,
    UPGC_STAR_MINUTES,
    UPGC_STAR_MINUTES_POINTS,
    UPGC_STAR_POINTS,
    UPGC_STAR_RECENT_DAYS,
    Ids,
    avg,
    before,
    f,
    i,
    r,
    squad_injuries,
    teammates_out,
)
from scoperouter.examples.nba.warehouse import RowDict, Warehouse

BOXCOLS = ("minutes", "points", "rebounds", "assists", "steals", "blocks", "turnovers",
           "fg_made", "fg_attempted", "three_made")  # fmt: skip
TEAM_SUMS = ("points", "assists", "fg_made", "fg_attempted", "three_made", "turnovers")
PLAYED = "COALESCE(minutes, 0) > 0"


def _box(
    wh: Warehouse, day: date, ids: Iterable[str] | None, by: str | None = None
) -> dict[str, RowDict]:
    """Box rows: the official gamebook where present, else balldontlie."""
    out = dict(wh.rows(BDL, day, ids, by=by))
    out.update(wh.rows(GAMEBOOK, day, ids, by=by))
    return out


def _usage(row: RowDict, team: RowDict | None) -> float | None:
    """Usage rate from the player's and his team's attempts, turnovers and possessions (the
    team row comes from team_offense_game_summary, as in production's
    player_game_summary_processor.py:1130-1185)."""
    if not team or not i(row["minutes"]) or team.get("possessions") is None:
        return None
    team_load = i(team["fg_attempted"]) + i(team["turnovers"])
    if not team_load:
        return None
    own = i(row["fg_attempted"]) + i(row["turnovers"])
    return r(own * i(team["possessions"]) / team_load, 2)


def player_game_summary(wh: Warehouse, day: date, ids: Ids) -> dict[str, RowDict]:
    gb = wh.rows(GAMEBOOK, day, ids)
    bdl = wh.rows(BDL, day, ids)
    pbp = wh.rows(PBP, day, ids)
    props = wh.rows(PROPS, day, ids)
    inj = wh.rows(INJURY, day, ids)
    players = sorted(set(gb) | set(bdl) | set(props) | set(inj))
    togs = wh.rows(TOGS, day, {wh.player_team[p] for p in players if p in wh.player_team})
    out: dict[str, RowDict] = {}
    for p in players:
        box = gb.get(p) or bdl.get(p)
        zone = pbp.get(p, {})
        prop = props.get(p, {})
        ir = inj.get(p, {})
        game_id = box["game_id"] if box else prop.get("game_id")
        team = wh.player_team.get(p)
        row: RowDict = {"team": team, "game_id": game_id}
        for c in BOXCOLS:
            row[c] = box.get(c) if box else None
        row["plus_minus"] = gb[p]["plus_minus"] if p in gb else None
        row["dnp_reason"] = gb[p]["dnp_reason"] if p in gb else None
        for c in ("paint_fga", "mid_fga", "three_fga"):
            row[c] = zone.get(c)
        row["points_line"] = prop.get("points_line")
        row["injury_status"] = ir.get("injury_status")
        row["injury_reason"] = ir.get("injury_reason")
        row["usage_rate"] = _usage(row, togs.get(str(team))) if box else None
        out[p] = row
    return out


def _scoreboard_teams(wh: Warehouse, day: date, ids: Ids) -> dict[str, tuple[str, str, RowDict]]:
    """team -> (game_id, opponent, scoreboard row) for the games on ``day``."""
    out: dict[str, tuple[str, str, RowDict]] = {}
    for gid, g in wh.rows(SCOREBOARD, day).items():
        home, away = str(g["home"]), str(g["away"])
        for team, opp in ((home, away), (away, home)):
            if ids is None or team in ids:
                out[team] = (gid, opp, g)
    return out


def _sum(rows: list[RowDict], col: str) -> int:
    return sum(i(x[col]) for x in rows)


def team_defense_game_summary(wh: Warehouse, day: date, ids: Ids) -> dict[str, RowDict]:
    """What a team allowed (its team box score and the opponent's shot zones) and what its
    own players did (box scores: player rows reach their own team, as in production)."""
    teams = _scoreboard_teams(wh, day, ids)
    box = _box(wh, day, teams, by="team")
    tbox = wh.rows(TEAM_BOX, day, teams)
    opp_zones = wh.rows(PBP, day, {opp for _g, opp, _r in teams.values()}, by="team")
    by_team: dict[str, list[RowDict]] = {}
    for p in sorted(box):
        by_team.setdefault(str(box[p]["team"]), []).append(box[p])
    out: dict[str, RowDict] = {}
    for team in sorted(teams):
        gid, opp, g = teams[team]
        rows = by_team.get(team, [])
        tb = tbox.get(team, {})
        scored = _sum(rows, "points")
        allowed = tb.get("opp_points")
        zones = [z for z in opp_zones.values() if z["team"] == opp]
        out[team] = {
            "game_id": gid,
            "opponent": opp,
            "status": g["status"],
            "points_allowed": allowed,
            "opp_fg_made": tb.get("opp_fg_made"),
            "opp_fg_attempted": tb.get("opp_fg_attempted"),
            "opp_three_made": tb.get("opp_three_made"),
            "opp_paint_fga": _sum(zones, "paint_fga") if zones else None,
            "def_rebounds": tb.get("def_rebounds"),
            "steals": tb.get("steals"),
            "blocks": tb.get("blocks"),
            "points_scored": scored,
            "margin": None if allowed is None else scored - i(allowed),
            "team_rebounds": _sum(rows, "rebounds"),
            "team_turnovers": _sum(rows, "turnovers"),
            "team_fg_made": _sum(rows, "fg_made"),
            "team_fg_attempted": _sum(rows, "fg_attempted"),
            "team_three_made": _sum(rows, "three_made"),
        }
    return out


def team_offense_game_summary(wh: Warehouse, day: date, ids: Ids) -> dict[str, RowDict]:
    teams = _scoreboard_teams(wh, day, ids)
    box = _box(wh, day, teams, by="team")
    pbp = wh.rows(PBP, day, teams, by="team")
    tbox = wh.rows(TEAM_BOX, day, teams)
    out: dict[str, RowDict] = {}
    for team in sorted(teams):
        gid, _opp, g = teams[team]
        rows = [box[p] for p in sorted(box) if box[p]["team"] == team]
        zones = [pbp[p] for p in sorted(pbp) if pbp[p]["team"] == team]
        poss = tbox.get(team, {}).get("possessions")
        periods = i(g["periods"])
        pace = (
            r(i(poss) * 48.0 / (48.0 + 5.0 * max(periods - 4, 0)), 2)
            if g["status"] == "final" and poss is not None
            else None
        )
        out[team] = {
            "game_id": gid,
            "status": g["status"],
            **{c: _sum(rows, c) for c in TEAM_SUMS},
            "three_fga": _sum(zones, "three_fga"),
            "possessions": poss,
            "pace": pace,
        }
    return out


def _schedule_teams(wh: Warehouse, day: date) -> dict[str, tuple[str, str, int]]:
    """team -> (game_id, opponent, home flag) from the schedule on ``day``."""
    out: dict[str, tuple[str, str, int]] = {}
    for gid, g in wh.rows(SCHEDULE, day).items():
        home, away = str(g["home"]), str(g["away"])
        out[home] = (gid, away, 1)
        out[away] = (gid, home, 0)
    return out


def _team_last_games(
    wh: Warehouse, source: str, teams: Iterable[str], day: date, col: str
) -> dict[str, float | None]:
    """Per team, the average of ``col`` over its last 10 final games in the 30 days before
    ``day`` (team_context.py:67-81 and :312-317: ``game_date < @game_date``, ``rn <= 10``)."""
    sums = wh.window_sums(
        source,
        teams,
        before(day),
        UPGC_LAST_GAMES,
        (col,),
        f"status = 'final' AND \"{col}\" IS NOT NULL",
        since=day - timedelta(days=UPGC_HISTORY_DAYS),
    )
    return {t: avg(s[1], s[0]) for t, s in sums.items()}


def _stars(wh: Warehouse, day: date, teams: Iterable[str]) -> frozenset[str]:
    """The STAR players of ``teams`` on ``day`` by their player_game_summary rows before it
    (team_context.py:749-791): >= 10 played games in the season and, averaged over the last
    10 days (else the season), >= 18 points or >= 28 minutes with >= 12 points. Production
    reads the rows of the team (``team_abbr``) of its roster players; rosters are static
    here, so a player's rows are all his team's."""
    squad = [p for t in sorted(teams) for p in wh.rosters.get(t, ())]
    season = wh.window_sums(
        PGS, squad, before(day), 0, ("points", "minutes"), PLAYED,
        since=day - timedelta(days=UPGC_SEASON_DAYS),
    )  # fmt: skip
    recent = wh.window_sums(
        PGS, squad, before(day), 0, ("points", "minutes"), "points IS NOT NULL",
        since=day - timedelta(days=UPGC_STAR_RECENT_DAYS),
    )  # fmt: skip
    out: set[str] = set()
    for p, (n, pts, mins) in season.items():
        if n < UPGC_STAR_MIN_GAMES:
            continue
        rn, rpts, rmins = recent.get(p, (0, 0, 0))
        points, minutes = (rpts / rn, rmins / rn) if rn else (pts / n, mins / n)
        if points >= UPGC_STAR_POINTS or (
            minutes >= UPGC_STAR_MINUTES and points >= UPGC_STAR_MINUTES_POINTS
        ):
            out.add(p)
    return frozenset(out)


def upcoming_player_game_context(wh: Warehouse, day: date, ids: Ids) -> dict[str, RowDict]:
    """The context of each rostered player of a team playing on ``day``. Two columns read
    the teammates (routes.yaml: ``also_map`` on the injury and player_game_summary inputs):
    ``star_teammates_out`` is production's (team_context.py:710-817, per team at
    upcoming_player_game_context_processor.py:1273): the team's STAR players (by their
    season's points and minutes, :749-791) OUT/DOUBTFUL on the date, the player himself
    included as there. ``teammates_out`` counts every OUT/DOUBTFUL teammate but him (an
    injury-only stand-in that the demo's injury updates move more often than stars)."""
    teams = _schedule_teams(wh, day)
    sched = wh.rows(SCHEDULE, day)
    players = sorted(p for t in teams for p in wh.rosters.get(t, ()) if ids is None or p in ids)
    props = wh.rows(PROPS, day, players)
    lines = wh.rows(LINES, day)
    squads = {wh.player_team[p] for p in players}
    # the player's own status and his teammates' (team_context.py:793-806: the OUT/DOUBTFUL
    # players of his team on the date)
    inj = squad_injuries(wh, day, players)
    stars = _stars(wh, day, squads)
    stars_out = {
        t: sum(1 for q in wh.rosters[t] if q in stars
               and inj.get(q, {}).get("injury_status") in OUT_STATUSES)
        for t in squads
    }  # fmt: skip
    # the player's own history (player_game_summary, the 30 days before ``day``)
    history = wh.window_sums(
        PGS, players, before(day), UPGC_LAST_GAMES, ("points", "usage_rate"), PLAYED,
        since=day - timedelta(days=UPGC_HISTORY_DAYS),
    )  # fmt: skip
    fatigue = wh.window_sums(
        PGS, players, before(day), 0, ("minutes",), PLAYED,
        since=day - timedelta(days=UPGC_FATIGUE_DAYS - 1),
    )  # fmt: skip
    opps = {teams[t][1] for t in squads}
    opp_pace = _team_last_games(wh, TOGS, opps, day, "pace")
    opp_allowed = _team_last_games(wh, TDGS, opps, day, "points_allowed")
    out: dict[str, RowDict] = {}
    for p in players:
        team = wh.player_team[p]
        gid, opp, home = teams[team]
        line = lines.get(gid, {})
        prop = props.get(p, {})
        spread = f(line.get("spread_home"))
        n, pts, usage = history.get(p, (0, 0, 0))
        games14, minutes14 = fatigue.get(p, (0, 0))
        out[p] = {
            "team": team,
            "game_id": gid,
            "opponent": opp,
            "home": home,
            "start_time": sched[gid]["start_time"],
            "points_line": prop.get("points_line"),
            "over_price": prop.get("over_price"),
            "under_price": prop.get("under_price"),
            "team_spread": None if spread is None else (spread if home else -spread),
            "game_total": line.get("total"),
            "player_status": inj.get(p, {}).get("injury_status"),
            "teammates_out": teammates_out(wh, inj, p),
            "star_teammates_out": stars_out[team],
            "points_avg_last_10": avg(pts, n),
            "usage_avg_last_10": avg(usage, n),
            "games_last_14": games14,
            "minutes_last_14": minutes14,
            "opp_pace_last_10": opp_pace.get(opp),
            "opp_points_allowed_last_10": opp_allowed.get(opp),
        }
    return out


def upcoming_team_game_context(wh: Warehouse, day: date, ids: Ids) -> dict[str, RowDict]:
    teams = {t: v for t, v in _schedule_teams(wh, day).items() if ids is None or t in ids}
    lines = wh.rows(LINES, day)
    inj = wh.rows(INJURY, day, [p for t in teams for p in wh.rosters.get(t, ())])
    out: dict[str, RowDict] = {}
    for team in sorted(teams):
        gid, opp, home = teams[team]
        line = lines.get(gid, {})
        spread = f(line.get("spread_home"))
        statuses = [inj[p]["injury_status"] for p in wh.rosters.get(team, ()) if p in inj]
        out[team] = {
            "game_id": gid,
            "opponent": opp,
            "home": home,
            "spread": None if spread is None else (spread if home else -spread),
            "total": line.get("total"),
            "players_out": sum(1 for s in statuses if s == "out"),
            "players_questionable": sum(1 for s in statuses if s in ("doubtful", "questionable")),
        }
    return out
