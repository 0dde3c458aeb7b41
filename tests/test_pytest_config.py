"""The suite's own pytest settings (``pyproject.toml``) keep a failing test a plain failure."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"

FAILING_PROPERTY = """
from hypothesis import given, strategies as st

@given(st.integers())
def test_a_property_that_fails(x):
    assert x < 5

def test_the_next_test():
    pass
"""


def test_a_failing_property_is_reported_and_the_run_goes_on(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under our filterwarnings, a failing Hypothesis property fails alone, no INTERNALERROR."""
    pytest.importorskip("libcst", reason="libcst absent: Hypothesis prints no patch to fail on")
    # the inner run is a session of its own, not a worker of this one's pytest-xdist (run
    # with -n, its environment says so: pytest-benchmark, where installed, then warns that
    # benchmarks are off, and the ini below makes that warning an INTERNALERROR)
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)
    ini = tomllib.loads(PYPROJECT.read_text())["tool"]["pytest"]["ini_options"]
    pytester.makeini(
        "[pytest]\nfilterwarnings =\n" + "".join(f"    {w}\n" for w in ini["filterwarnings"])
    )
    pytester.makepyfile(FAILING_PROPERTY)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.assert_outcomes(failed=1, passed=1)


def test_only_one_file_reads_the_session_demo_run(request: pytest.FixtureRequest) -> None:
    """Of the items this session collected, only tests/nba/test_nba_demo.py's ask for the
    session's ``demo_run`` (a whole demo day per worker that asks: files go whole to one
    worker under ``--dist loadfile``, so one file means one run)."""
    files = {
        item.path
        for item in request.session.items
        if "demo_run" in getattr(item, "fixturenames", ())
    }
    assert files <= {PYPROJECT.parent / "tests" / "nba" / "test_nba_demo.py"}, sorted(files)
