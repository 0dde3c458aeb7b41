"""`trace` and `deadletters` on a loop.json whose ledger is not the shape they save (entries
not a list, the ledger not an object, an entry that is not one) exit 1 with one line naming
the file and the entry: never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scoperouter.cli import main


@pytest.mark.parametrize(
    ("ledger", "needle"),
    [
        ({"entries": 5}, "ledger entries must be a list, not int"),
        ({"entries": {"a": 1}}, "ledger entries must be a list, not dict"),
        ("x", "ledger must be an object, not str"),
        ({"entries": [5]}, "entry 1: malformed ledger entry"),
        ({"entries": [{"trigger": {}}]}, "entry 1: malformed ledger entry"),
        ({"entries": [{"phase": "dead", "history": [[1, 2]]}]}, "entry 1: malformed ledger entry"),
    ],
    ids=[
        "entries_a_number",
        "entries_an_object",
        "ledger_a_string",
        "entry_a_number",
        "entry_bad",
        "history_item_short",
    ],
)
@pytest.mark.parametrize(
    "argv", [["trace", "x"], ["deadletters", "list"]], ids=["trace", "deadletters"]
)
def test_malformed_ledger_is_one_line(
    ledger: object,
    needle: str,
    argv: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A ledger of the wrong shape: exit 1, one line naming loop.json and what is wrong."""
    (tmp_path / "loop.json").write_text(json.dumps({"version": 1, "ledger": ledger}))
    rc = main([*argv, "--state-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.startswith(f"error: {tmp_path / 'loop.json'}: {needle}"), err
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ([], "not a JSON object (a list)"),
        ("x", "not a JSON object (a str)"),
        ({"version": 99, "ledger": {"entries": []}}, "version 99"),
        ({"ledger": {"entries": []}}, "version None"),
    ],
    ids=["a_list", "a_string", "version_99", "no_version"],
)
@pytest.mark.parametrize(
    "argv", [["trace", "x"], ["deadletters", "list"]], ids=["trace", "deadletters"]
)
def test_loop_json_not_this_versions_object_is_one_line(
    doc: object,
    needle: str,
    argv: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A loop.json that is no object, or of another version: exit 1, one line naming it
    (never 'the closed loop is off there', never read as if it were this version's)."""
    (tmp_path / "loop.json").write_text(json.dumps(doc))
    rc = main([*argv, "--state-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.startswith(f"error: cannot read {tmp_path / 'loop.json'}: "), err
    assert needle in err and "closed loop is off" not in err, err
    assert len(err.strip().splitlines()) == 1, err
