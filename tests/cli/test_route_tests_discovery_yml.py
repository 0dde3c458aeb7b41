"""``scoperouter test DIR``: route-test files spelled ``.yml`` are run like ``.yaml`` ones (the
pre-commit hook fires on both), never skipped in silence."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scoperouter.cli import main

REPO = Path(__file__).resolve().parents[2]
RETAIL = REPO / "examples" / "retail"

# a case the retail registry fails: pos.sales is read by store_sales_summary
FAILING = """tests:
  - name: sales run nothing (wrong)
    event: {event_id: e-1, source: pos.sales, business_date: 2026-03-02}
    expect: {store_sales_summary: skip}
"""


@pytest.mark.parametrize(
    "name", ["tests/routes/extra.yml", "routes.tests.yml"], ids=["tests-routes", "top-level"]
)
def test_yml_route_test_file_is_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str
) -> None:
    """Next to the passing routes.tests.yaml, a failing .yml file makes the run fail (exit 1)."""
    repo = tmp_path / "repo"
    shutil.copytree(RETAIL, repo)
    (repo / name).parent.mkdir(parents=True, exist_ok=True)
    (repo / name).write_text(FAILING, encoding="utf-8")
    rc = main(["test", str(repo)])
    out = capsys.readouterr().out
    assert rc == 1, out
    assert f"FAIL {repo / name}:2: sales run nothing (wrong)" in out, out
