"""`scoperouter graph`: the DAG of phases 2-6 as Mermaid, DOT and JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from scoperouter.cli import main
from scoperouter.processor_registry.compiled import topo_sort


def expected_dag(routes: Path) -> tuple[dict[str, int], set[str], set[tuple[str, str]]]:
    """From the raw YAML (not the compiled registry): processor phases, raw sources, and
    edges (``src:X``/``proc:P`` node ids)."""
    spec = yaml.safe_load(routes.read_text(encoding="utf-8"))
    procs = spec["processors"]
    publishers: dict[str, list[str]] = {}
    for name, p in procs.items():
        if p.get("publishes"):
            publishers.setdefault(p["publishes"], []).append(name)
    raw: set[str] = set()
    edges: set[tuple[str, str]] = set()
    for name, p in procs.items():
        for inp in p["inputs"]:
            src = inp["source"]
            if src in publishers:
                edges |= {(f"proc:{u}", f"proc:{name}") for u in publishers[src]}
            else:
                raw.add(src)
                edges.add((f"src:{src}", f"proc:{name}"))
    return {n: p["phase"] for n, p in procs.items()}, raw, edges


def parse_mermaid(text: str) -> tuple[dict[str, str], dict[str, str], set[tuple[str, str]]]:
    """(node id -> label, node id -> subgraph title, edges) of a Mermaid flowchart."""
    labels: dict[str, str] = {}
    group_of: dict[str, str] = {}
    edges: set[tuple[str, str]] = set()
    group = ""
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    for line in lines[1:]:
        s = line.strip()
        if m := re.fullmatch(r'subgraph (\w+) \["([^"]+)"\]', s):
            group = m.group(2)
        elif s == "end":
            group = ""
        elif m := re.fullmatch(r"(\w+) --> (\w+)", s):
            edges.add((m.group(1), m.group(2)))
        elif m := re.fullmatch(r'(\w+)(?:\[\("([^"]+)"\)\]|\["([^"]+)"\])', s):
            nid = m.group(1)
            labels[nid] = m.group(2) or m.group(3)
            assert group, f"node {nid} outside a subgraph"
            group_of[nid] = group
        else:
            pytest.fail(f"unexpected mermaid line: {line!r}")
    return labels, group_of, edges


def test_mermaid_graph_of_routes_yaml(
    routes_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Raw sources sit in their own group, each processor in its phase, edges follow
    publishes."""
    assert main(["graph", "--config", str(routes_path), "--format", "mermaid"]) == 0
    labels, group_of, edges = parse_mermaid(capsys.readouterr().out)
    phases, raw, want_edges = expected_dag(routes_path)
    node_of: dict[str, str] = {}
    for nid, label in labels.items():
        name = label.split("<br/>")[0]
        node_of[nid] = ("proc:" if name in phases else "src:") + name
    for nid, node in node_of.items():
        kind, name = node.split(":", 1)
        if kind == "src":
            assert name in raw and group_of[nid] == "sources (no processor publishes them)"
        else:
            assert group_of[nid] == f"phase {phases[name]}"
    assert {n for n in node_of.values() if n.startswith("src:")} == {f"src:{s}" for s in raw}
    assert {n for n in node_of.values() if n.startswith("proc:")} == {f"proc:{p}" for p in phases}
    got = {(node_of[a], node_of[b]) for a, b in edges}
    assert got == want_edges
    assert {phases[n.split(":", 1)[1]] for n in node_of.values() if n.startswith("proc:")} == {
        3,
        4,
        5,
        6,
    }
    succ: dict[str, set[str]] = {n: set() for n in node_of.values()}
    for a, b in got:
        succ[a].add(b)
    assert topo_sort(succ) is not None, "the graph must be a DAG"


def test_dot_graph_has_the_same_edges(
    routes_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """DOT output: one cluster per phase and the same edge set as the registry implies."""
    assert main(["graph", "--config", str(routes_path), "--format", "dot"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("digraph scoperouter {") and text.rstrip().endswith("}")
    edges = set(re.findall(r'^  "([^"]+)" -> "([^"]+)";$', text, flags=re.M))
    phases, _raw, want_edges = expected_dag(routes_path)
    assert edges == want_edges
    clusters = set(re.findall(r"subgraph cluster_(\w+) \{", text))
    assert clusters == {"sources"} | {f"phase_{p}" for p in phases.values()}


def test_json_graph(routes_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--json gives raw sources, processors by phase and labelled edges."""
    assert main(["graph", "--config", str(routes_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    phases, raw, want_edges = expected_dag(routes_path)
    assert set(data["raw_sources"]) == raw
    assert {p: int(k) for k, ps in data["phases"].items() for p in ps} == phases
    assert {(e["from"], e["to"]) for e in data["edges"]} == want_edges


def test_graph_of_an_invalid_config_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """graph on a broken registry prints positioned errors and exits 1."""
    broken = Path(__file__).resolve().parent / "broken" / "publishes_cycle.yaml"
    assert main(["graph", "--config", str(broken)]) == 1
    assert f"{broken}:" in capsys.readouterr().err


@pytest.mark.parametrize("first_phase", [1, 2, 3])
def test_sources_are_grouped_apart_whatever_the_phase_numbers(
    first_phase: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Sources no processor publishes get their own group even when a processor's phase is
    1 or 2: no phase group mixes sources and processors."""
    cfg = tmp_path / "routes.yaml"
    cfg.write_text(
        "version: 1\nprocessors:\n"
        f"  load: {{phase: {first_phase}, granularity: date, inputs: [{{source: pos.sales}}],"
        " publishes: mart.sales}\n"
        f"  rollup: {{phase: {first_phase + 1}, granularity: date,"
        " inputs: [{source: mart.sales}]}\n",
        encoding="utf-8",
    )
    assert main(["graph", "--config", str(cfg)]) == 0
    _labels, group_of, _edges = parse_mermaid(capsys.readouterr().out)
    assert group_of == {
        "src_pos_sales": "sources (no processor publishes them)",
        "proc_load": f"phase {first_phase}",
        "proc_rollup": f"phase {first_phase + 1}",
    }
    assert main(["graph", "--config", str(cfg), "--format", "dot"]) == 0
    dot = capsys.readouterr().out
    assert dot.count("subgraph cluster_") == 3 and 'label="sources' in dot
