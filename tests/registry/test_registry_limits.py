"""Registries at the limits: publishes chains of thousands of processors, huge numbers,
and relation files that are not what they claim (issue 18, item 7)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoperouter.errors import ConfigError
from scoperouter.processor_registry.compiled import find_cycle, topo_sort
from scoperouter.processor_registry.loader import check_config_bytes
from scoperouter.processor_registry.relations import read_relation_csv


def chain(n: int, *, close: bool) -> str:
    """A registry whose n processors form one publishes chain (a cycle when ``close``)."""
    lines = ["version: 1", "processors:"]
    for i in range(n):
        src = f"s.t{(i + n - 1) % n:05d}" if close and i == 0 else f"s.t{i:05d}"
        lines += [
            f"  p{i}:",
            "    phase: 3",
            "    granularity: date",
            f"    inputs: [{{source: {src}}}]",
            f"    publishes: s.t{i + 1 if i + 1 < n or not close else 0:05d}",
        ]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("n", "close", "codes"), [(3000, False, set()), (3000, True, {"cycle"})])
def test_long_publishes_chains_validate_without_recursion(
    n: int, close: bool, codes: set[str]
) -> None:
    """A chain of thousands of processors is checked (and its cycle found) without an internal error."""
    res = check_config_bytes(chain(n, close=close), file="chain.yaml", with_relations=False)
    errors = {i.code for i in res.issues if i.severity == "error"}
    assert errors == codes, [i.message for i in res.issues if i.severity == "error"][:3]


graphs = st.dictionaries(
    st.sampled_from("abcdefgh"), st.sets(st.sampled_from("abcdefgh"), max_size=4), max_size=8
)


@settings(max_examples=300, deadline=None)
@given(graphs)
def test_find_cycle_agrees_with_topological_sort(edges: dict[str, set[str]]) -> None:
    """find_cycle returns a real cycle exactly when Kahn's algorithm finds no order."""
    full = {n: set(v) for n, v in edges.items()}
    for outs in edges.values():
        for m in outs:
            full.setdefault(m, set())
    cycle = find_cycle(full)
    assert (cycle is None) == (topo_sort(full) is not None)
    if cycle is not None:
        assert cycle[0] == cycle[-1]
        assert all(b in full[a] for a, b in itertools.pairwise(cycle))


def test_relation_file_symlinked_elsewhere_is_not_echoed(tmp_path: Path) -> None:
    """A relation CSV that is a symlink to another file is refused without printing its content."""
    secret = tmp_path / "secret.txt"
    secret.write_text("root:SECRET-HASH-123:0:0\nmore\n", encoding="utf-8")
    link = tmp_path / "team_players.csv"
    link.symlink_to(secret)
    with pytest.raises(ConfigError) as err:
        read_relation_csv(link)
    assert "SECRET-HASH-123" not in str(err.value)
    assert "header must be date,from,to" in str(err.value)
