"""The embedded warehouse: one SQLite database (in memory) standing in for BigQuery.

Every table is keyed by ``(game_date, <key column>)``: one row per entity per date. The
key column is the entity id for entity tables (``player``/``team``) and the game id for
game tables. Source names map to table names by replacing ``.`` with ``__``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from itertools import groupby
from operator import itemgetter
from typing import Any

from scoperouter.examples.nba.season import Season

RowDict = dict[str, object]


@dataclass(frozen=True)
class TableDef:
    source: str
    key: str  # key column besides game_date
    columns: tuple[str, ...]  # value columns (the change-detected fields)
    structural: tuple[str, ...] = ()  # columns that identify, never change (game_id, team...)

    @property
    def table(self) -> str:
        return self.source.replace(".", "__")

    @property
    def all_columns(self) -> tuple[str, ...]:
        return (*self.structural, *self.columns)

    @property
    def select_list(self) -> str:
        return ", ".join(f'"{c}"' for c in self.all_columns)


_BOX = ("minutes", "points", "rebounds", "assists", "steals", "blocks", "turnovers",
        "fg_made", "fg_attempted", "three_made")  # fmt: skip

RAW_TABLES: tuple[TableDef, ...] = (
    TableDef("nba_raw.nbac_gamebook_player_stats", "player", (*_BOX, "plus_minus", "dnp_reason"), ("game_id", "team")),
    TableDef("nba_raw.bdl_player_boxscores", "player", _BOX, ("game_id", "team")),
    TableDef("nba_raw.nbac_play_by_play", "player", ("paint_fga", "mid_fga", "three_fga"), ("game_id", "team")),
    TableDef("nba_raw.odds_api_player_points_props", "player", ("points_line", "over_price", "under_price"), ("game_id",)),
    TableDef("nba_raw.odds_api_game_lines", "game_id", ("spread_home", "total", "moneyline_home", "moneyline_away")),
    TableDef("nba_raw.nbac_schedule", "game_id", ("start_time", "broadcast", "arena"), ("home", "away")),
    TableDef("nba_raw.nbac_injury_report", "player", ("injury_status", "injury_reason"), ("team",)),
    TableDef("nba_raw.nbac_team_boxscore", "team", ("possessions", "def_rebounds", "steals", "blocks", "opp_points", "opp_fg_made", "opp_fg_attempted", "opp_three_made"), ("game_id",)),
    TableDef("nba_raw.nbac_scoreboard_v2", "game_id", ("status", "periods", "broadcast", "arena"), ("home", "away")),
)  # fmt: skip


class Warehouse:
    """Tables keyed by (game_date, key). Not thread-safe."""

    def __init__(
        self,
        tables: Iterable[TableDef],
        rosters: Mapping[str, tuple[str, ...]],
        conn: sqlite3.Connection | None = None,
    ) -> None:
        self.defs: dict[str, TableDef] = {t.source: t for t in tables}
        self.rosters: dict[str, tuple[str, ...]] = {t: tuple(ps) for t, ps in rosters.items()}
        self.player_team: dict[str, str] = {p: t for t, ps in self.rosters.items() for p in ps}
        fresh = conn is None
        self.conn = conn if conn is not None else sqlite3.connect(":memory:")
        if fresh:
            for t in self.defs.values():
                cols = ", ".join(f'"{c}"' for c in t.all_columns)
                self.conn.execute(
                    f'CREATE TABLE "{t.table}" (game_date TEXT NOT NULL, "{t.key}" TEXT NOT NULL, '
                    f'{cols}, PRIMARY KEY (game_date, "{t.key}"))'
                )
                self.conn.execute(
                    f'CREATE INDEX "{t.table}__by_key" ON "{t.table}" ("{t.key}", game_date)'
                )

    # ------------------------------------------------------------------ lifecycle
    def copy(self) -> Warehouse:
        """An independent copy (SQLite online backup)."""
        self.conn.commit()
        dst = sqlite3.connect(":memory:")
        self.conn.backup(dst)
        return Warehouse(self.defs.values(), self.rosters, conn=dst)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled with its rows (the database's image, ``sqlite3.Connection.serialize``):
        a warehouse handed to another process reads and writes as this one."""
        self.conn.commit()
        return (_restore, (tuple(self.defs.values()), self.rosters, self.conn.serialize()))

    def close(self) -> None:
        self.conn.close()

    def load_season(self, season: Season) -> None:
        for source, rows in season.raw.items():
            self.insert(source, rows)

    # ------------------------------------------------------------------ reads
    def rows(
        self,
        source: str,
        day: date,
        ids: Iterable[str] | None = None,
        *,
        by: str | None = None,
    ) -> dict[str, RowDict]:
        """Rows of ``source`` on ``day`` keyed by the key column; ``ids`` filters the
        column ``by`` (default: the key column)."""
        t = self.defs[source]
        names = t.all_columns
        # the key goes last: zip() stops at the shortest, so it stays out of the row dict
        sql = f'SELECT {t.select_list}, "{t.key}" FROM "{t.table}" WHERE game_date = ?'
        params: list[object] = [day.isoformat()]
        if ids is not None:
            idl = sorted(set(ids))
            if not idl:
                return {}
            sql += f' AND "{by or t.key}" IN ({",".join("?" * len(idl))})'
            params.extend(idl)
        return {rec[-1]: dict(zip(names, rec)) for rec in self.conn.execute(sql, params)}  # noqa: B905

    def history(
        self, source: str, ids: Iterable[str], upto: date, last: int
    ) -> dict[str, list[RowDict]]:
        """For each id, its ``last`` rows dated on or before ``upto`` (oldest first)."""
        t = self.defs[source]
        idl = sorted(set(ids))
        if not idl:
            return {}
        cols = ("game_date", t.key, *t.all_columns)
        qcols = ", ".join(f'"{c}"' for c in cols)
        sql = (
            f"SELECT {qcols} FROM (SELECT {qcols}, ROW_NUMBER() OVER "
            f'(PARTITION BY "{t.key}" ORDER BY game_date DESC) AS rn FROM "{t.table}" '
            f'WHERE game_date <= ? AND "{t.key}" IN ({",".join("?" * len(idl))})) '
            f'WHERE rn <= ? ORDER BY "{t.key}", game_date'
        )
        out: dict[str, list[RowDict]] = {}
        for rec in self.conn.execute(sql, [upto.isoformat(), *idl, last]):
            out.setdefault(str(rec[1]), []).append(dict(zip(cols, rec, strict=True)))
        return out

    def window_sums(
        self,
        source: str,
        ids: Iterable[str] | None,
        upto: date,
        last: int,
        sums: tuple[str, ...],
        where: str = "1 = 1",
        *,
        since: date | None = None,
    ) -> dict[str, tuple[float, ...]]:
        """Per key over its ``last`` rows dated ``since`` (default: any) to ``upto``: the
        number of rows matching ``where`` (an SQL condition on the table's columns) and the
        sums of ``sums`` over those rows (integers stay integers). Keys without rows are
        absent. ``last=0`` means every row of the range."""
        t = self.defs[source]
        cond, params = "game_date <= ?", [upto.isoformat()]
        if since is not None:
            cond += " AND game_date >= ?"
            params.append(since.isoformat())
        if ids is not None:
            idl = sorted(set(ids))
            if not idl:
                return {}
            cond += f' AND "{t.key}" IN ({",".join("?" * len(idl))})'
            params.extend(idl)
        if last <= 0:  # the whole range: SQLite aggregates
            agg = "".join(f', COALESCE(SUM(CASE WHEN {where} THEN "{c}" END), 0)' for c in sums)
            grouped = (
                f'SELECT "{t.key}", SUM(CASE WHEN {where} THEN 1 ELSE 0 END){agg} '
                f'FROM "{t.table}" WHERE {cond} GROUP BY "{t.key}"'
            )
            return {str(r[0]): tuple(r[1:]) for r in self.conn.execute(grouped, params)}
        cols = "".join(f', "{c}"' for c in sums)
        # the last N rows per key: a plain indexed range read aggregated here is several
        # times faster than SQLite's ROW_NUMBER() window over the same rows; read in the
        # (key, game_date) index's own order -- descending dates sorted each key's rows in a
        # temporary B-tree first -- and the last N taken here, newest first as before (the
        # float sums' order, and so their last bits, unchanged: docs/ledger.md's transcript)
        sql = (
            f'SELECT "{t.key}", ({where}){cols} FROM "{t.table}" WHERE {cond} '
            f'ORDER BY "{t.key}", game_date'
        )
        out: dict[str, tuple[float, ...]] = {}
        width = range(2, 2 + len(sums))
        for key, grp in groupby(self.conn.execute(sql, params), key=itemgetter(0)):
            sel = [rec for rec in reversed(list(grp)[-last:]) if rec[1]]
            out[str(key)] = (
                len(sel),
                *(sum(rec[j] for rec in sel if rec[j] is not None) for j in width),
            )
        return out

    def keys_on(self, source: str, day: date) -> list[str]:
        t = self.defs[source]
        return [
            str(r[0])
            for r in self.conn.execute(
                f'SELECT "{t.key}" FROM "{t.table}" WHERE game_date = ? ORDER BY 1',
                (day.isoformat(),),
            )
        ]

    # ------------------------------------------------------------------ writes
    def insert(self, source: str, rows: Iterable[Mapping[str, object]]) -> None:
        t = self.defs[source]
        cols = ("game_date", t.key, *t.all_columns)
        sql = (
            f'INSERT OR REPLACE INTO "{t.table}" ({", ".join(f"{chr(34)}{c}{chr(34)}" for c in cols)}) '
            f"VALUES ({','.join('?' * len(cols))})"
        )
        data = []
        for r in rows:
            d = r["game_date"]
            data.append(
                (d.isoformat() if isinstance(d, date) else d, *(r.get(c) for c in cols[1:]))
            )
        self.conn.executemany(sql, data)

    def replace(
        self,
        source: str,
        day: date,
        ids: Iterable[str] | None,
        rows: Mapping[str, Mapping[str, object]],
    ) -> None:
        """Delete the scope's rows on ``day`` (all of them when ``ids`` is None) and insert ``rows``."""
        t = self.defs[source]
        if ids is None:
            self.conn.execute(f'DELETE FROM "{t.table}" WHERE game_date = ?', (day.isoformat(),))
        else:
            idl = sorted(set(ids))
            if idl:
                self.conn.execute(
                    f'DELETE FROM "{t.table}" WHERE game_date = ? AND "{t.key}" IN ({",".join("?" * len(idl))})',
                    [day.isoformat(), *idl],
                )
        self.insert(source, ({"game_date": day, t.key: k, **v} for k, v in rows.items()))

    # ------------------------------------------------------------------ comparison
    def dump(
        self, sources: Iterable[str], *, since: date | None = None
    ) -> dict[str, dict[tuple[str, str], tuple[object, ...]]]:
        """Every row of ``sources`` (on or after ``since``): source -> (game_date, key) -> values."""
        out: dict[str, dict[tuple[str, str], tuple[object, ...]]] = {}
        where = "" if since is None else " WHERE game_date >= ?"
        params = () if since is None else (since.isoformat(),)
        for s in sources:
            t = self.defs[s]
            cols = ("game_date", t.key, *t.all_columns)
            q = f'SELECT {", ".join(f"{chr(34)}{c}{chr(34)}" for c in cols)} FROM "{t.table}"'
            rows = self.conn.execute(q + where, params)
            out[s] = {(str(r[0]), str(r[1])): tuple(r[2:]) for r in rows}
        return out


def diff_dumps(
    a: Mapping[str, Mapping[tuple[str, str], tuple[object, ...]]],
    b: Mapping[str, Mapping[tuple[str, str], tuple[object, ...]]],
) -> dict[str, list[tuple[str, str]]]:
    """Keys whose rows differ (or exist on one side only), per table; empty tables omitted."""
    out: dict[str, list[tuple[str, str]]] = {}
    for s in sorted(set(a) | set(b)):
        ra, rb = a.get(s, {}), b.get(s, {})
        bad = sorted(k for k in set(ra) | set(rb) if ra.get(k) != rb.get(k))
        if bad:
            out[s] = bad
    return out


def _restore(
    tables: tuple[TableDef, ...], rosters: Mapping[str, tuple[str, ...]], image: bytes
) -> Warehouse:
    """A pickled :class:`Warehouse` (``__reduce__``): its database from its image."""
    conn = sqlite3.connect(":memory:")
    conn.deserialize(image)
    return Warehouse(tables, rosters, conn=conn)
