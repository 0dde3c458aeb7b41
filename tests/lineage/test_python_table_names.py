"""Table names a Python file gives an API call outside SQL (``client.list_rows(...)``):
plain strings and f-strings, against the shapes that only look like one."""

from __future__ import annotations

import pytest

from scoperouter.lineage.pynames import table_mentions


@pytest.mark.parametrize(
    ("expr", "mentions", "built"),
    [
        ('"nba_raw.x"', ["nba_raw.x"], []),
        ('"my-proj.nba_raw.x"', ["nba_raw.x"], []),
        ('f"my-proj.nba_raw.x"', ["nba_raw.x"], []),  # an f-string without a hole
        ('f"{project}.nba_raw.x"', ["nba_raw.x"], []),
        ('f"`{project}.nba_raw.x`"', ["nba_raw.x"], []),
        ('f"{project}.nba_raw.{name}"', [], ["{...}.nba_raw.{...}"]),
        ('f"{project}.nba_raw.players_{season}"', [], ["{...}.nba_raw.players_{...}"]),
        ('f"nba_raw.x{suffix}"', [], []),  # two parts with a hole: maybe a file name
        ('f"{name}.json"', [], []),
        ('f"{a}.{b}"', [], []),
        ('f"{a}.{b}.{c}"', [], []),  # no part written out
        ('f"{project}.{dataset}.x"', [], []),
        ('f"{v:>10}.nba_raw.x"', [], []),  # a format spec: not a name
        ('"SELECT a FROM nba_raw.x"', [], []),  # SQL: read as SQL, not mentioned
    ],
)
def test_table_names_outside_sql(expr: str, mentions: list[str], built: list[str]) -> None:
    """A string that is only a table name is a mention; an f-string too when only the project is a hole; a table part built at run time is listed as built; shapes that may be anything else are neither."""
    got = table_mentions(
        f"def f(client, project, name, season, suffix, a, b, c, v):\n    return {expr}\n"
    )
    assert ([t for _l, t in got[0]], [t for _l, t in got[1]]) == (mentions, built)
    assert all(line == 2 for line, _t in got[0] + got[1])


def test_a_docstring_naming_a_table_is_no_mention() -> None:
    """A docstring is never run: the table it names is no mention."""
    assert table_mentions('def f():\n    """Reads nba_raw.x."""\n    """nba_raw.y"""\n') == ([], [])
