"""Reference processors for every processor in ``routes.yaml`` (phases 3-6).

Each processor is a deterministic function ``compute(warehouse, day, ids)`` returning one
row per entity of its granularity for ``day``: for ``ids=None`` every entity of the date
(its *universe*), otherwise only those ids that belong to the universe. An entity's row
depends only on input rows that the registry's relations map to that entity, which is
what makes entity-scoped runs give exactly the rows a full-date run would.

:func:`run` executes one (processor, date, scope): it replaces only the scope's rows and
diffs old against new with :mod:`scoperouter.sdk.change_detection`.

``reads`` lists, per input source, the columns a processor actually reads: the tests check
it against ``routes.yaml`` (every read source is an input; with ``fields``, every read
column is listed) -- the contract that keeps routing and processing in agreement.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from scoperouter.examples.nba.warehouse import RAW_TABLES, RowDict, TableDef, Warehouse
from scoperouter.sdk.change_detection import ChangeDetector, EntityChanges, diff_rows

Ids = frozenset[str] | None
Compute = Callable[[Warehouse, date, Ids], dict[str, RowDict]]

GAMEBOOK = "nba_raw.nbac_gamebook_player_stats"
BDL = "nba_raw.bdl_player_boxscores"
PBP = "nba_raw.nbac_play_by_play"
PROPS = "nba_raw.odds_api_player_points_props"
LINES = "nba_raw.odds_api_game_lines"
SCHEDULE = "nba_raw.nbac_schedule"
INJURY = "nba_raw.nbac_injury_report"
TEAM_BOX = "nba_raw.nbac_team_boxscore"
SCOREBOARD = "nba_raw.nbac_scoreboard_v2"

PGS = "nba_analytics.player_game_summary"
TDGS = "nba_analytics.team_defense_game_summary"
TOGS = "nba_analytics.team_offense_game_summary"
UPGC = "nba_analytics.upcoming_player_game_context"
UTGC = "nba_analytics.upcoming_team_game_context"
TDZA = "nba_precompute.team_defense_zone_analysis"
PSZA = "nba_precompute.player_shot_zone_analysis"
PCF = "nba_precompute.player_composite_factors"
PDC = "nba_precompute.player_daily_cache"
MLFS = "nba_predictions.ml_feature_store_v2"
LEAGUE = "nba_precompute.league_rankings"
PRED = "nba_predictions.player_prop_predictions"
PEXP = "publishing.player_predictions"
DEXP = "publishing.daily_predictions"

PSZA_GAMES = 10
TDZA_GAMES = 15
LEAGUE_AVG_ALLOWED = 112.0


@dataclass(frozen=True)
class RefProcessor:
    name: str
    phase: int
    granularity: str  # player | team | date
    entity_type: str  # the entity type of its rows (player | team)
    table: TableDef
    reads: Mapping[str, frozenset[str]]
    compute: Compute

    @property
    def publishes(self) -> str:
        return self.table.source


def _f(x: object) -> float | None:
    return None if x is None else float(x)  # type: ignore[arg-type]


def _i(x: object) -> int:
    return 0 if x is None else int(x)  # type: ignore[call-overload]


def _r(x: float | None, n: int = 4) -> float | None:
    return None if x is None else round(x, n)


def _box(
    wh: Warehouse, day: date, ids: Iterable[str] | None, by: str | None = None
) -> dict[str, RowDict]:
    """Box rows: the official gamebook where present, else balldontlie."""
    out = dict(wh.rows(BDL, day, ids, by=by))
    out.update(wh.rows(GAMEBOOK, day, ids, by=by))
    return out


# ---------------------------------------------------------------------- phase 3
def player_game_summary(wh: Warehouse, day: date, ids: Ids) -> dict[str, RowDict]:
    gb = wh.rows(GAMEBOOK, day, ids)
    bdl = wh.rows(BDL, day, ids)
    pbp = wh.rows(PBP, day, ids)
    props = wh.rows(PROPS, day, ids)
    inj = wh.rows(INJURY, day, ids)
    out: dict[str, RowDict] = {}
    for p in sorted(set(gb) | set(bdl) | set(props) | set(inj)):
        box = gb.get(p) or bdl.get(p)
        zone = pbp.get(p, {})
        prop = props.get(p, {})
        ir = inj.get(p, {})
        game_id = box["game_id"] if box else prop.get("game_id")
        row: RowDict = {"team": wh.player_team.get(p), "game_id": game_id}
        for c in ("minutes", "points", "rebounds", "assists", "steals", "blocks", "turnovers",
                  "fg_made", "fg_attempted", "three_made"):  # fmt: skip
            row[c] = box.get(c) if box else None
        row["plus_minus"] = gb[p]["plus_minus"] if p in gb else None
        row["dnp_reason"] = gb[p]["dnp_reason"] if p in gb else None
        for c in ("paint_fga", "mid_fga", "three_fga"):
            row[c] = zone.get(c)
        row["points_line"] = prop.get("points_line")
        row["injury_status"] = ir.get("injury_status")
        row["injury_reason"] = ir.get("injury_reason")
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


def team_defense_game_summary(wh: Warehouse, day: date, ids: Ids) -> dict[str, RowDict]:
    """What a team allowed (its team box score) and what its own players did (box scores:
    player rows reach their own team, as in production)."""
    teams = _scoreboard_teams(wh, day, ids)
    box = _box(wh, day, teams, by="team")
    tbox = wh.rows(TEAM_BOX, day, teams)
    by_team: dict[str, list[RowDict]] = {}
    for p in sorted(box):
        by_team.setdefault(str(box[p]["team"]), []).append(box[p])
    out: dict[str, RowDict] = {}
    for team in sorted(teams):
        gid, opp, g = teams[team]
        rows = by_team.get(team, [])
        tb = tbox.get(team, {})
        scored = sum(_i(r["points"]) for r in rows)
        allowed = tb.get("opp_points")
        out[team] = {
            "game_id": gid,
            "opponent": opp,
            "status": g["status"],
            "points_allowed": allowed,
            "opp_fg_made": tb.get("opp_fg_made"),
            "opp_fg_attempted": tb.get("opp_fg_attempted"),
            "opp_three_made": tb.get("opp_three_made"),
            "def_rebounds": tb.get("def_rebounds"),
            "steals": tb.get("steals"),
            "blocks": tb.get("blocks"),
            "points_scored": scored,
            "margin": None if allowed is None else scored - _i(allowed),
            "team_rebounds": sum(_i(r["rebounds"]) for r in rows),
            "team_turnovers": sum(_i(r["turnovers"]) for r in rows),
            "team_fg_made": sum(_i(r["fg_made"]) for r in rows),
            "team_fg_attempted": sum(_i(r["fg_attempted"]) for r in rows),
            "team_three_made": sum(_i(r["three_made"]) for r in rows),
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
        periods = _i(g["periods"])
        pace = (
            _r(_i(poss) * 48.0 / (48.0 + 5.0 * max(periods - 4, 0)), 2)
            if g["status"] == "final" and poss is not None
            else None
        )
        out[team] = {
            "game_id": gid,
            "status": g["status"],
            "points": sum(_i(r["points"]) for r in rows),
            "assists": sum(_i(r["assists"]) for r in rows),
            "fg_made": sum(_i(r["fg_made"]) for r in rows),
            "fg_attempted": sum(_i(r["fg_attempted"]) for r in rows),
            "three_made": sum(_i(r["three_made"]) for r in rows),
            "turnovers": sum(_i(r["turnovers"]) for r in rows),
            "three_fga": sum(_i(z["three_fga"]) for z in zones),
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


def upcoming_player_game_context(wh: Warehouse, day: date, ids: Ids) -> dict[str, RowDict]:
    teams = _schedule_teams(wh, day)
    sched = wh.rows(SCHEDULE, day)
    players = sorted(p for t in teams for p in wh.rosters.get(t, ()) if ids is None or p in ids)
    props = wh.rows(PROPS, day, players)
    lines = wh.rows(LINES, day)
    out: dict[str, RowDict] = {}
    for p in players:
        team = wh.player_team[p]
        gid, opp, home = teams[team]
        line = lines.get(gid, {})
        prop = props.get(p, {})
        spread = _f(line.get("spread_home"))
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
        spread = _f(line.get("spread_home"))
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


# ---------------------------------------------------------------------- phase 4
def _last_games(
    wh: Warehouse,
    source: str,
    day: date,
    ids: Ids,
    games: int,
    columns: tuple[str, ...],
    where: str,
) -> tuple[list[str], dict[str, tuple[int, ...]]]:
    """The entities of ``source`` on ``day`` (the scope's, or all) and, per entity, the
    game count and sums of ``columns`` over its last ``games`` rows matching ``where``."""
    keys = wh.keys_on(source, day) if ids is None else sorted(wh.rows(source, day, ids))
    return keys, wh.window_sums(source, None if ids is None else keys, day, games, columns, where)


def team_defense_zone_analysis(wh: Warehouse, day: date, ids: Ids) -> dict[str, RowDict]:
    teams, sums = _last_games(
        wh,
        TDGS,
        day,
        ids,
        TDZA_GAMES,
        ("points_allowed", "opp_fg_made", "opp_fg_attempted", "opp_three_made", "steals"),
        "status = 'final'",
    )
    out: dict[str, RowDict] = {}
    for team in teams:
        n, pts, fgm, fga, threes, steals = sums.get(team, (0, 0, 0, 0, 0, 0))
        out[team] = {
            "games": n,
            "avg_points_allowed": _r(pts / n) if n else None,
            "opp_fg_pct": _r(fgm / fga) if fga else None,
            "avg_opp_three_made": _r(threes / n) if n else None,
            "avg_steals": _r(steals / n) if n else None,
        }
    return out


def player_shot_zone_analysis(wh: Warehouse, day: date, ids: Ids) -> dict[str, RowDict]:
    players, sums = _last_games(
        wh,
        PGS,
        day,
        ids,
        PSZA_GAMES,
        ("points", "minutes", "paint_fga", "mid_fga", "three_fga"),
        "COALESCE(minutes, 0) > 0",
    )
    out: dict[str, RowDict] = {}
    for p in players:
        n, pts, mins, paint, mid, three = sums.get(p, (0, 0, 0, 0, 0, 0))
        tot = paint + mid + three
        out[p] = {
            "games_played": n,
            "avg_points": _r(pts / n) if n else None,
            "avg_minutes": _r(mins / n) if n else None,
            "paint_rate": _r(paint / tot) if tot else None,
            "mid_rate": _r(mid / tot) if tot else None,
            "three_rate": _r(three / tot) if tot else None,
        }
    return out


def player_composite_factors(wh: Warehouse, day: date, ids: Ids) -> dict[str, RowDict]:
    ctx = wh.rows(UPGC, day, ids)
    teams = {str(r["team"]) for r in ctx.values()}
    opps = {str(r["opponent"]) for r in ctx.values()}
    tctx = wh.rows(UTGC, day, teams)
    zone = wh.rows(PSZA, day, ctx)
    defense = wh.rows(TDZA, day, opps)
    out: dict[str, RowDict] = {}
    for p in sorted(ctx):
        c = ctx[p]
        tc = tctx.get(str(c["team"]), {})
        z = zone.get(p, {})
        d = defense.get(str(c["opponent"]), {})
        avg = _f(z.get("avg_points"))
        allowed = _f(d.get("avg_points_allowed"))
        spread = _f(tc.get("spread"))
        factor = (avg or 0.0) * (allowed or LEAGUE_AVG_ALLOWED) / LEAGUE_AVG_ALLOWED
        factor += -0.1 * (spread or 0.0) + (0.5 if c["home"] else 0.0)
        out[p] = {
            "opponent": c["opponent"],
            "points_line": c["points_line"],
            "avg_points": avg,
            "three_rate": z.get("three_rate"),
            "opp_points_allowed": allowed,
            "opp_fg_pct": d.get("opp_fg_pct"),
            "team_spread": spread,
            "game_total": tc.get("total"),
            "matchup_factor": _r(factor, 3),
        }
    return out


def player_daily_cache(wh: Warehouse, day: date, ids: Ids) -> dict[str, RowDict]:
    ctx = wh.rows(UPGC, day, ids)
    games = wh.rows(PGS, day, ctx)
    zone = wh.rows(PSZA, day, ctx)
    offense = wh.rows(TOGS, day, {str(r["team"]) for r in ctx.values()})
    out: dict[str, RowDict] = {}
    for p in sorted(ctx):
        g = games.get(p, {})
        z = zone.get(p, {})
        out[p] = {
            "points_line": ctx[p]["points_line"],
            "injury_status": g.get("injury_status"),
            "minutes_today": g.get("minutes"),
            "avg_points": z.get("avg_points"),
            "avg_minutes": z.get("avg_minutes"),
            "team_pace": offense.get(str(ctx[p]["team"]), {}).get("pace"),
        }
    return out


def ml_feature_store(wh: Warehouse, day: date, ids: Ids) -> dict[str, RowDict]:
    comp = wh.rows(PCF, day, ids)
    zone = wh.rows(PSZA, day, comp)
    cache = wh.rows(PDC, day, comp)
    defense = wh.rows(TDZA, day, {str(r["opponent"]) for r in comp.values()})
    out: dict[str, RowDict] = {}
    for p in sorted(comp):
        c = comp[p]
        z = zone.get(p, {})
        k = cache.get(p, {})
        out[p] = {
            "points_line": c["points_line"],
            "avg_points": z.get("avg_points"),
            "three_rate": z.get("three_rate"),
            "opp_points_allowed": defense.get(str(c["opponent"]), {}).get("avg_points_allowed"),
            "matchup_factor": c["matchup_factor"],
            "team_pace": k.get("team_pace"),
            "injury_status": k.get("injury_status"),
            "avg_minutes": k.get("avg_minutes"),
        }
    return out


def league_rankings(wh: Warehouse, day: date, ids: Ids) -> dict[str, RowDict]:
    del ids  # league-wide: always the whole date
    played = {p: r for p, r in wh.rows(PGS, day).items() if _i(r["minutes"]) > 0}
    pts = sorted(_i(r["points"]) for r in played.values())
    n = len(pts)
    out: dict[str, RowDict] = {}
    for p in sorted(played):
        v = _i(played[p]["points"])
        below = bisect_left(pts, v)
        out[p] = {"points": v, "minutes": played[p]["minutes"], "points_pct": _r(below / n)}
    return out


# ---------------------------------------------------------------------- phases 5-6
def prediction_coordinator(wh: Warehouse, day: date, ids: Ids) -> dict[str, RowDict]:
    feats = wh.rows(MLFS, day, ids)
    out: dict[str, RowDict] = {}
    for p in sorted(feats):
        f = feats[p]
        avg = _f(f["avg_points"]) or 0.0
        allowed = _f(f["opp_points_allowed"]) or LEAGUE_AVG_ALLOWED
        pace = _f(f["team_pace"]) or 100.0
        pred = (
            0.5 * avg
            + 0.3 * (_f(f["matchup_factor"]) or 0.0)
            + 0.2 * avg * allowed / LEAGUE_AVG_ALLOWED
        )
        pred += 0.05 * (pace - 100.0)
        if f["injury_status"] == "out":
            pred = 0.0
        elif f["injury_status"] in ("doubtful", "questionable"):
            pred *= 0.8
        line = _f(f["points_line"])
        edge = None if line is None else round(pred - line, 1)
        if f["injury_status"] == "out" or edge is None or abs(edge) < 1.5:
            rec = "PASS"
        else:
            rec = "OVER" if edge > 0 else "UNDER"
        out[p] = {
            "predicted_points": round(pred, 1),
            "points_line": line,
            "edge": edge,
            "recommendation": rec,
        }
    return out


def player_prediction_exporter(wh: Warehouse, day: date, ids: Ids) -> dict[str, RowDict]:
    preds = wh.rows(PRED, day, ids)
    return {
        p: {
            "predicted_points": r["predicted_points"],
            "points_line": r["points_line"],
            "recommendation": r["recommendation"],
        }
        for p, r in sorted(preds.items())
    }


def daily_predictions_exporter(wh: Warehouse, day: date, ids: Ids) -> dict[str, RowDict]:
    del ids  # the day's file: always the whole date
    preds = wh.rows(PRED, day)
    ranked = sorted(
        (p for p in preds if preds[p]["edge"] is not None),
        key=lambda p: (-abs(float(preds[p]["edge"])), p),  # type: ignore[arg-type]
    )
    rank = {p: i + 1 for i, p in enumerate(ranked)}
    return {
        p: {
            "predicted_points": r["predicted_points"],
            "recommendation": r["recommendation"],
            "edge": r["edge"],
            "edge_rank": rank.get(p),
        }
        for p, r in sorted(preds.items())
    }


# ---------------------------------------------------------------------- registry
def _t(source: str, key: str, cols: tuple[str, ...], structural: tuple[str, ...] = ()) -> TableDef:
    return TableDef(source, key, cols, structural)


def _fs(*cols: str) -> frozenset[str]:
    return frozenset(cols)


_BOXCOLS = ("minutes", "points", "rebounds", "assists", "steals", "blocks", "turnovers",
            "fg_made", "fg_attempted", "three_made")  # fmt: skip

PROCESSORS: tuple[RefProcessor, ...] = (
    RefProcessor(
        "player_game_summary",
        3,
        "player",
        "player",
        _t(
            PGS,
            "player",
            (
                *_BOXCOLS,
                "plus_minus",
                "dnp_reason",
                "paint_fga",
                "mid_fga",
                "three_fga",
                "points_line",
                "injury_status",
                "injury_reason",
            ),
            ("team", "game_id"),
        ),
        {
            GAMEBOOK: _fs(*_BOXCOLS, "plus_minus", "dnp_reason"),
            BDL: _fs(*_BOXCOLS),
            PBP: _fs("paint_fga", "mid_fga", "three_fga"),
            PROPS: _fs("points_line"),
            INJURY: _fs("injury_status", "injury_reason"),
        },
        player_game_summary,
    ),
    RefProcessor(
        "team_defense_game_summary",
        3,
        "team",
        "team",
        _t(
            TDGS,
            "team",
            (
                "status",
                "points_allowed",
                "opp_fg_made",
                "opp_fg_attempted",
                "opp_three_made",
                "def_rebounds",
                "steals",
                "blocks",
                "points_scored",
                "margin",
                "team_rebounds",
                "team_turnovers",
                "team_fg_made",
                "team_fg_attempted",
                "team_three_made",
            ),
            ("game_id", "opponent"),
        ),
        {
            SCOREBOARD: _fs("status"),
            GAMEBOOK: _fs(
                "points", "rebounds", "fg_made", "fg_attempted", "three_made", "turnovers"
            ),
            BDL: _fs("points", "rebounds", "fg_made", "fg_attempted", "three_made", "turnovers"),
            TEAM_BOX: _fs(
                "opp_points",
                "opp_fg_made",
                "opp_fg_attempted",
                "opp_three_made",
                "def_rebounds",
                "steals",
                "blocks",
            ),
        },
        team_defense_game_summary,
    ),
    RefProcessor(
        "team_offense_game_summary",
        3,
        "team",
        "team",
        _t(
            TOGS,
            "team",
            (
                "status",
                "points",
                "assists",
                "fg_made",
                "fg_attempted",
                "three_made",
                "turnovers",
                "three_fga",
                "possessions",
                "pace",
            ),
            ("game_id",),
        ),
        {
            SCOREBOARD: _fs("status", "periods"),
            TEAM_BOX: _fs("possessions"),
            PBP: _fs("three_fga"),
            GAMEBOOK: _fs(
                "points", "assists", "fg_made", "fg_attempted", "three_made", "turnovers"
            ),
            BDL: _fs("points", "assists", "fg_made", "fg_attempted", "three_made", "turnovers"),
        },
        team_offense_game_summary,
    ),
    RefProcessor(
        "upcoming_player_game_context",
        3,
        "player",
        "player",
        _t(
            UPGC,
            "player",
            (
                "opponent",
                "home",
                "start_time",
                "points_line",
                "over_price",
                "under_price",
                "team_spread",
                "game_total",
            ),
            ("team", "game_id"),
        ),
        {
            SCHEDULE: _fs("start_time"),
            PROPS: _fs("points_line", "over_price", "under_price"),
            LINES: _fs("spread_home", "total"),
        },
        upcoming_player_game_context,
    ),
    RefProcessor(
        "upcoming_team_game_context",
        3,
        "team",
        "team",
        _t(
            UTGC,
            "team",
            ("opponent", "home", "spread", "total", "players_out", "players_questionable"),
            ("game_id",),
        ),
        {SCHEDULE: _fs(), LINES: _fs("spread_home", "total"), INJURY: _fs("injury_status")},
        upcoming_team_game_context,
    ),
    RefProcessor(
        "team_defense_zone_analysis",
        4,
        "team",
        "team",
        _t(
            TDZA,
            "team",
            ("games", "avg_points_allowed", "opp_fg_pct", "avg_opp_three_made", "avg_steals"),
        ),
        {
            TDGS: _fs(
                "status",
                "points_allowed",
                "opp_fg_made",
                "opp_fg_attempted",
                "opp_three_made",
                "steals",
            )
        },
        team_defense_zone_analysis,
    ),
    RefProcessor(
        "player_shot_zone_analysis",
        4,
        "player",
        "player",
        _t(
            PSZA,
            "player",
            ("games_played", "avg_points", "avg_minutes", "paint_rate", "mid_rate", "three_rate"),
        ),
        {PGS: _fs("minutes", "points", "paint_fga", "mid_fga", "three_fga")},
        player_shot_zone_analysis,
    ),
    RefProcessor(
        "player_composite_factors",
        4,
        "player",
        "player",
        _t(
            PCF,
            "player",
            (
                "opponent",
                "points_line",
                "avg_points",
                "three_rate",
                "opp_points_allowed",
                "opp_fg_pct",
                "team_spread",
                "game_total",
                "matchup_factor",
            ),
        ),
        {
            UPGC: _fs("opponent", "points_line", "home"),
            UTGC: _fs("spread", "total"),
            PSZA: _fs("avg_points", "three_rate"),
            TDZA: _fs("avg_points_allowed", "opp_fg_pct"),
        },
        player_composite_factors,
    ),
    RefProcessor(
        "player_daily_cache",
        4,
        "player",
        "player",
        _t(
            PDC,
            "player",
            (
                "points_line",
                "injury_status",
                "minutes_today",
                "avg_points",
                "avg_minutes",
                "team_pace",
            ),
        ),
        {
            UPGC: _fs("points_line"),
            PGS: _fs("injury_status", "minutes"),
            PSZA: _fs("avg_points", "avg_minutes"),
            TOGS: _fs("pace"),
        },
        player_daily_cache,
    ),
    RefProcessor(
        "ml_feature_store",
        4,
        "player",
        "player",
        _t(
            MLFS,
            "player",
            (
                "points_line",
                "avg_points",
                "three_rate",
                "opp_points_allowed",
                "matchup_factor",
                "team_pace",
                "injury_status",
                "avg_minutes",
            ),
        ),
        {
            PCF: _fs("opponent", "points_line", "matchup_factor"),
            PSZA: _fs("avg_points", "three_rate"),
            TDZA: _fs("avg_points_allowed"),
            PDC: _fs("team_pace", "injury_status", "avg_minutes"),
        },
        ml_feature_store,
    ),
    RefProcessor(
        "league_rankings",
        4,
        "date",
        "player",
        _t(LEAGUE, "player", ("points", "minutes", "points_pct")),
        {PGS: _fs("points", "minutes")},
        league_rankings,
    ),
    RefProcessor(
        "prediction_coordinator",
        5,
        "player",
        "player",
        _t(PRED, "player", ("predicted_points", "points_line", "edge", "recommendation")),
        {
            MLFS: _fs(
                "points_line",
                "avg_points",
                "opp_points_allowed",
                "matchup_factor",
                "team_pace",
                "injury_status",
            )
        },
        prediction_coordinator,
    ),
    RefProcessor(
        "player_prediction_exporter",
        6,
        "player",
        "player",
        _t(PEXP, "player", ("predicted_points", "points_line", "recommendation")),
        {PRED: _fs("predicted_points", "points_line", "recommendation")},
        player_prediction_exporter,
    ),
    RefProcessor(
        "daily_predictions_exporter",
        6,
        "date",
        "player",
        _t(DEXP, "player", ("predicted_points", "recommendation", "edge", "edge_rank")),
        {PRED: _fs("predicted_points", "recommendation", "edge")},
        daily_predictions_exporter,
    ),
)

BY_NAME: Mapping[str, RefProcessor] = {p.name: p for p in PROCESSORS}
OUTPUT_SOURCES: tuple[str, ...] = tuple(p.publishes for p in PROCESSORS)
# Topological order (upstream first); ties by phase then declaration order.
ORDER: tuple[str, ...] = (
    "player_game_summary", "team_defense_game_summary", "team_offense_game_summary",
    "upcoming_player_game_context", "upcoming_team_game_context",
    "team_defense_zone_analysis", "player_shot_zone_analysis", "league_rankings",
    "player_composite_factors", "player_daily_cache", "ml_feature_store",
    "prediction_coordinator", "player_prediction_exporter", "daily_predictions_exporter",
)  # fmt: skip


def new_warehouse(rosters: Mapping[str, tuple[str, ...]]) -> Warehouse:
    return Warehouse((*RAW_TABLES, *(p.table for p in PROCESSORS)), rosters)


@dataclass(frozen=True)
class RunResult:
    processor: str
    day: date
    rows: int  # entity rows processed (the scope's rows before and after, united)
    changes: EntityChanges


def run(
    wh: Warehouse, proc: RefProcessor, day: date, ids: Ids, detector: ChangeDetector | None = None
) -> RunResult:
    """Run ``proc`` for ``day`` on the scope (``None`` = full date); replace only the scope's
    rows and report what changed (also to ``detector``, which builds the completion event)."""
    if proc.granularity == "date":
        ids = None
    before = wh.rows(proc.publishes, day, ids)
    after = proc.compute(wh, day, ids)
    changes = detector.observe(day, before, after) if detector else diff_rows(before, after)
    # Rewriting identical rows is a no-op: write only the rows that changed.
    wh.replace(
        proc.publishes,
        day,
        changes.entities,
        {e: after[e] for e in changes.entities if e in after},
    )
    return RunResult(proc.name, day, len(set(before) | set(after)), changes)


def build_all(wh: Warehouse, days: tuple[date, ...]) -> None:
    """Compute every processor for every date (the overnight state), upstream first."""
    for name in ORDER:
        proc = BY_NAME[name]
        for d in days:
            wh.replace(proc.publishes, d, None, proc.compute(wh, d, None))
