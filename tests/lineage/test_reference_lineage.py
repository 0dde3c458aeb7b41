"""Acceptance 1: the reference pipeline's SQL (examples/nba/sql) agrees with its Python and
with routes.yaml; removing any one input or any one used field from routes.yaml makes
``scoperouter lineage`` fail with the right finding."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
import sqlglot
from lineage_support import REPO, codes, lineage, registry, variant
from sqlglot import exp

from scoperouter.cli import main
from scoperouter.examples.nba.harness import GameDay, prepare
from scoperouter.examples.nba.processors import BY_NAME, PROCESSORS
from scoperouter.examples.nba.season import DEFAULT_GAME_DATE, generate_season, relation_rows
from scoperouter.examples.nba.warehouse import RowDict, Warehouse
from scoperouter.lineage.analyse import Analysis, schema_of
from scoperouter.lineage.diff import diff_all, identity_columns
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.relations import InMemoryRelations

REG = registry()
BASE = lineage(REG)


def _key_free(proc: str) -> dict[str, frozenset[str]]:
    """The SQL's reads of ``proc`` without identity columns (keys, the date)."""
    reads = BASE.reads[proc]
    return {t: frozenset(c - identity_columns(REG, t)) for t, c in reads.tables.items()}


def test_reference_pipeline_has_no_errors() -> None:
    """Every processor has SQL; lineage finds no error and resolves every read."""
    assert set(BASE.analysed) == set(REG.processors) and not BASE.skipped
    assert [f for f in BASE.findings if f.severity != "warning"] == []


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_sql_reads_what_the_python_declares(name: str) -> None:
    """The SQL form reads exactly the tables and columns the reference processor's ``reads`` lists."""
    assert _key_free(name) == dict(BY_NAME[name].reads)


# -------------------------------------------- what the Python code really touches
class _Row(dict[str, object]):
    """A row that records every column read from it."""

    def __init__(self, data: RowDict, seen: set[str]) -> None:
        super().__init__(data)
        self._seen = seen

    def __getitem__(self, key: str) -> object:
        self._seen.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self._seen.add(key)
        return super().get(key, default)


class _Recording(Warehouse):
    """The reference warehouse, recording (table -> columns) each access reads."""

    def __init__(self, wh: Warehouse) -> None:
        super().__init__(wh.defs.values(), wh.rosters, conn=wh.conn)
        self.touched: dict[str, set[str]] = {}

    def _seen(self, source: str) -> set[str]:
        return self.touched.setdefault(source, set())

    def rows(
        self, source: str, day: date, ids: Any = None, *, by: str | None = None
    ) -> dict[str, RowDict]:  # type: ignore[override]
        seen = self._seen(source)
        return {k: _Row(v, seen) for k, v in super().rows(source, day, ids, by=by).items()}

    def window_sums(self, source: str, ids: Any, upto: date, last: int, sums: tuple[str, ...],
                    where: str = "1 = 1", *, since: date | None = None) -> dict[str, tuple[float, ...]]:  # fmt: skip
        cond = sqlglot.parse_one(f"SELECT 1 WHERE {where}", read="sqlite")
        self._seen(source).update({*sums, *(c.name for c in cond.find_all(exp.Column))})
        return super().window_sums(source, ids, upto, last, sums, where, since=since)

    def keys_on(self, source: str, day: date) -> list[str]:
        self._seen(source)
        return super().keys_on(source, day)


@pytest.fixture(scope="module")
def game_day() -> GameDay:
    season = generate_season(
        3, DEFAULT_GAME_DATE, season_start=DEFAULT_GAME_DATE - timedelta(days=8)
    )
    inverses = {n: r.base for n, r in REG.relations.items() if r.inverse}
    types = {n: (r.from_type, r.to_type) for n, r in REG.relations.items()}
    return prepare(
        season, REG, InMemoryRelations(relation_rows(season), inverses=inverses, types=types)
    )


def _touched(gd: GameDay) -> Iterator[tuple[str, dict[str, set[str]]]]:
    # a copy of the overnight warehouse where one player of yesterday has no gamebook row,
    # so the balldontlie fallback runs too
    conn = sqlite3.connect(":memory:")
    gd.overnight.conn.commit()  # close its implicit transaction, or backup waits forever
    gd.overnight.conn.backup(conn)
    gb = gd.overnight.defs["nba_raw.nbac_gamebook_player_stats"].table
    yesterday = (gd.game_date - timedelta(days=1)).isoformat()
    conn.execute(
        f'DELETE FROM "{gb}" WHERE game_date = ? AND player = '
        f'(SELECT MIN(player) FROM "{gb}" WHERE game_date = ?)',
        (yesterday, yesterday),
    )
    wh = Warehouse(gd.overnight.defs.values(), gd.overnight.rosters, conn=conn)
    for proc in PROCESSORS:
        rec = _Recording(wh)
        for day in (gd.game_date - timedelta(days=1), gd.game_date):  # played, and upcoming
            proc.compute(rec, day, None)
        yield proc.name, rec.touched


def test_python_touches_what_the_sql_reads(game_day: GameDay) -> None:
    """Run every reference processor on a recording warehouse: the tables and (non-key)
    columns its Python touches are exactly those its SQL form reads."""
    for name, touched in _touched(game_day):
        got = {t: frozenset(c - identity_columns(REG, t)) for t, c in touched.items()}
        assert got == _key_free(name), name


# -------------------------------------------- acceptance 1: every input, every field
def rediff(reg: CompiledRegistry) -> Analysis:
    """Lineage of a registry variant over the reference SQL's reads (parsed once: the reads
    depend on the code, not on the registry, which declares no columns here)."""
    assert not schema_of(reg)
    findings = tuple(diff_all(reg, BASE.reads))
    return Analysis(findings, BASE.reads, BASE.analysed, BASE.skipped)


def _drop_input(data: dict[str, Any], proc: str, source: str) -> None:
    kept = [i for i in data["processors"][proc]["inputs"] if i["source"] != source]
    # a processor needs an input: the only one gives way to a table nobody reads
    data["processors"][proc]["inputs"] = kept or [{"source": "nba_raw.bdl_standings"}]


def _drop_field(data: dict[str, Any], proc: str, source: str, col: str) -> None:
    for i in data["processors"][proc]["inputs"]:
        if i["source"] == source:
            i["fields"] = [c for c in i["fields"] if c != col]
            if not i["fields"]:  # an empty list is still a list: nothing relevant
                i["fields"] = ["__nothing__"]


INPUTS = sorted((p.name, s) for p in PROCESSORS for s in p.reads)
FIELDS = sorted(
    (p.name, s, c)
    for p in PROCESSORS
    for s, cols in p.reads.items()
    if REG.processors[p.name].inputs[s].fields is not None
    for c in cols
)


@pytest.mark.parametrize(("proc", "source"), INPUTS, ids=[f"{p}<-{s}" for p, s in INPUTS])
def test_removing_an_input_is_a_missing_input(proc: str, source: str) -> None:
    """Removing one input a processor reads: lineage reports missing_input for exactly it."""
    a = rediff(variant(lambda d: _drop_input(d, proc, source)))
    assert codes(a, "missing_input") == {(proc, source, None)}
    assert a.errors == 1


@pytest.mark.parametrize(
    ("proc", "source", "col"), FIELDS, ids=[f"{p}<-{s}.{c}" for p, s, c in FIELDS]
)
def test_removing_a_used_field_is_field_not_listed(proc: str, source: str, col: str) -> None:
    """Removing one field a processor uses from its input's fields: field_not_listed for exactly it."""
    a = rediff(variant(lambda d: _drop_field(d, proc, source, col)))
    assert codes(a, "field_not_listed") == {(proc, source, col)}
    assert a.errors == 1


IGNORED = sorted(
    (p.name, s, c)
    for p in PROCESSORS
    for s, cols in p.reads.items()
    if REG.processors[p.name].inputs[s].ignore_fields is not None
    for c in cols
)


@pytest.mark.parametrize(
    ("proc", "source", "col"), IGNORED, ids=[f"{p}<-{s}.{c}" for p, s, c in IGNORED]
)
def test_ignoring_a_used_field_is_field_not_listed(proc: str, source: str, col: str) -> None:
    """Adding a used column to an input's ignore_fields: field_not_listed for exactly it."""

    def ignore(d: dict[str, Any]) -> None:
        for i in d["processors"][proc]["inputs"]:
            if i["source"] == source:
                i["ignore_fields"] = [*i["ignore_fields"], col]

    a = rediff(variant(ignore))
    assert codes(a, "field_not_listed") == {(proc, source, col)}


def test_cli_exit_codes_and_json(
    tmp_path: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`scoperouter lineage` exits 0 on the repository's registry and 1 with --json errors on a broken copy."""
    monkeypatch.chdir(REPO)
    assert main(["lineage", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["errors"] == 0 and len(out["processors"]) == 14
    broken = (
        (REPO / "routes.yaml")
        .read_text(encoding="utf-8")
        .replace(
            "      - source: nba_analytics.team_offense_game_summary  # usage rate",
            "      - source: nba_raw.bdl_standings  # usage rate",
        )
    )
    cfg = tmp_path / "routes.yaml"
    cfg.write_text(broken, encoding="utf-8")
    assert main(["lineage", "--config", str(cfg), "--root", str(REPO), "--format", "github"]) == 1
    gh = capsys.readouterr().out
    assert "::error file=src/scoperouter/examples/nba/sql/player_game_summary.sql,line=" in gh
    assert (
        "title=lineage missing_input::player_game_summary reads nba_analytics.team_offense_game_summary"
        in gh
    )


def test_cli_code_option_and_unknown_processor(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--code NAME=GLOB adds code (a wrong file fails with missing inputs); an unknown name is a usage error."""
    monkeypatch.chdir(REPO)
    sql = "src/scoperouter/examples/nba/sql/team_offense_game_summary.sql"
    assert (
        main(["lineage", "--processor", "league_rankings", "--code", f"league_rankings={sql}"]) == 1
    )
    assert (
        "league_rankings reads nba_raw.nbac_scoreboard_v2, which is not one of its inputs"
        in capsys.readouterr().out
    )
    assert main(["lineage", "--processor", "no_such_processor"]) == 2
    assert "unknown processor(s): no_such_processor" in capsys.readouterr().err


def test_packaged_copy_needs_root(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The packaged registry's globs are relative to a checkout: without --root every glob is
    unresolved (no unused_input guessed); with --root it is the repository's result."""
    monkeypatch.chdir(REPO)
    packaged = "src/scoperouter/examples/nba/routes.yaml"
    assert main(["lineage", "--config", packaged, "--json"]) == 0
    blind = json.loads(capsys.readouterr().out)
    assert (blind["errors"], blind["warnings"], blind["unresolved"]) == (0, 0, 14)
    assert main(["lineage", "--config", packaged, "--root", ".", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["warnings"] == len(BASE.findings)
