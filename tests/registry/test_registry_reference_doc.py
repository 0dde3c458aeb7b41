"""docs/registry.md covers every key of routes.yaml: one table per model, whose rows are
exactly the model's fields (issue 17, acceptance 2)."""

from __future__ import annotations

import re
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from scoperouter.processor_registry.models import RoutesSpec

DOC = Path(__file__).resolve().parents[2] / "docs" / "registry.md"
ROOT = "routes.yaml"  # the heading of the top-level table


def _models(tp: Any) -> Iterator[tuple[type[BaseModel], str]]:
    """(model, suffix) for every model inside an annotation: ``.<name>`` for dict values,
    ``[]`` for list items."""
    origin = get_origin(tp)
    if origin is Annotated:
        yield from _models(get_args(tp)[0])
    elif origin in (Union, types.UnionType):
        for a in get_args(tp):
            yield from _models(a)
    elif origin is dict:
        for m, suffix in _models(get_args(tp)[1]):
            yield m, ".<name>" + suffix
    elif origin is tuple:
        for m, suffix in _models(get_args(tp)[0]):
            yield m, "[]" + suffix
    elif isinstance(tp, type) and issubclass(tp, BaseModel):
        yield tp, ""


def model_paths() -> dict[type[BaseModel], set[str]]:
    """Every model reachable from RoutesSpec and every YAML path it appears at."""
    out: dict[type[BaseModel], set[str]] = {RoutesSpec: {ROOT}}
    todo: list[tuple[type[BaseModel], str]] = [(RoutesSpec, "")]
    while todo:
        model, path = todo.pop()
        for name, f in model.model_fields.items():
            key = f.alias or name
            for sub, suffix in _models(f.annotation):
                p = f"{path}.{key}{suffix}" if path else f"{key}{suffix}"
                if p not in out.setdefault(sub, set()):
                    out[sub].add(p)
                    # a model's paths are also reached through its other paths' suffixes
                    todo.append((sub, p))
    return out


def model_keys(model: type[BaseModel]) -> set[str]:
    return {f.alias or n for n, f in model.model_fields.items()}


def documented(text: str | None = None) -> dict[str, set[str]]:
    """Heading path (every backticked path in a heading) -> keys of the table below it."""
    out: dict[str, set[str]] = {}
    current: list[str] = []
    lines = (text if text is not None else DOC.read_text(encoding="utf-8")).splitlines()
    for line in lines:
        if line.startswith("#"):
            current = re.findall(r"`([^`]+)`", line)
            continue
        m = re.match(r"\|\s*`([A-Za-z_]+)`\s*\|", line)
        if m and current:
            for path in current:
                out.setdefault(path, set()).add(m.group(1))
    return out


def _short(path: str) -> set[str]:
    """A path and its tails (``processors.<name>.target.pubsub`` is also ``target.pubsub``),
    so a section shared by several places may be headed by the shared tail."""
    parts = path.split(".")
    return {".".join(parts[i:]) for i in range(len(parts))}


def problems(text: str | None = None) -> list[str]:
    """Differences between the doc's tables and the models' fields."""
    doc = documented(text)
    out: list[str] = []
    for model, paths in model_paths().items():
        names = set().union(*(_short(p) for p in paths)) | paths
        found = [p for p in doc if p in names]
        if not found:
            out.append(f"{model.__name__}: no section headed by one of {sorted(paths)}")
            continue
        for p in found:
            if doc[p] != model_keys(model):
                out.append(
                    f"{model.__name__} under `{p}`: missing {sorted(model_keys(model) - doc[p])}, "
                    f"extra {sorted(doc[p] - model_keys(model))}"
                )
    return out


def test_every_model_has_a_table_listing_exactly_its_keys() -> None:
    """For each model of routes.yaml, a heading names one of its paths and the table under
    it lists exactly the model's keys (aliases as written in YAML)."""
    assert problems() == []


def test_the_comparison_sees_a_missing_or_extra_key() -> None:
    """The check has teeth: dropping the `games` row, or adding an unknown key, fails."""
    text = DOC.read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| `games` |"))
    assert problems(text.replace(row + "\n", "")) == [
        "LookbackSpec under `processors.<name>.lookback`: missing ['games'], extra []"
    ]
    extra = text.replace(row, row + "\n| `weeks` | integer | none | not a key |")
    assert problems(extra) == [
        "LookbackSpec under `processors.<name>.lookback`: missing [], extra ['weeks']"
    ]


def test_doc_states_the_semantics_a_new_user_asks_about() -> None:
    """The reference says how entity types combine, that days: 7 covers 8 dates, when
    relations are used implicitly, that thresholds are inclusive, and gives the threshold
    one key (max_entities) and one reason code (fallback_threshold)."""
    text = DOC.read_text(encoding="utf-8")
    for phrase in (
        "### Several entity types in one event",
        "**`days: 7` covers 8 dates.**",
        "**implicitly**",
        "Inclusive: exactly `max_entities` ids is still entity scope.",
        "## One name per concept",
    ):
        assert phrase in text, phrase
    keys = set().union(*documented().values())
    assert "max_entities" in keys and "fallback_threshold" not in keys
