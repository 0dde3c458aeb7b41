"""Render lineage findings: text, JSON, and GitHub workflow-command annotations.

Invariant: every finding is rendered in each format with its code, severity, processor and
location -- where the code reads it, or for ``unused_input`` / ``unused_ignore`` the
input's / ignore_tables entry's line in routes.yaml; nothing is dropped for being unresolved (those are listed as notices),
and every format says how many jobs (JOBS route) were attributed to no processor.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from scoperouter.lineage.diff import Finding
from scoperouter.lineage.reads import Origin
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.yaml_positions import YamlLoadError, load_positioned


def registry_origins(registry: CompiledRegistry, config: str) -> dict[tuple[str, str], Origin]:
    """(processor, source) -> the input's line in routes.yaml (or its ignore_tables entry's)."""
    try:
        doc = load_positioned(Path(config).read_text(encoding="utf-8"))
    except (OSError, YamlLoadError):
        return {}
    out: dict[tuple[str, str], Origin] = {}
    for pname, p in registry.processors.items():
        for j, table in enumerate(p.spec.lineage.ignore_tables if p.spec.lineage else ()):
            pos = doc.locate(("processors", pname, "lineage", "ignore_tables", j))
            out[(pname, table)] = Origin(config, pos.line)
        for source, ci in p.inputs.items():
            pos = doc.locate(("processors", pname, "inputs", ci.index, "source"))
            out[(pname, source)] = Origin(config, pos.line)
    return out


def locate(findings: Sequence[Finding], origins: dict[tuple[str, str], Origin]) -> list[Finding]:
    """Give findings without a code location (unused_input) the input's registry line."""
    out = []
    for f in findings:
        if f.origin is None and f.source is not None:
            f = Finding(
                f.code, f.processor, f.source, f.column, f.message,
                origins.get((f.processor, f.source)), f.route,
            )  # fmt: skip
        out.append(f)
    return out


def counts(findings: Sequence[Finding]) -> dict[str, int]:
    return {
        "errors": sum(f.severity == "error" for f in findings),
        "warnings": sum(f.severity == "warning" for f in findings),
        "unresolved": sum(f.severity == "info" for f in findings),
    }


def summary(
    findings: Sequence[Finding],
    analysed: Sequence[str],
    skipped: Sequence[str],
    config: str,
    route: str,
    unattributed: int = 0,
) -> str:
    c = counts(findings)
    line = (
        f"{config}: lineage ({route}) of {len(analysed)} processor"
        f"{'s' * (len(analysed) != 1)}: {c['errors']} errors, {c['warnings']} warnings, "
        f"{c['unresolved']} unresolved"
    )
    line += f"\n  no code for: {', '.join(skipped)}" if skipped else ""
    return line + (f"\n  {unattributed_jobs(unattributed)}" if unattributed else "")


def unattributed_jobs(n: int) -> str:
    """``N jobs attributed to no processor`` (JOBS route)."""
    return f"{n} job{'s' * (n != 1)} attributed to no processor"


def text(
    findings: Sequence[Finding],
    analysed: Sequence[str],
    skipped: Sequence[str],
    config: str,
    route: str,
    unattributed: int = 0,
) -> str:
    lines = []
    for f in findings:
        where = f"{f.origin}: " if f.origin else ""
        lines.append(f"{where}{f.severity}: {f.code}: {f.message}")
    lines.append(summary(findings, analysed, skipped, config, route, unattributed))
    return "\n".join(lines)


def as_json(findings: Sequence[Finding], analysed: Sequence[str], skipped: Sequence[str],
            config: str, route: str, extra: dict[str, object] | None = None) -> str:  # fmt: skip
    out: dict[str, object] = {
        "config": config,
        "route": route,
        "processors": list(analysed),
        "no_code": list(skipped),
        **counts(findings),
        "findings": [f.to_json() for f in findings],
        **(extra or {}),
    }
    return json.dumps(out, indent=2)


def _escape(s: str, prop: bool = False) -> str:
    s = s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return s.replace(":", "%3A").replace(",", "%2C") if prop else s


def github(findings: Sequence[Finding]) -> str:
    """GitHub Actions workflow commands (``::error file=F,line=L,title=T::message``)."""
    level = {"error": "error", "warning": "warning", "info": "notice"}
    lines = []
    for f in findings:
        props = [f"title={_escape(f'lineage {f.code}', True)}"]
        if f.origin is not None:
            props.insert(0, f"file={_escape(f.origin.file, True)}")
            if f.origin.line:
                props.insert(1, f"line={f.origin.line}")
        lines.append(f"::{level[f.severity]} {','.join(props)}::{_escape(f.message)}")
    return "\n".join(lines)
