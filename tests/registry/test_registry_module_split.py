"""The old registry modules still export every name that moved out of them (pure-move
splits: loader.py -> schema_errors.py, models.py -> model_processor.py,
yaml_positions.py -> yaml_compose.py, relations.py -> relation_csv.py)."""

from __future__ import annotations

import importlib

import pytest

PKG = "scoperouter.processor_registry"

# (module, name that moved out of it, module that now defines it)
MOVED = [
    ("loader", "EXTENSION_PREFIX", "schema_errors"),
    ("loader", "_schema_issues", "schema_errors"),
    ("loader", "_schema_valid", "schema_errors"),
    ("loader", "_short", "schema_errors"),
    *(
        ("models", name, "model_processor")
        for name in (
            "MAX_ENTITIES_DESCRIPTION",
            "MODE_DESCRIPTION",
            "DefaultsSpec",
            "InputSpec",
            "LineageSpec",
            "LookbackSpec",
            "Mode",
            "ProcessorSpec",
            "WindowSpec",
        )
    ),
    *(("yaml_positions", name, "yaml_compose") for name in ("Pos", "YamlLoadError", "YamlPath")),
    *(("relations", name, "relation_csv") for name in ("Row", "read_relation_csv")),
]


def _module(name: str) -> object:
    return importlib.import_module(f"{PKG}.{name}")


@pytest.mark.parametrize(("old", "name", "new"), MOVED)
def test_moved_name_is_still_importable_from_its_old_module(old: str, name: str, new: str) -> None:
    """A moved name is the very object the new module defines, reachable from the old one."""
    assert getattr(_module(old), name) is getattr(_module(new), name)
    assert name.startswith("_") or name in getattr(_module(old), "__all__", [name])
