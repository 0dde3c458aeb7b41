"""The hand-made mutants of ``tests/mutants_issue13.py`` (issue 13, acceptance 6) still
apply: each one's original text occurs exactly once in the file it names, and its test
exists. The script itself runs by hand (it copies src/ once per mutant); without this
check a refactor that moves the mutated code leaves the script failing unnoticed, as two
of its mutants did until stop 44."""

from __future__ import annotations

from pathlib import Path

import pytest

from mutants_issue13 import M

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("name", "path", "old", "new", "test"), M, ids=[m[0] for m in M])
def test_each_mutant_still_applies(name: str, path: str, old: str, new: str, test: str) -> None:
    """The mutant's text occurs once in its file, differs from its replacement, and its test file exists."""
    assert (ROOT / "src" / path).read_text().count(old) == 1, name
    assert old != new
    assert (ROOT / test.split("::")[0]).exists(), test
