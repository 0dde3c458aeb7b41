"""SQL in Python sources the route used to miss in silence: queries concatenated with ``+``
or grown with ``+=``, ``UPDATE ... FROM`` statements, columns named by a template hole, and
fragments joined at run time. Production snippets cite najicham/nba-stats-scraper."""

from __future__ import annotations

from pathlib import Path

import pytest

from scoperouter.lineage.collect import file_reads
from scoperouter.lineage.reads import Reads


def _reads(tmp_path: Path, source: str) -> Reads:
    f = tmp_path / "m.py"
    f.write_text(source, encoding="utf-8")
    return file_reads(f, tmp_path)


# gamebook_registry_processor.py:60-97 (shortened: the filters appended with +=)
GAMEBOOK = '''
def build(self, season_filter, team_filter):
    query = """
    SELECT player_name, player_lookup
    FROM `{project}.nba_raw.nbac_gamebook_player_stats`
    WHERE player_name IS NOT NULL
    """.format(project=self.project_id)

    if season_filter:
        query += " AND season_year = @season_year"

    if team_filter:
        query += " AND team_abbr = @team_abbr"
    return query
'''

# mlb_prediction_grading_processor.py:828-840
UPDATE_FROM = '''
def grade(self, game_date):
    query = f"""
    UPDATE `{self.project_id}.mlb_raw.bp_pitcher_props` bp
    SET bp.actual_value = pgs.strikeouts,
        bp.is_scored = TRUE,
        bp.is_push = (CAST(pgs.strikeouts AS FLOAT64) = bp.over_line)
    FROM `{self.project_id}.mlb_analytics.pitcher_game_summary` pgs
    WHERE bp.player_lookup = REPLACE(pgs.player_lookup, '_', '')
      AND bp.game_date = pgs.game_date
      AND bp.market_id = 285
      AND bp.is_scored = FALSE
      AND pgs.strikeouts IS NOT NULL
      AND bp.game_date = '{game_date}'
    """
    return query
'''


@pytest.mark.parametrize(
    ("source", "table", "columns"),
    [
        ('q = "SELECT a, b " + "FROM nba_raw.x"\n', "nba_raw.x", {"a", "b"}),
        (
            'def f(p, w):\n    q = ("SELECT a, b "\n         + f"FROM `{p}.nba_raw.x` "\n'
            '         + "WHERE c = 1")\n',
            "nba_raw.x",
            {"a", "b", "c"},
        ),
        (GAMEBOOK, "nba_raw.nbac_gamebook_player_stats", {"season_year", "team_abbr"}),
        (UPDATE_FROM, "mlb_analytics.pitcher_game_summary", {"strikeouts", "player_lookup"}),
    ],
)
def test_python_sql_read_is_found(
    tmp_path: Path, source: str, table: str, columns: set[str]
) -> None:
    """The columns the assembled query reads are reads of the table."""
    r = _reads(tmp_path, source)
    assert columns <= r.tables.get(table, set()), (r.tables, r.unresolved)


def test_appended_filter_points_at_its_line(tmp_path: Path) -> None:
    """A column of a ``+=`` filter is located on the line that appends it."""
    r = _reads(tmp_path, GAMEBOOK)
    at = r.column_origin[("nba_raw.nbac_gamebook_player_stats", "team_abbr")]
    assert at.line == 1 + GAMEBOOK.splitlines().index(
        '        query += " AND team_abbr = @team_abbr"'
    )


@pytest.mark.parametrize(
    ("source", "what"),
    [
        # columns chosen at run time: the table's columns are unknown, not "none"
        ('def f(p, cols):\n    return f"SELECT {cols} FROM `{p}.nba_raw.x`"\n', "column"),
        ('def f(p, c):\n    return f"SELECT a, {c} FROM `{p}.nba_raw.x` GROUP BY 1"\n', "column"),
        # fragments joined at run time
        (
            'PARTS = ["SELECT a", "FROM `p.nba_raw.x`", "WHERE b = 1"]\nQ = "\\n".join(PARTS)\n',
            "fragment",
        ),
    ],
)
def test_run_time_sql_is_unresolved(tmp_path: Path, source: str, what: str) -> None:
    """SQL whose reads are settled at run time is listed unresolved, never read as nothing."""
    r = _reads(tmp_path, source)
    assert any(what in u.what for u in r.unresolved), (r.tables, r.unresolved)


@pytest.mark.parametrize(
    "source",
    [
        # value holes in filters are values, not columns
        "def f(p, d, s, n):\n    return f\"SELECT a FROM `{p}.nba_raw.x` WHERE game_date = '{d}' "
        'AND season = {s} AND b IN ({n}) LIMIT {n}"\n',
        'log = "reading rows from nba_raw.x failed"\n',
    ],
)
def test_no_unresolved_for_values_and_prose(tmp_path: Path, source: str) -> None:
    """Value holes and prose mentioning a table give no unresolved entry."""
    r = _reads(tmp_path, source)
    assert not r.unresolved, r.unresolved


def test_append_that_breaks_the_query_keeps_the_query(tmp_path: Path) -> None:
    """When the ``+=`` pieces make the query unparsable, the query alone is read and the
    append is listed unresolved at its line."""
    src = 'def f():\n    q = "SELECT a FROM nba_raw.x WHERE b = 1"\n    q += " GROUP BY GROUP BY"\n'
    r = _reads(tmp_path, src)
    assert r.tables == {"nba_raw.x": {"a", "b"}}
    assert [u.what for u in r.unresolved] == [
        "SQL appended with += (line 3) does not parse with the query: read without it"
    ]


def test_separate_functions_do_not_share_appends(tmp_path: Path) -> None:
    """A ``+=`` grows the query assigned in its own function only."""
    src = (
        'def f():\n    q = "SELECT a FROM nba_raw.x"\n    return q\n\n'
        'def g():\n    q = "SELECT b FROM nba_raw.y"\n    q += " WHERE c = 1"\n    return q\n'
    )
    r = _reads(tmp_path, src)
    assert r.tables == {"nba_raw.x": {"a"}, "nba_raw.y": {"b", "c"}} and not r.unresolved


# queries/shared_ctes.py:28-59, 62-78, 236-260 (excerpts: helpers returning CTE fragments
# that the loaders join into one WITH; a CTE names CTEs of other helpers)
SHARED_CTES = '''
def games_today_cte(project_id, with_prefix=True):
    prefix = "WITH " if with_prefix else ""
    return f"""{prefix}games_today AS (
            SELECT
                CONCAT(FORMAT_DATE('%Y%m%d', game_date), '_', away_team_tricode) as game_id,
                game_date,
                home_team_tricode as home_team_abbr
            FROM `{project_id}.nba_raw.v_nbac_schedule_latest`
            WHERE game_date = @game_date
        )"""


def teams_playing_cte():
    return """teams_playing AS (
            SELECT DISTINCT home_team_abbr as team_abbr FROM games_today
        )"""


def players_cte(project_id):
    return f"""players_with_games AS (
            SELECT g.player_lookup, g.player_status
            FROM `{project_id}.nba_raw.nbac_gamebook_player_stats` g
            JOIN games_today s ON g.game_id = s.game_id
        ),"""
'''


def test_cte_fragments_of_helper_modules_are_read(tmp_path: Path) -> None:
    """A helper returning ``name AS (SELECT ...)`` is read as a CTE; the CTEs it names from
    other helpers of the file are no tables."""
    r = _reads(tmp_path, SHARED_CTES)
    assert r.tables == {
        "nba_raw.v_nbac_schedule_latest": {"game_date", "away_team_tricode", "home_team_tricode"},
        "nba_raw.nbac_gamebook_player_stats": {"player_lookup", "player_status", "game_id"},
    }, r.tables
    assert not r.unresolved, r.unresolved


def test_cte_fragment_selecting_star_is_unresolved(tmp_path: Path) -> None:
    """A CTE fragment's output goes to a query the file does not hold: its star is unknown."""
    r = _reads(tmp_path, 'def f():\n    return """raw AS (SELECT * FROM nba_raw.x)"""\n')
    assert any("SELECT * from nba_raw.x" in u.what for u in r.unresolved), r.unresolved


# queries/shared_ctes.py:296-322 (excerpt): the final SELECT a loader appends to the WITH it
# assembles from the helpers' CTE fragments; its FROM names those CTEs, bare
FINAL_SELECT = '''
def players_cte(project_id):
    return f"""players_with_games AS (
            SELECT g.player_lookup, g.team_abbr
            FROM `{project_id}.nba_raw.nbac_gamebook_player_stats` g
        )"""


def injuries_cte(project_id):
    return f"""injuries AS (
            SELECT player_lookup, injury_status
            FROM `{project_id}.nba_raw.nbac_injury_report`
        )"""


def final_select():
    return """SELECT
            p.player_lookup,
            p.team_abbr,
            i.injury_status
        FROM players_with_games p
        LEFT JOIN injuries i ON p.player_lookup = i.player_lookup
        WHERE i.injury_status IS NULL
        """
'''


def test_query_naming_the_files_cte_fragments_reads_no_table_of_their_names(
    tmp_path: Path,
) -> None:
    """A whole query whose bare FROM names the CTEs of the file's fragments reads the CTEs."""
    r = _reads(tmp_path, FINAL_SELECT)
    assert r.tables == {
        "nba_raw.nbac_gamebook_player_stats": {"player_lookup", "team_abbr"},
        "nba_raw.nbac_injury_report": {"player_lookup", "injury_status"},
    }, r.tables
    assert not r.unresolved, r.unresolved


def test_bare_table_named_by_no_fragment_is_still_a_table(tmp_path: Path) -> None:
    """Only the names the file's CTE fragments define are CTEs: another bare name is read."""
    src = FINAL_SELECT.replace("LEFT JOIN injuries i", "LEFT JOIN injury_table i")
    r = _reads(tmp_path, src)
    assert r.tables["injury_table"] == {"player_lookup", "injury_status"}, r.tables


# a query of the same file that cannot be the final SELECT appended to the fragments' WITH
# (a MERGE, a query with its own WITH) reads a bare name as a table (a default dataset,
# completeness_checker.py:336's QueryJobConfig(default_dataset=...)), as does a fragment's
# CTE reading the table it is named after (BigQuery: a non-recursive CTE cannot reference
# itself, so the name in its body is the table)
REFRESH_MERGE = '''
def refresh():
    return """MERGE nba_analytics.injury_latest t
        USING (SELECT player_lookup, injury_status FROM injuries) s
        ON t.player_lookup = s.player_lookup
        WHEN MATCHED THEN UPDATE SET injury_status = s.injury_status"""
'''
OWN_WITH = '''
def latest():
    return """WITH latest AS (SELECT player_lookup, injury_status FROM injuries)
        SELECT player_lookup FROM latest"""
'''
SELF_NAMED = '''
def injuries_cte():
    return """injuries AS (
            SELECT player_lookup, injury_status FROM injuries WHERE report_date = @d
        )"""
'''


@pytest.mark.parametrize(
    ("source", "columns"),
    [
        (FINAL_SELECT + REFRESH_MERGE, {"player_lookup", "injury_status"}),
        (FINAL_SELECT + OWN_WITH, {"player_lookup", "injury_status"}),
        (SELF_NAMED, {"player_lookup", "injury_status", "report_date"}),
    ],
    ids=["merge", "own-with", "self-named-fragment"],
)
def test_bare_table_named_like_a_fragment_cte_is_read_where_it_cannot_be_the_cte(
    tmp_path: Path, source: str, columns: set[str]
) -> None:
    """A bare name in a query that cannot follow the fragments' WITH is the table."""
    r = _reads(tmp_path, source)
    assert r.tables.get("injuries") == columns, r.tables
