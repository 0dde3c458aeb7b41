"""``relation_isolated_date``: a relation file whose latest date stands more than 60 days
after the one before it (one stray row: a typo'd year). The span of the dated rows is what
counts as loaded, so every date between read as known with nobody on it: an ``ahead`` day
past the real data ran at entity scope instead of the full date, and a trade loaded later
never ran its new team (reviewed: a row ``2026-11-18`` in a roster ending 2025-11-19)."""

from __future__ import annotations

from pathlib import Path

import pytest
from warning_cases import WARNING_CASE_KEYS, warning_cases, write_one_relation

from scoperouter.cli import main
from scoperouter.processor_registry.loader import check_config

ROWS = "2025-11-18,LAL,p1\n2025-11-19,LAL,p1\n"


CASES = [
    # (name, rows, the warning's line or None)
    ("stray_year", ROWS + "2026-11-18,NYK,p9\n", 4),
    ("stray_row_first_in_file", "2026-11-18,NYK,p9\n" + ROWS, 2),
    ("sixty_one_days", ROWS + "2026-01-19,LAL,p1\n", 4),
    ("sixty_days", ROWS + "2026-01-18,LAL,p1\n", None),
    ("contiguous", ROWS, None),
    ("one_date", "2025-11-19,LAL,p1\n", None),
    ("undated", ",LAL,p1\n", None),
]


@pytest.mark.parametrize(("name", "body", "line"), CASES, ids=[c[0] for c in CASES])
def test_isolated_latest_date_warns(tmp_path: Path, name: str, body: str, line: int | None) -> None:
    """One warning, at the stray date's first line, when the latest date is over 60 days past the one before."""
    result = check_config(write_one_relation(tmp_path, body))
    assert result.valid
    found = [w for w in result.warnings if w.code == "relation_isolated_date"]
    if line is None:
        assert found == []
        return
    (w,) = found
    assert (Path(w.file or "").name, w.line, w.severity) == ("team_players.csv", line, "warning")
    assert "reaches nobody" in w.message


@pytest.mark.parametrize(WARNING_CASE_KEYS, warning_cases("relation_isolated_date"))
def test_validate_shows_an_isolated_date(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: str,
    args: list[str],
    code: int,
    shown: bool,
) -> None:
    """validate prints it (file:line), --strict fails on it, an ignore silences it."""
    routes = write_one_relation(tmp_path, ROWS + "2026-11-18,NYK,p9\n", extra)
    assert main(["validate", *args, str(routes)]) == code
    err = capsys.readouterr().err
    assert (f"{tmp_path / 'rel' / 'team_players.csv'}:4:" in err) == shown
