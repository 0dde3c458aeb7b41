"""tests/xdist_order.py: the costliest files go to pytest-xdist's workers first, and nothing
else about the run changes."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from xdist_order import COSTS, file_of, order

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Item:
    nodeid: str


def _items(*ids: str) -> list[Item]:
    return [Item(i) for i in ids]


@pytest.mark.parametrize(
    ("collected", "costs", "expected"),
    [
        # the costly file first; the others as collected; a file's tests in their order
        (["a.py::x", "a.py::y", "b.py::x", "c.py::x"], {"c.py": 9.0},
         ["c.py::x", "a.py::x", "a.py::y", "b.py::x"]),
        # costliest first among the listed ones
        (["a.py::x", "b.py::x", "c.py::x", "b.py::y"], {"b.py": 2.0, "c.py": 5.0},
         ["c.py::x", "b.py::x", "b.py::y", "a.py::x"]),
        # nothing listed: the collection order
        (["b.py::x", "a.py::x", "a.py::y"], {}, ["b.py::x", "a.py::x", "a.py::y"]),
        # parametrized ids with '::' and brackets stay with their file
        (["a.py::t[x::1]", "b.py::C::t", "b.py::C::u"], {"b.py": 1.0},
         ["b.py::C::t", "b.py::C::u", "a.py::t[x::1]"]),
    ],
)  # fmt: skip
def test_costliest_files_first_and_nothing_else_moves(
    collected: list[str], costs: dict[str, float], expected: list[str]
) -> None:
    """Files sort by cost, descending; unlisted files keep their order; tests stay in file order."""
    out = order(_items(*collected), costs)
    assert [i.nodeid for i in out] == expected
    assert sorted(i.nodeid for i in out) == sorted(collected)


def test_every_listed_file_exists() -> None:
    """COSTS names test files that exist (a renamed or deleted file is taken out of it)."""
    missing = [f for f in COSTS if not (REPO / f).is_file()]
    assert COSTS and missing == []


def test_xdist_keeps_the_collection_order() -> None:
    """pyproject's addopts turn pytest-xdist's own reordering off, which would undo ours."""
    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    addopts = data["tool"]["pytest"]["ini_options"]["addopts"].split()
    assert "--no-loadscope-reorder" in addopts and "loadfile" in addopts


def test_this_run_is_ordered_when_distributed(request: pytest.FixtureRequest) -> None:
    """Under pytest-xdist the session's items are in order()'s order."""
    items = request.session.items
    if not hasattr(request.config, "workerinput"):
        pytest.skip("not a pytest-xdist worker: the order only matters when distributed")
    files = list(dict.fromkeys(file_of(i) for i in items))
    listed = [f for f in files if f in COSTS]
    assert listed == sorted(listed, key=lambda f: -COSTS[f])
    assert files[: len(listed)] == listed
