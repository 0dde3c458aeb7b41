"""``scoperouter test``: an event whose source the registry names nowhere (a typo in the test)
is a positioned file error, not a case that passes because every processor skips it
(``unknown_source``) -- unless the case states that reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from scoperouter.cli import main

REPO = Path(__file__).resolve().parents[2]

STANDINGS = (
    "{event_type: raw_data_loaded, source_table: bdl_standigns, game_date: 2025-11-19, "
    "execution_id: tt-6, phase: 2, success: true}"
)
INJURY = (
    "{event_id: e-1, source: nba_raw.nbac_injury_reprot, game_date: 2025-11-19, "
    "changed_fields: [odds]}"
)


def _run(capsys: pytest.CaptureFixture[str], f: Path, text: str) -> tuple[int, str]:
    f.write_text(text, encoding="utf-8")
    rc = main(["test", str(f), "--config", str(REPO / "routes.yaml")])
    return rc, capsys.readouterr().out


@pytest.mark.parametrize(
    ("event", "expect", "named", "hint"),
    [
        (STANDINGS, "    only: true\n", "bdl_standigns", "nba_raw.bdl_standings"),
        (INJURY, "    expect: {player_game_summary: skip}\n", "nba_raw.nbac_injury_reprot", "nba_raw.nbac_injury_report"),
    ],
    ids=["legacy-bare-table", "canonical"],
)  # fmt: skip
def test_event_from_a_source_the_registry_names_nowhere_is_a_file_error(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    event: str,
    expect: str,
    named: str,
    hint: str,
) -> None:
    """A misspelled source would make `only: true` / `skip` pass: exit 1 at the event, with a did-you-mean."""
    f = tmp_path / "routes.tests.yaml"
    rc, out = _run(capsys, f, f"tests:\n  - name: typo\n    event: {event}\n{expect}")
    assert rc == 1, out
    line = next((x for x in out.splitlines() if ": error: " in x), "")
    assert f"{f}:3:" in line and "tests[0].event" in line, out
    assert named in line and f"did you mean {hint!r}" in line, out


def test_a_case_stating_unknown_source_may_use_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`reason: unknown_source` says the test means an unknown source: it loads and passes."""
    f = tmp_path / "routes.tests.yaml"
    rc, out = _run(
        capsys,
        f,
        f"tests:\n  - name: unknown\n    event: {INJURY}\n"
        "    expect: {player_game_summary: {action: skip, reason: unknown_source}}\n    only: true\n",
    )
    assert rc == 0, out
