"""Helpers for the lineage tests: the repository's registry, variants of it, and a lineage
run over the reference pipeline's SQL."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from scoperouter.lineage.analyse import Analysis, analyse_code
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.loader import load_config, load_config_text

REPO = Path(__file__).resolve().parents[2]
ROUTES = REPO / "routes.yaml"
# libyaml's emitter when PyYAML has it: the same text as yaml.safe_dump, 5x faster
SafeDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
DATA = Path(__file__).resolve().parent / "data"


def registry(path: Path = ROUTES) -> CompiledRegistry:
    return load_config(path, with_relations=False).registry


@functools.cache
def _parsed(text: str) -> dict[str, Any]:
    """The YAML of a registry, parsed once per distinct text (never handed out: copies are;
    about 40 ms a parse, for each of the ~200 variants of test_reference_lineage)."""
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def routes_data(path: Path = ROUTES) -> dict[str, Any]:
    """A fresh copy of ``path``'s data, free to mutate."""
    return copy.deepcopy(_parsed(path.read_text(encoding="utf-8")))


def variant(mutate: Callable[[dict[str, Any]], None], path: Path = ROUTES) -> CompiledRegistry:
    """A registry compiled from a mutated copy of ``path`` (based in its directory)."""
    data = routes_data(path)
    mutate(data)
    return load_config_text(
        yaml.dump(data, Dumper=SafeDumper), base_dir=path.parent, with_relations=False
    ).registry


def lineage(reg: CompiledRegistry, root: Path = REPO) -> Analysis:
    return analyse_code(reg, root)


def codes(a: Analysis, code: str) -> set[tuple[str, str | None, str | None]]:
    return {(f.processor, f.source, f.column) for f in a.findings if f.code == code}
