"""One lineage run: which processors have code, their reads, and the findings.

Invariant: a processor is analysed only when it has code globs (routes.yaml's ``lineage:
{code: [...]}`` or ``--code NAME=GLOB``) or jobs attributed to it; the others are listed as
having no code, never reported ``unused_input`` for inputs nobody looked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scoperouter.lineage.collect import code_reads
from scoperouter.lineage.diff import Finding, diff_all
from scoperouter.lineage.jobs import jobs_reads
from scoperouter.lineage.reads import Reads
from scoperouter.processor_registry.compiled import CompiledRegistry


@dataclass(frozen=True)
class Analysis:
    findings: tuple[Finding, ...]
    reads: Mapping[str, Reads]
    analysed: tuple[str, ...]
    skipped: tuple[str, ...]
    unattributed_jobs: int = 0

    @property
    def errors(self) -> int:
        return sum(f.severity == "error" for f in self.findings)


def code_globs(
    registry: CompiledRegistry, extra: Mapping[str, tuple[str, ...]] | None = None
) -> dict[str, tuple[str, ...]]:
    """Per processor: its routes.yaml globs plus the command line's."""
    out: dict[str, tuple[str, ...]] = {}
    for name, p in registry.processors.items():
        globs = (*(p.spec.lineage.code if p.spec.lineage else ()), *(extra or {}).get(name, ()))
        if globs:
            out[name] = globs
    return out


def schema_of(registry: CompiledRegistry) -> dict[str, frozenset[str]]:
    """Declared columns per source (resolves unqualified columns in multi-table queries)."""
    return {
        n: frozenset(s.columns) for n, s in registry.spec.sources.items() if s.columns is not None
    }


def analyse_code(
    registry: CompiledRegistry,
    root: Path,
    extra: Mapping[str, tuple[str, ...]] | None = None,
    only: Iterable[str] = (),
) -> Analysis:
    globs = code_globs(registry, extra)
    wanted = set(only)
    if wanted:
        globs = {k: v for k, v in globs.items() if k in wanted}
    reads = code_reads(globs, root, schema_of(registry))
    scope = wanted or set(registry.processors)
    return Analysis(
        tuple(diff_all(registry, reads, "sql")),
        reads,
        tuple(sorted(reads)),
        tuple(sorted(scope - set(reads))),
    )


def _limited(
    registry: CompiledRegistry,
    reads: Mapping[str, Reads],
    route: str,
    only: Iterable[str],
    unattributed: int = 0,
) -> Analysis:
    """The analysis of ``reads``, limited to ``only`` (every processor when empty), as
    :func:`analyse_code` limits it: ``--processor`` means the same on every route."""
    wanted = set(only)
    if wanted:
        reads = {k: v for k, v in reads.items() if k in wanted}
    scope = wanted or set(registry.processors)
    return Analysis(
        tuple(diff_all(registry, reads, route)),
        reads,
        tuple(sorted(reads)),
        tuple(sorted(scope - set(reads))),
        unattributed,
    )


def analyse_jobs(
    registry: CompiledRegistry,
    rows: Iterable[Mapping[str, Any]],
    source: str,
    label: str,
    only: Iterable[str] = (),
) -> Analysis:
    reads, unattributed = jobs_reads(rows, registry, source, label)
    return _limited(registry, reads, "jobs", only, unattributed)


def analyse_runtime(
    registry: CompiledRegistry, events: Iterable[Any], only: Iterable[str] = ()
) -> Analysis:
    """Lineage from the execution log: what runs reported reading (``referenced_tables``)."""
    from scoperouter.lineage.drift import runtime_reads

    return _limited(registry, runtime_reads(registry, events), "runtime", only)
