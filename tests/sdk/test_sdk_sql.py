"""SQL helpers: values only in parameters, identifiers validated, full date = date clause only."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import date

import pytest
from google.cloud import bigquery

from scoperouter.sdk import Scope, entity_filter, filter_sql, parse_trigger, qmark_filter
from scoperouter.sdk.bigquery import check_identifier

HOSTILE = [
    "x'); DROP TABLE t; --",
    "lebronjames' OR '1'='1",
    'a"; DELETE FROM t; --',
    "') OR 1=1 --",
    "\\'; SELECT 1",
    "`backtick`",
    "100%_like",
]


def entity_scope(ids: list[str], start: str = "2025-11-18", end: str = "2025-11-19") -> Scope:
    return parse_trigger(
        {
            "scope": "entities",
            "entity_type": "player",
            "entity_ids": ids,
            "start_date": start,
            "end_date": end,
        }
    )


def test_entity_filter_shape() -> None:
    """Entity scope: IN UNNEST(@entity_ids) + BETWEEN, with typed BigQuery parameters."""
    scope = entity_scope(["lebronjames", "stephencurry"])
    sql, params = entity_filter(scope, column="player_lookup")
    assert (
        sql
        == "WHERE player_lookup IN UNNEST(@entity_ids) AND game_date BETWEEN @start_date AND @end_date"
    )
    assert params == [
        bigquery.ArrayQueryParameter("entity_ids", "STRING", list(scope.entity_ids)),
        bigquery.ScalarQueryParameter("start_date", "DATE", scope.start_date),
        bigquery.ScalarQueryParameter("end_date", "DATE", scope.end_date),
    ]


def test_full_date_filter_has_only_the_date_clause() -> None:
    """Full date: only the date clause and the two DATE parameters."""
    scope = parse_trigger({"game_date": "2025-11-19"})
    sql, params = entity_filter(scope, column="team_abbr", date_column="game_date")
    assert sql == "WHERE game_date BETWEEN @start_date AND @end_date"
    assert [p.name for p in params] == ["start_date", "end_date"]
    assert all(p.value == date(2025, 11, 19) for p in params)


@pytest.mark.parametrize(("prefix", "keyword"), [("pgs_", "AND"), ("", "")])
def test_prefix_and_keyword(prefix: str, keyword: str) -> None:
    """param_prefix renames every parameter; keyword controls the leading word."""
    sql, params = entity_filter(
        entity_scope(["a"]), "t.player_lookup", param_prefix=prefix, keyword=keyword
    )
    assert sql.startswith(f"{keyword} t.player_lookup" if keyword else "t.player_lookup")
    assert {p.name for p in params} == {
        f"{prefix}entity_ids",
        f"{prefix}start_date",
        f"{prefix}end_date",
    }
    assert all(f"@{p.name}" in sql for p in params)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_ids_only_in_parameters(hostile: str) -> None:
    """Hostile ids never appear in the SQL text of either helper, only in parameters."""
    scope = entity_scope([hostile, "lebronjames"])
    bq_sql, bq_params = entity_filter(scope, column="player_lookup")
    q_sql, q_params = qmark_filter(scope, column="player_lookup")
    benign = entity_scope(["aaa", "bbb"])
    assert bq_sql == entity_filter(benign, column="player_lookup")[0]
    assert q_sql == qmark_filter(benign, column="player_lookup")[0]
    for sql in (bq_sql, q_sql):
        assert hostile not in sql
        assert "'" not in sql and ";" not in sql and "--" not in sql
    assert hostile in bq_params[0].values
    assert hostile in q_params


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_ids_are_inert_in_sqlite(hostile: str) -> None:
    """Executing the qmark filter with hostile ids selects exactly the matching rows and drops nothing."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (player_lookup TEXT, game_date TEXT)")
    rows = [(hostile, "2025-11-19"), ("lebronjames", "2025-11-19"), ("other", "2025-11-19")]
    db.executemany("INSERT INTO t VALUES (?, ?)", rows)
    sql, params = qmark_filter(entity_scope([hostile]), "player_lookup")
    got = db.execute(f"SELECT player_lookup FROM t {sql}", params).fetchall()
    assert got == [(hostile,)]
    assert db.execute("SELECT COUNT(*) FROM t").fetchone() == (len(rows),)


@pytest.mark.parametrize(
    "column",
    [
        "player_lookup; DROP TABLE t",
        "a b",
        "1col",
        "x'--",
        "",
        "a.b.c",
        "player_lookup)",
        "`x`",
        "player_lookup\n",
        "t.player_lookup\n",
        "\nplayer_lookup",
    ],
)
def test_column_names_are_validated(column: str) -> None:
    """Column and date-column names that are not plain identifiers are refused."""
    scope = entity_scope(["a"])
    for call in (
        lambda: entity_filter(scope, column),
        lambda: qmark_filter(scope, column),
        lambda: filter_sql(scope, "player_lookup", date_column=column),
    ):
        with pytest.raises(ValueError, match="invalid"):
            call()


def test_qmark_filter_selects_scope_rows() -> None:
    """The qmark filter restricts both entities and the date range."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (player_lookup TEXT, game_date TEXT)")
    db.executemany(
        "INSERT INTO t VALUES (?, ?)",
        [("a", "2025-11-17"), ("a", "2025-11-18"), ("b", "2025-11-19"), ("c", "2025-11-19")],
    )
    sql, params = qmark_filter(entity_scope(["a", "b"]), "player_lookup")
    got = db.execute(f"SELECT * FROM t {sql} ORDER BY 1, 2", params).fetchall()
    assert got == [("a", "2025-11-18"), ("b", "2025-11-19")]
    sql, params = qmark_filter(parse_trigger({"game_date": "2025-11-19"}), "player_lookup")
    assert db.execute(f"SELECT COUNT(*) FROM t {sql}", params).fetchone() == (2,)


@pytest.mark.parametrize("name", ["player_lookup\n", "t.col\n", "a\r", "x\t"])
def test_check_identifier_rejects_trailing_whitespace(name: str) -> None:
    """check_identifier refuses a name with a trailing newline or other whitespace."""
    with pytest.raises(ValueError, match="invalid"):
        check_identifier(name)


@pytest.mark.parametrize("prefix", ["pgs_\n", "a b", "1x"])
def test_param_prefix_is_validated(prefix: str) -> None:
    """A parameter prefix that is not a plain name (even with a trailing newline) is refused."""
    with pytest.raises(ValueError, match="prefix"):
        filter_sql(entity_scope(["a"]), "player_lookup", param_prefix=prefix)


HELPERS: dict[str, Callable[[Scope], object]] = {
    "filter_sql": lambda s: filter_sql(s, "player_lookup"),
    "entity_filter": lambda s: entity_filter(s, "player_lookup"),
    "qmark_filter": lambda s: qmark_filter(s, "player_lookup"),
}


@pytest.mark.parametrize("helper", sorted(HELPERS))
def test_sql_helpers_refuse_an_entity_scope_without_ids(helper: str) -> None:
    """An entity scope whose ids were emptied behind validation never yields 'IN ()' SQL."""
    hollow = entity_scope(["a"]).model_copy(update={"entity_ids": ()})
    with pytest.raises(ValueError, match="no entity ids"):
        HELPERS[helper](hollow)


@pytest.mark.parametrize("helper", ["entity_filter", "filter_sql", "qmark_filter"])
def test_sql_helpers_take_the_entity_column_explicitly(helper: str) -> None:
    """No helper defaults the entity column (no player_lookup): omitting it is a TypeError."""
    import inspect

    from scoperouter.sdk import bigquery

    fn = getattr(bigquery, helper)
    assert inspect.signature(fn).parameters["column"].default is inspect.Parameter.empty
    assert inspect.signature(bigquery.query_job_config).parameters["column"].default is (
        inspect.Parameter.empty
    )
