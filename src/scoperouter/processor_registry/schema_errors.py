"""Map pydantic validation errors of ``routes.yaml`` back to positioned schema issues.

Invariant: every pydantic error becomes one :class:`ConfigIssue` (code ``schema``) at the
line/column its ``loc`` points to, sorted by position; only repeats and cascades are left
out, on purpose: a ``missing`` key whose misspelling is already reported as an unknown key,
a ``too_short`` on a collection whose item failed, and the same message at the same path.
The first few issues get a re-indentation hint (:mod:`indentation`), and then point at the
line to move, when moving one line makes the document pass :func:`_schema_valid`.
:mod:`loader` runs this only after the YAML parsed.
"""

from __future__ import annotations

import types as _types
from collections.abc import Mapping
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from scoperouter.errors import ConfigIssue
from scoperouter.processor_registry import indentation, semantic
from scoperouter.processor_registry.model_base import (
    FIELD_NAME_PATTERN,
    INT4_MAX,
    POSITIVE_DURATION_PATTERN,
    SECONDS_PATTERN,
    field_name_problem,
)
from scoperouter.processor_registry.models import DURATION_PATTERN, RoutesSpec
from scoperouter.processor_registry.yaml_positions import PositionedDocument, YamlPath

EXTENSION_PREFIX = "x-"  # top-level keys ignored by validation (YAML anchors live there)


def _unwrap(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, _types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _model_at(path: YamlPath) -> type[BaseModel] | None:
    """The model class whose keys live at ``path`` in the document (None if not a model)."""
    tp: Any = RoutesSpec
    for part in path:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            nxt = None
            for name, f in tp.model_fields.items():
                if part in (name, f.alias):
                    nxt = f.annotation
                    break
            if nxt is None:
                return None
            tp = nxt
        elif get_origin(tp) is tuple and isinstance(part, int):
            tp = get_args(tp)[0]
        elif get_origin(tp) is dict and isinstance(part, str):
            tp = get_args(tp)[1]
        else:
            return None
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _keys_of(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def _short(value: object) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _clean_loc(err: ErrorDetails, data: object) -> tuple[YamlPath, bool]:
    """The YAML path of a pydantic error (internal loc parts dropped) and whether it is
    about a mapping key rather than a value."""
    path: list[str | int] = []
    cur: object = data
    is_key = False
    loc = err["loc"]
    for n, part in enumerate(loc):
        if part == "[key]":
            is_key = True
            continue
        if isinstance(cur, dict) and isinstance(part, str) and part in cur:  # noqa: SIM114
            cur = cur[part]
            path.append(part)
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            cur = cur[part]
            path.append(part)
        elif n == len(loc) - 1 and err["type"] == "missing":
            path.append(part)
    return tuple(path), is_key or err["type"] == "extra_forbidden"


_PATTERN_HINTS = {
    DURATION_PATTERN: "invalid duration {v}: expected a number and a unit (ms, s, m, h, d), "
    "e.g. 0s, 30s, 2m, 1h",
    POSITIVE_DURATION_PATTERN: "invalid duration {v}: expected a number above zero and a unit "
    "(ms, s, m, h, d), e.g. 500ms, 30s, 2m",
    SECONDS_PATTERN: "invalid duration {v}: expected a number of seconds, or a number and a "
    "unit (ms, s, m, h, d), e.g. 0, 30, 30s, 2m",
    r"^[A-Za-z_][A-Za-z0-9_]*$": "invalid name {v}: use letters, digits and underscores, "
    "not starting with a digit",
}


def _message(err: ErrorDetails, path: YamlPath) -> str:
    t = err["type"]
    inp = err.get("input")
    ctx: Mapping[str, Any] = err.get("ctx") or {}
    msg = err["msg"]
    if t == "missing":
        return f"missing required key {path[-1]!r}"
    if t == "extra_forbidden":
        name = str(path[-1]) if path else "?"
        model = _model_at(path[:-1])
        hint = semantic.did_you_mean(name, _keys_of(model)) if model else ""
        if model and not hint.startswith(" (did"):
            hint = f" (allowed: {', '.join(_keys_of(model))})"
        return f"unknown key {name!r}{hint}"
    if t == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        if pattern == FIELD_NAME_PATTERN and isinstance(inp, str):
            return field_name_problem(inp)
        if pattern in _PATTERN_HINTS:
            return _PATTERN_HINTS[pattern].format(v=_short(inp))
        if "\\." in pattern:
            return f"invalid source name {_short(inp)}: expected dataset.table"
        return f"{msg} (got {_short(inp)})"
    if t == "greater_than" and ctx.get("gt") == 0:
        return f"must be positive (got {_short(inp)})"
    if t == "less_than_equal" and ctx.get("le") == INT4_MAX:
        return (
            f"must be at most {INT4_MAX} (2^31 - 1: the PostgreSQL state store keeps it in "
            f"a 32-bit integer column) (got {_short(inp)})"
        )
    if t == "value_error":
        return msg.removeprefix("Value error, ")
    if t in ("int_type", "int_parsing", "int_from_float"):
        return f"expected an integer, got {_short(inp)}"
    if t in ("float_type", "float_parsing"):
        return f"expected a number, got {_short(inp)}"
    if t == "too_short" and isinstance(inp, dict | list) and not inp:
        return "must not be empty"
    return f"{msg} (got {_short(inp)})"


def _schema_issues(
    exc: ValidationError, doc: PositionedDocument, file: str, text: str | None = None
) -> list[ConfigIssue]:
    errs = [(err, *_clean_loc(err, doc.data)) for err in exc.errors()]
    # a misspelled key: report "unknown key 'procesors' (did you mean 'processors'?)" once,
    # not also "missing required key 'processors'"
    misspelled: set[YamlPath] = set()
    for err, path, _ in errs:
        if err["type"] == "extra_forbidden" and path:
            model = _model_at(path[:-1])
            if model is not None:
                close = semantic.close_match(str(path[-1]), _keys_of(model))
                if close is not None:
                    misspelled.add((*path[:-1], close))
    # "should have at least 1 item" on a collection whose item failed is a cascade
    deeper = {path[:n] for _, path, _ in errs for n in range(len(path))}
    out: list[ConfigIssue] = []
    seen: set[tuple[YamlPath, str]] = set()
    for err, path, is_key in errs:
        if err["type"] == "missing" and path in misspelled:
            continue
        if err["type"] == "too_short" and path in deeper:
            continue
        message = _message(err, path)
        if (path, message) in seen:
            continue
        seen.add((path, message))
        pos = doc.locate(path, key=is_key)
        if text is not None and len(out) < _HINTED_SCHEMA_ERRORS:
            hint = indentation.schema_hint(text, pos.line, _schema_valid)
            if hint is not None:
                message, pos = message + hint.text, hint.pos
        out.append(
            ConfigIssue(
                message,
                file=file,
                line=pos.line,
                column=pos.column,
                path=path,
                code="schema",
            )
        )
    out.sort(key=lambda i: (i.line or 0, i.column or 0))
    return out


_HINTED_SCHEMA_ERRORS = 3  # re-indentation is tried for the first few schema errors only


def _schema_valid(data: object) -> bool:
    """Whether ``data`` (a parsed registry) passes the pydantic models."""
    if not isinstance(data, dict):
        return False
    try:
        RoutesSpec.model_validate(
            {k: v for k, v in data.items() if not str(k).startswith(EXTENSION_PREFIX)}
        )
    except ValidationError:
        return False
    return True
