"""``scoperouter test``: a case whose events file holds no event checks nothing and must not pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from scoperouter.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("content", ["", "\n  \n"], ids=["empty", "blank-lines"])
def test_events_file_without_events_is_a_file_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str
) -> None:
    """An `events:` JSON Lines file with no event is a positioned file error (exit 1), not a vacuous pass."""
    (tmp_path / "none.jsonl").write_text(content, encoding="utf-8")
    f = tmp_path / "routes.tests.yaml"
    f.write_text(
        "tests:\n"
        "  - name: no events at all\n"
        "    events: none.jsonl\n"
        "    expect:\n"
        "      player_game_summary: {action: run, entity_ids: [nobody]}\n",
        encoding="utf-8",
    )
    rc = main(["test", str(f), "--config", str(REPO / "routes.yaml")])
    out = capsys.readouterr().out
    assert rc == 1, out
    assert f"{f}:3:" in out and "none.jsonl" in out, out
