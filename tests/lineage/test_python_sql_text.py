"""Which Python strings the SQL route reads, and with what text: a docstring is prose
however SQL-like its words, and an f-string hole naming a module-level string constant of
the same file is that constant's text. Production snippets cite najicham/nba-stats-scraper."""

from __future__ import annotations

from pathlib import Path

import pytest

from scoperouter.lineage.collect import file_reads
from scoperouter.lineage.reads import Reads


def _reads(tmp_path: Path, source: str) -> Reads:
    f = tmp_path / "m.py"
    f.write_text(source, encoding="utf-8")
    return file_reads(f, tmp_path)


# player_shot_zone_analysis_processor.py:2-22 (module docstring, shortened)
MODULE_DOC = '''"""
Input: nba_analytics.player_game_summary (last 10 games per player)
Output: nba_precompute.player_shot_zone_analysis
Strategy: MERGE (update existing or insert new)
Updated: October 30, 2025 - Fixed save method and datetime deprecations
"""
'''

# upcoming_team_game_context_processor.py:1555-1571 (a method's docstring, shortened)
METHOD_DOC = '''
class P:
    """Select the rows from nba_raw.x we need, then update them set by set."""

    def save_analytics(self):
        """
        Save results to BigQuery using atomic MERGE pattern.

        This replaces the previous DELETE + INSERT pattern which was
        vulnerable to race conditions and streaming buffer issues.
        """
        return True
'''


@pytest.mark.parametrize(
    "source",
    [MODULE_DOC, METHOD_DOC, 'def f():\n    "MERGE (a) b"\n'],
    ids=["module", "class-and-method", "string-statement"],
)
def test_docstring_is_no_sql(tmp_path: Path, source: str) -> None:
    """A docstring (or any string statement) is never run: no read, no unresolved entry."""
    r = _reads(tmp_path, source)
    assert (r.tables, r.unresolved) == ({}, [])


def test_sql_beside_a_docstring_is_still_read(tmp_path: Path) -> None:
    """A function with a docstring still has its query read."""
    src = 'def f():\n    """Merge (the rows)."""\n    return "SELECT a FROM nba_raw.x"\n'
    r = _reads(tmp_path, src)
    assert (r.tables, r.unresolved) == ({"nba_raw.x": {"a"}}, [])


# predictions/coordinator/signal_calculator.py:23-24, :172-179
SIGNALS = '''
PROJECT_ID = 'nba-props-platform'
SIGNALS_TABLE = f'{PROJECT_ID}.nba_predictions.daily_prediction_signals'


def summary(game_date):
    return f"""
    SELECT system_id, daily_signal
    FROM `{SIGNALS_TABLE}`
    WHERE game_date = @game_date
    """
'''


@pytest.mark.parametrize(
    ("source", "table", "columns"),
    [
        (SIGNALS, "nba_predictions.daily_prediction_signals", {"system_id", "daily_signal"}),
        # a bare constant and an annotated one, joined with +
        (
            'DS = "nba_raw"\nT: str = "x"\n'
            'def f(p):\n    return "SELECT a FROM " + DS + "." + T + f" WHERE b = {p}"\n',
            "nba_raw.x",
            {"a", "b"},
        ),
    ],
    ids=["f-string-of-constants", "plus-chain"],
)
def test_hole_naming_a_module_constant_is_its_text(
    tmp_path: Path, source: str, table: str, columns: set[str]
) -> None:
    """A table named through a module-level string constant of the file is read."""
    r = _reads(tmp_path, source)
    assert columns <= r.tables.get(table, set()), (r.tables, r.unresolved)
    assert not r.unresolved, r.unresolved


@pytest.mark.parametrize(
    "source",
    [
        # a parameter of the same name shadows the constant
        'T = "nba_raw.x"\ndef f(T):\n    return f"SELECT a FROM {T}"\n',
        # rebound in a function (global) or at module level: not one value
        'T = "nba_raw.x"\ndef g():\n    global T\n    T = "nba_raw.y"\n'
        'def f():\n    return f"SELECT a FROM {T}"\n',
        'T = "nba_raw.x"\nif X:\n    T = "nba_raw.y"\ndef f():\n    return f"SELECT a FROM {T}"\n',
        # a value chosen at run time
        'T = "nba_raw.x" if X else "nba_raw.y"\ndef f():\n    return f"SELECT a FROM {T}"\n',
        # a constant of a class, or one formatted with a spec
        'class C:\n    T = "nba_raw.x"\n    def f(self):\n        return f"SELECT a FROM {T}"\n',
        'T = "nba_raw.x"\ndef f():\n    return f"SELECT a FROM {T!r}"\n',
        # bound again by an except clause
        'T = "nba_raw.x"\ntry:\n    pass\nexcept E as T:\n    pass\n'
        'def f():\n    return f"SELECT a FROM {T}"\n',
        # rebound by a star import, through globals(), or by setattr on the module
        'T = "nba_raw.x"\nfrom settings import *\ndef f():\n    return f"SELECT a FROM {T}"\n',
        'T = "nba_raw.x"\nglobals()["T"] = env("T")\ndef f():\n    return f"SELECT a FROM {T}"\n',
        'import sys\nT = "nba_raw.x"\nsetattr(sys.modules[__name__], "T", env("T"))\n'
        'def f():\n    return f"SELECT a FROM {T}"\n',
    ],
    ids=[
        "parameter",
        "global",
        "rebound",
        "conditional",
        "class-attribute",
        "conversion",
        "except-as",
        "star-import",
        "globals",
        "setattr-module",
    ],
)
def test_hole_naming_no_single_constant_stays_unresolved(tmp_path: Path, source: str) -> None:
    """A name that is not one module-level string constant is still a run-time name."""
    r = _reads(tmp_path, source)
    assert r.tables == {}, r.tables
    assert [u.what for u in r.unresolved] == ["table name built at run time"]


@pytest.mark.parametrize(
    "source",
    [
        'def f(client):\n    client.query("""SELECT a FROM nba_raw.x""")\n',
        'def f(client):\n    client.query("SELECT a " "FROM nba_raw.x").result()\n',
        'async def f(client):\n    await client.query("SELECT a FROM nba_raw.x")\n',
        'def f(client):\n    client.query(("SELECT a FROM " + "nba_raw.x"))\n',
    ],
    ids=["call", "chained-call", "await", "plus-argument"],
)
def test_query_run_by_an_expression_statement_is_read(tmp_path: Path, source: str) -> None:
    """Only a bare string statement is prose: a statement running a query still reads it."""
    r = _reads(tmp_path, source)
    assert (r.tables, r.unresolved) == ({"nba_raw.x": {"a"}}, [])


@pytest.mark.parametrize(
    "template",
    ["{ds}", "{0}", "{0.ds}", "{cfg[ds]}", "{}", "{0!s}", "{0:>4}"],
)
def test_every_format_field_keeps_the_rest_of_the_query(tmp_path: Path, template: str) -> None:
    """A str.format field of any form (positional {0} too) is a run-time name; the query's
    other tables are still read (a {0} left the query unparsed and nba_raw.y unread)."""
    source = (
        "def load(client, dataset):\n"
        f'    q = "SELECT x.a FROM {template}.t1 x JOIN nba_raw.y y ON x.k = y.k".format(dataset)\n'
        "    return client.query(q).result()\n"
    )
    r = _reads(tmp_path, source)
    assert "nba_raw.y" in r.tables
    assert any("run time" in u.what for u in r.unresolved)
