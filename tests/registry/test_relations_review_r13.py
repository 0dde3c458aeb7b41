"""Review 13: relation CSV rows whose date is not written YYYY-MM-DD."""

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
