"""A relation file with dated rows and undated ones: ``relation_mixed_dates`` warns at its
first undated row. Its undated rows hold on every date, but a date before the first dated row or
after the last is still unknown (not loaded yet), so the undated rows never stand in for a missing date
(``validate`` prints it, ``--strict`` fails on it, ``validate.ignore`` silences it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from warning_cases import WARNING_CASE_KEYS, warning_cases, write_one_relation

from scoperouter.cli import main
from scoperouter.processor_registry.loader import check_config

CASES = [
    # (name, CSV body, expected warning lines)
    ("dated_only", "2025-11-19,LAL,p1\n2025-11-20,LAL,p1\n", []),
    ("undated_only", ",LAL,p1\n,BOS,b1\n", []),
    ("undated_after_dated", "2025-11-19,LAL,p1\n,LAL,newguy\n,BOS,b2\n", [3]),
    ("undated_first", ",LAL,newguy\n2025-11-19,LAL,p1\n", [2]),
    ("empty", "", []),
]


@pytest.mark.parametrize(("name", "body", "lines"), CASES, ids=[c[0] for c in CASES])
def test_mixed_dated_and_undated_rows_warn(
    tmp_path: Path, name: str, body: str, lines: list[int]
) -> None:
    """One warning per mixed file, at its first undated row."""
    result = check_config(write_one_relation(tmp_path, body))
    assert result.valid
    found = [w for w in result.warnings if w.code == "relation_mixed_dates"]
    assert [(Path(w.file).name, w.line) for w in found] == [("team_players.csv", n) for n in lines]


@pytest.mark.parametrize(WARNING_CASE_KEYS, warning_cases("relation_mixed_dates"))
def test_validate_shows_mixed_dates(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: str,
    args: list[str],
    code: int,
    shown: bool,
) -> None:
    """validate prints the warning (file:line), --strict fails on it, an ignore silences it."""
    routes = write_one_relation(tmp_path, "2025-11-19,LAL,p1\n,LAL,newguy\n", extra)
    assert main(["validate", *args, str(routes)]) == code
    err = capsys.readouterr().err
    assert (f"{tmp_path / 'rel' / 'team_players.csv'}:3:" in err) == shown
