"""How relation CSV rows are read: dates written YYYY-MM-DD only, quotes strict, a space
after a comma skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from scoperouter.errors import ConfigError
from scoperouter.processor_registry.relations import read_relation_csv


@pytest.mark.parametrize("written", ["2025-W47", "2025-W47-3", "2025W473", "20251119"])
def test_relation_date_in_another_iso_format_is_reported_with_its_line(
    tmp_path: Path, written: str
) -> None:
    """A relation date not written YYYY-MM-DD (an ISO week, a basic date) is an error at its line."""
    p = tmp_path / "team_players.csv"
    p.write_text(f"date,from,to\n,LAL,lebronjames\n{written},BOS,jaysontatum\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        read_relation_csv(p)
    [issue] = err.value.issues
    assert (issue.file, issue.line) == (str(p), 3)


@pytest.mark.parametrize(
    ("bad_line", "lines"),
    [(1, 3), (3, 3), (1502, 1600)],  # the last: past the decoder's 8 KiB read-ahead
)
def test_a_byte_not_utf8_is_reported_at_its_line_and_column(
    tmp_path: Path, bad_line: int, lines: int
) -> None:
    """A byte that is not UTF-8 (a Latin-1 name, 0xff) is an error at its own line and
    column (a strict decoder failed on its whole read-ahead chunk: line 1, or ~70 early)."""
    p = tmp_path / "team_players.csv"
    rows = [b"date,from,to"] + [b"2025-11-19,LAL,player%d" % i for i in range(2, lines + 1)]
    rows[bad_line - 1] = b"2025-11-19,LAL,jos\xe9" if bad_line > 1 else b"date,fr\xffom,to"
    p.write_bytes(b"\n".join(rows) + b"\n")
    with pytest.raises(ConfigError) as err:
        read_relation_csv(p)
    [issue] = err.value.issues
    col = 19 if bad_line > 1 else 8
    assert (issue.file, issue.line, issue.column) == (str(p), bad_line, col)
    assert "not UTF-8" in issue.message


def test_a_utf8_file_with_a_bom_and_non_ascii_ids_reads(tmp_path: Path) -> None:
    """Non-ASCII ids in UTF-8 (after a spreadsheet's BOM) read as they are written."""
    p = tmp_path / "team_players.csv"
    p.write_bytes("\ufeffdate,from,to\n2025-11-19,LAL,josé\n,MÜN,ßtraße\n".encode())
    assert [(src, dst) for _d, src, dst in read_relation_csv(p)] == [
        ("LAL", "josé"),
        ("MÜN", "ßtraße"),
    ]


def test_unterminated_quote_does_not_swallow_the_rest_of_the_file(tmp_path: Path) -> None:
    """An unclosed quote in a relation CSV is an error, not one id holding every later row."""
    p = tmp_path / "team_players.csv"
    p.write_text(
        'date,from,to\n2025-11-19,LAL,"lebronjames\n'
        "2025-11-19,LAL,anthonydavis\n2025-11-19,BOS,jaysontatum\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        rows = read_relation_csv(p)
        pytest.fail(f"read as {rows!r}")  # LAL -> one garbage id; anthonydavis, BOS lost
    [issue] = err.value.issues
    assert issue.file == str(p)
    assert issue.line == 2


def test_relation_id_spanning_lines_is_reported_at_its_line(tmp_path: Path) -> None:
    """A quoted id holding a line break is an error at the row's first line, not an id."""
    p = tmp_path / "team_players.csv"
    p.write_text('date,from,to\n,LAL,lebronjames\n,"BOS\nX",jaysontatum\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        read_relation_csv(p)
    [issue] = err.value.issues
    assert (issue.file, issue.line) == (str(p), 3)


def test_quoted_id_after_a_space_is_read_without_its_quotes(tmp_path: Path) -> None:
    """A hand-written row '2025-11-19, "LAL", "lebronjames"' names LAL and lebronjames, not quoted ids."""
    p = tmp_path / "team_players.csv"
    p.write_text('date,from,to\n2025-11-19, "LAL", "lebronjames"\n', encoding="utf-8")
    try:
        rows = read_relation_csv(p)
    except ConfigError:
        return  # reported: fine too
    assert [(s, t) for _d, s, t in rows] == [("LAL", "lebronjames")]


@pytest.mark.parametrize(
    ("row", "field"),
    [
        (",\u200bLAL,anthonydavis", "from"),  # zero-width space pasted from a web page
        (",LAL,anthony\u00a0davis", "to"),  # no-break space
        (",LAL,anthony\x00davis", "to"),  # NUL: no PostgreSQL text column can keep it
        (",LAL,anthonydavis\ufeff", "to"),  # a BOM of a file concatenated into this one
        (",LA\x1fL,anthonydavis", "from"),
    ],
)
def test_relation_id_with_an_invisible_character_is_reported_at_its_line(
    tmp_path: Path, row: str, field: str
) -> None:
    """An id holding a character that is not printable is an error at its line, naming it:
    read as data, the row matches no event id (LAL would reach lebronjames only) or carries a
    junk id no processor row has."""
    p = tmp_path / "team_players.csv"
    p.write_text(f"date,from,to\n,LAL,lebronjames\n{row}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        rows = read_relation_csv(p)
        pytest.fail(f"read as {rows!r}")
    [issue] = err.value.issues
    assert (issue.file, issue.line) == (str(p), 3)
    assert f"'{field}'" in issue.message and "U+" in issue.message


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("date,from,to\n,LAL,lebronjames\n,LAL,anthonyd", 3),  # cut mid-id: a made-up id
        ("date,from,to\r\n,LAL,lebronjames\r\n,LAL,anthonyd", 3),  # the same, CRLF
        ("date,from,to\n,LAL,lebronjames", 2),  # cut right before the row's newline
        ("date,from,to", 1),  # cut right after the header
    ],
    ids=["mid_id", "mid_id_crlf", "before_newline", "header_only"],
)
def test_relation_file_not_ending_with_a_newline_is_refused(
    tmp_path: Path, text: str, line: int
) -> None:
    """A relation CSV whose last line has no newline (a file read while still being written)
    is an error at that line, never rows ending in a cut id."""
    p = tmp_path / "team_players.csv"
    p.write_text(text, encoding="utf-8", newline="")
    with pytest.raises(ConfigError) as err:
        rows = read_relation_csv(p)
        pytest.fail(f"read as {rows!r}")
    [issue] = err.value.issues
    assert (issue.file, issue.line) == (str(p), line)
    assert "newline" in issue.message


@pytest.mark.parametrize(
    ("newline", "tail"),
    [("\n", ""), ("\r\n", ""), ("\r", ""), ("\n", "\n\n"), ("\n", "   ")],
    ids=["lf", "crlf", "cr", "blank_lines", "blank_last_line"],
)
def test_relation_file_ending_with_a_newline_is_read(
    tmp_path: Path, newline: str, tail: str
) -> None:
    """Any line ending closes the last row (a blank last line needs none): the rows are read."""
    p = tmp_path / "team_players.csv"
    text = f"date,from,to{newline},LAL,lebronjames{newline}{tail}"
    p.write_text(text, encoding="utf-8", newline="")
    assert [(s, t) for _d, s, t in read_relation_csv(p)] == [("LAL", "lebronjames")]
