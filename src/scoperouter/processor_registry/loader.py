"""Load ``routes.yaml`` into a compiled registry plus its relation data.

Public API (stable; other modules depend on it):

* ``load_config(path, *, with_relations=True) -> LoadedConfig`` -- raises ConfigError.
* ``load_config_text(text, *, file="<string>", base_dir=None, with_relations=True)``.

NOTE: minimal first version (no positions yet); the position-aware loader replaces the
internals without changing this API.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from scoperouter.errors import ConfigError, ConfigIssue
from scoperouter.processor_registry.compiled import CompiledRegistry, compile_registry
from scoperouter.processor_registry.models import RoutesSpec
from scoperouter.processor_registry.relations import (
    EMPTY_RELATIONS,
    InMemoryRelations,
    load_csv_relations,
)


@dataclass(frozen=True)
class LoadedConfig:
    registry: CompiledRegistry
    relations: InMemoryRelations
    warnings: tuple[ConfigIssue, ...] = ()


def load_relations(registry: CompiledRegistry) -> InMemoryRelations:
    spec = registry.spec
    if spec.relation_data is None:
        return EMPTY_RELATIONS
    base = {n: (r.from_type, r.to_type) for n, r in registry.relations.items() if not r.inverse}
    inv = {n: r.base for n, r in registry.relations.items() if r.inverse}
    inv_types = {n: (r.from_type, r.to_type) for n, r in registry.relations.items() if r.inverse}
    d = Path(spec.relation_data.csv.dir)
    if not d.is_absolute():
        d = registry.base_dir / d
    return load_csv_relations(d, base, inv, inv_types)


def load_config_text(
    text: str, *, file: str = "<string>", base_dir: Path | None = None, with_relations: bool = True
) -> LoadedConfig:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigIssue(f"YAML syntax error: {exc}", file=file)]) from exc
    try:
        spec = RoutesSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            [ConfigIssue(e["msg"], file=file, path=tuple(e["loc"])) for e in exc.errors()]
        ) from exc
    reg = compile_registry(spec, file=file, base_dir=base_dir or Path("."))
    rel = load_relations(reg) if with_relations else EMPTY_RELATIONS
    return LoadedConfig(reg, rel)


def load_config(path: str | Path, *, with_relations: bool = True) -> LoadedConfig:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigIssue(f"cannot read: {exc.strerror}", file=str(p))]) from exc
    return load_config_text(text, file=str(p), base_dir=p.parent, with_relations=with_relations)
