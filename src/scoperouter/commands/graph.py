"""``scoperouter graph [--config C] [--format mermaid|dot|json]``.

The processor DAG: sources that no processor publishes (raw tables, files...) sit in a
group of their own, ``sources``, on the left, whatever the phase numbers of the processors;
processors are grouped by their ``phase``; a processor feeds another when the second reads
what the first ``publishes``. Relation data is not needed (not read). ``--json`` is
``--format json``; with another ``--format`` it is a usage error (exit 2), never a silent
choice of one of them.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from scoperouter.commands import common, config_path
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.loader import load_config

SOURCES_GROUP = "sources"
SOURCES_TITLE = "sources (no processor publishes them)"


@dataclass(frozen=True)
class Graph:
    """Nodes and edges of the DAG. Node ids: ``src:<source>`` and ``proc:<processor>``."""

    raw_sources: tuple[str, ...]  # sorted
    phases: dict[int, tuple[str, ...]]  # phase -> processors (sorted)
    granularity: dict[str, str]
    edges: tuple[tuple[str, str, str], ...]  # (from id, to id, source carried)


def build_graph(reg: CompiledRegistry) -> Graph:
    publishers: dict[str, list[str]] = defaultdict(list)
    for name, p in reg.processors.items():
        if p.publishes:
            publishers[p.publishes].append(name)
    raw: set[str] = set()
    edges: set[tuple[str, str, str]] = set()
    for name, p in reg.processors.items():
        for src in p.inputs:
            ups = publishers.get(src)
            if ups:
                edges.update((f"proc:{u}", f"proc:{name}", src) for u in ups)
            else:
                raw.add(src)
                edges.add((f"src:{src}", f"proc:{name}", src))
    phases: dict[int, list[str]] = defaultdict(list)
    for name in reg.processor_names:
        phases[reg.processors[name].phase].append(name)
    return Graph(
        raw_sources=tuple(sorted(raw)),
        phases={k: tuple(v) for k, v in sorted(phases.items())},
        granularity={n: p.granularity for n, p in reg.processors.items()},
        edges=tuple(sorted(edges)),
    )


def _mermaid_ids(g: Graph) -> dict[str, str]:
    """A unique Mermaid-safe id for every node (``src:a.b`` -> ``src_a_b``)."""
    out: dict[str, str] = {}
    used: set[str] = set()
    nodes = [f"src:{s}" for s in g.raw_sources]
    nodes += [f"proc:{n}" for names in g.phases.values() for n in names]
    for node_id in nodes:
        kind, _, name = node_id.partition(":")
        base = f"{kind}_{re.sub(r'[^A-Za-z0-9_]', '_', name)}"
        mid, k = base, 2
        while mid in used:
            mid, k = f"{base}_{k}", k + 1
        used.add(mid)
        out[node_id] = mid
    return out


def _pairs(g: Graph) -> list[tuple[str, str]]:
    """Edges without the source label, deduplicated, in order."""
    return sorted({(a, b) for a, b, _src in g.edges})


def _groups(g: Graph) -> list[tuple[str, str, list[str]]]:
    """(group id, title, node ids): the sources first, then one group per phase."""
    out: list[tuple[str, str, list[str]]] = []
    if g.raw_sources:
        out.append((SOURCES_GROUP, SOURCES_TITLE, [f"src:{s}" for s in g.raw_sources]))
    for phase, names in g.phases.items():
        out.append((f"phase_{phase}", f"phase {phase}", [f"proc:{n}" for n in names]))
    return out


def to_mermaid(g: Graph) -> str:
    ids = _mermaid_ids(g)
    lines = ["flowchart LR"]
    for gid, title, nodes in _groups(g):
        lines.append(f'  subgraph {gid} ["{title}"]')
        for node in nodes:
            kind, _, n = node.partition(":")
            if kind == "src":
                lines.append(f'    {ids[node]}[("{n}")]')
            else:
                lines.append(f'    {ids[node]}["{n}<br/>({g.granularity[n]})"]')
        lines.append("  end")
    for a, b in _pairs(g):
        lines.append(f"  {ids[a]} --> {ids[b]}")
    return "\n".join(lines) + "\n"


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(g: Graph) -> str:
    lines = ["digraph scoperouter {", "  rankdir=LR;", "  node [fontname=Helvetica];"]
    for gid, title, nodes in _groups(g):
        lines.append(f"  subgraph cluster_{gid} {{")
        lines.append(f"    label={_q(title)};")
        for node in nodes:
            kind, _, n = node.partition(":")
            if kind == "src":
                lines.append(f"    {_q(node)} [shape=cylinder, label={_q(n)}];")
            else:
                label = f"{n}\\n({g.granularity[n]})"
                lines.append(f'    {_q(node)} [shape=box, label="{label}"];')
        lines.append("  }")
    for a, b in _pairs(g):
        lines.append(f"  {_q(a)} -> {_q(b)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_json(g: Graph) -> str:
    out: dict[str, Any] = {
        "raw_sources": list(g.raw_sources),
        "phases": {str(k): list(v) for k, v in g.phases.items()},
        "granularity": dict(sorted(g.granularity.items())),
        "edges": [{"from": a, "to": b, "source": s} for a, b, s in g.edges],
    }
    return json.dumps(out, indent=2)


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "graph",
        help="print the processor DAG (mermaid or dot)",
        description="The processor DAG: sources no processor publishes -> processors "
        "grouped by phase.",
        parents=[common(config=True, json=True)],
    )
    p.add_argument(
        "--format",
        choices=("mermaid", "dot", "json"),
        default=None,
        help="default mermaid; --json is --format json (with another format: a usage error)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.json and args.format not in (None, "json"):  # a usage error, as argparse's
        why = f"--format {args.format}: not allowed with --json"
        print(f"scoperouter graph: error: {why}", file=sys.stderr)
        raise SystemExit(2)
    reg = load_config(config_path(args), with_relations=False).registry
    g = build_graph(reg)
    fmt = "json" if args.json else args.format or "mermaid"
    text = {"mermaid": to_mermaid, "dot": to_dot, "json": to_json}[fmt](g)
    print(text, end="" if text.endswith("\n") else "\n")
    return 0
