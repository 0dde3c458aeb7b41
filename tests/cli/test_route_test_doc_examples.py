"""The route-test files the README and docs/route-tests.md show pass against the shipped
``routes.yaml``: an example a user copies must not fail (the README's once expected
``only: true`` with four of the injury report's readers left out)."""

from __future__ import annotations

from pathlib import Path

import pytest

from doc_blocks import parse_blocks
from scoperouter.cli import main

REPO = Path(__file__).resolve().parents[2]


def _examples() -> list[tuple[str, str]]:
    """(doc:line, YAML) of every yaml block that is a route-test file (has ``tests:``)."""
    out = []
    for doc in ("README.md", "docs/route-tests.md"):
        for b in parse_blocks((REPO / doc).read_text(encoding="utf-8"), "<!-- no-test -->"):
            if b.lang == "yaml" and "\ntests:\n" in f"\n{b.code}" and not b.skip:
                out.append((f"{doc}:{b.line}", b.code))
    return out


EXAMPLES = _examples()


def test_the_docs_show_route_test_files() -> None:
    """Both guides hold at least one route-test file (the test below checks something)."""
    assert {where.split(":")[0] for where, _ in EXAMPLES} == {"README.md", "docs/route-tests.md"}


@pytest.mark.parametrize(("where", "yaml_text"), EXAMPLES, ids=[w for w, _ in EXAMPLES])
def test_a_route_test_file_in_the_docs_passes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, where: str, yaml_text: str
) -> None:
    """The block, saved as a routes.tests.yaml, passes with the repository's registry."""
    f = tmp_path / "routes.tests.yaml"
    f.write_text(yaml_text.replace("config: routes.yaml", ""), encoding="utf-8")
    rc = main(["test", str(f), "--config", str(REPO / "routes.yaml")])
    out = capsys.readouterr().out
    assert rc == 0, f"{where}:\n{out}"
    assert " 0 failed" in out, out
