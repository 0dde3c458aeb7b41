"""Load ``routes.yaml`` into a compiled registry plus its relation data.

Public API (stable; other modules depend on it):

* ``load_config(path, *, with_relations=True) -> LoadedConfig`` -- raises ConfigError.
* ``load_config_text(text, *, file="<string>", base_dir=None, with_relations=True)``.
* ``check_config(path, ...) -> CheckResult`` / ``check_config_bytes(data, ...)`` -- never
  raise for bad input: every problem is a positioned :class:`ConfigIssue`
  (``scoperouter validate`` uses these).

Pipeline: size limit (1 MiB) -> UTF-8 decode -> :mod:`yaml_positions` (safe, bounded,
duplicate keys rejected, positions for every node) -> pydantic models (errors mapped back
to line/column through their ``loc``) -> :mod:`semantic` checks, warnings silenced by
:mod:`ignores` -> compile -> relation data (CSV files, only with ``with_relations``). A
YAML syntax error, or a schema error that re-indenting one line fixes, points at the line
that moved, with a hint (:mod:`indentation`). Each stage runs only when the previous one
passed, so one fault gives one message rather than a cascade.
"""

from __future__ import annotations

import types as _types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from scoperouter.errors import ConfigError, ConfigIssue
from scoperouter.processor_registry import ignores, indentation, semantic
from scoperouter.processor_registry.compiled import CompiledRegistry, compile_registry
from scoperouter.processor_registry.models import DURATION_PATTERN, RoutesSpec
from scoperouter.processor_registry.relations import (
    EMPTY_RELATIONS,
    InMemoryRelations,
    load_csv_relations,
)
from scoperouter.processor_registry.yaml_positions import (
    MAX_BYTES,
    Pos,
    PositionedDocument,
    YamlLoadError,
    YamlPath,
    decode_utf8,
    load_positioned,
)

SUPPORTED_VERSIONS = (1,)
EXTENSION_PREFIX = "x-"  # top-level keys ignored by validation (YAML anchors live there)


@dataclass(frozen=True)
class LoadedConfig:
    registry: CompiledRegistry
    relations: InMemoryRelations
    warnings: tuple[ConfigIssue, ...] = ()


@dataclass(frozen=True)
class CheckResult:
    """Outcome of checking one registry file: every issue, and the loaded config if valid."""

    file: str
    issues: tuple[ConfigIssue, ...]
    config: LoadedConfig | None = None
    silenced: tuple[ConfigIssue, ...] = ()  # warnings silenced by an ignore (see ignores)

    @property
    def errors(self) -> tuple[ConfigIssue, ...]:
        return tuple(i for i in self.issues if i.severity == "error")

    @property
    def warnings(self) -> tuple[ConfigIssue, ...]:
        return tuple(i for i in self.issues if i.severity == "warning")

    @property
    def valid(self) -> bool:
        return not self.errors


def _relation_dir(registry: CompiledRegistry) -> Path | None:
    """``relation_data.csv.dir`` (relative to the registry file), None without relation_data."""
    if registry.spec.relation_data is None:
        return None
    d = Path(registry.spec.relation_data.csv.dir)
    return d if d.is_absolute() else registry.base_dir / d


def relation_csv_paths(registry: CompiledRegistry) -> dict[str, Path]:
    """The files :func:`load_relations` reads: ``<dir>/<relation>.csv`` per base relation
    (empty without ``relation_data``). ``serve`` watches them for hot reload."""
    d = _relation_dir(registry)
    if d is None:
        return {}
    return {n: d / f"{n}.csv" for n, r in registry.relations.items() if not r.inverse}


def relation_watch_paths(registry: CompiledRegistry) -> tuple[Path, ...]:
    """The files whose change makes ``serve`` reload the relation data: the ``ready_file``
    of ``relation_data.csv`` alone when it names one (its writer touches it once every CSV
    is in place), else every CSV (:func:`relation_csv_paths`); empty without relation_data."""
    d = _relation_dir(registry)
    if d is None:
        return ()
    assert registry.spec.relation_data is not None
    ready = registry.spec.relation_data.csv.ready_file
    return (d / ready,) if ready else tuple(relation_csv_paths(registry).values())


def load_relations(registry: CompiledRegistry) -> InMemoryRelations:
    """Read the relation data a compiled registry points at. Raises ConfigError."""
    d = _relation_dir(registry)
    if d is None:
        return EMPTY_RELATIONS
    base = {n: (r.from_type, r.to_type) for n, r in registry.relations.items() if not r.inverse}
    inv = {n: r.base for n, r in registry.relations.items() if r.inverse}
    inv_types = {n: (r.from_type, r.to_type) for n, r in registry.relations.items() if r.inverse}
    return load_csv_relations(d, base, inv, inv_types)


# ----------------------------------------------------------------------------- schema errors


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
        if pattern in _PATTERN_HINTS:
            return _PATTERN_HINTS[pattern].format(v=_short(inp))
        if "\\." in pattern:
            return f"invalid source name {_short(inp)}: expected dataset.table"
        return f"{msg} (got {_short(inp)})"
    if t == "greater_than" and ctx.get("gt") == 0:
        return f"must be positive (got {_short(inp)})"
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


# ----------------------------------------------------------------------------- pipeline


_TOP = Pos(1, 1)


def _issue(
    file: str, message: str, pos: Pos = _TOP, path: YamlPath = (), code: str = "invalid"
) -> ConfigIssue:
    return ConfigIssue(message, file=file, line=pos.line, column=pos.column, path=path, code=code)


def _check_doc(
    doc: PositionedDocument,
    *,
    file: str,
    base_dir: Path,
    with_relations: bool,
    env: Mapping[str, str] | None,
    text: str | None = None,
    ignore: Iterable[str] = (),
) -> CheckResult:
    data = doc.data
    if data is None:
        return CheckResult(
            file,
            (
                _issue(
                    file,
                    "empty file: expected a mapping with 'version' and 'processors'",
                    code="empty",
                ),
            ),
        )
    if not isinstance(data, dict):
        return CheckResult(
            file,
            (
                _issue(
                    file,
                    f"expected a mapping at the top level, got {_short(data)}",
                    doc.locate(()),
                    code="schema",
                ),
            ),
        )
    version = data.get("version")
    if "version" in data and not (type(version) is int and version in SUPPORTED_VERSIONS):
        return CheckResult(
            file,
            (
                _issue(
                    file,
                    f"unsupported version {_short(version)}: this scoperouter reads version "
                    f"{', '.join(map(str, SUPPORTED_VERSIONS))}",
                    doc.locate(("version",)),
                    ("version",),
                    code="version",
                ),
            ),
        )
    # top-level ``x-...`` keys are free-form extensions (e.g. anchors shared by processors)
    data = {k: v for k, v in data.items() if not k.startswith(EXTENSION_PREFIX)}
    try:
        spec = RoutesSpec.model_validate(data)
    except ValidationError as exc:
        return CheckResult(file, tuple(_schema_issues(exc, doc, file, text)))
    found = ignores.apply(
        semantic.check(
            spec, doc, file=file, base_dir=base_dir, check_files=with_relations, env=env
        ),
        text=text,
        file=file,
        codes=(*spec.validate_.ignore, *ignore),
    )
    issues, silenced = found.issues, found.silenced
    if any(i.severity == "error" for i in issues):
        return CheckResult(file, tuple(issues), silenced=silenced)
    try:
        reg = compile_registry(spec, file=file, base_dir=base_dir)
        rel = load_relations(reg) if with_relations else EMPTY_RELATIONS
    except ConfigError as exc:
        fixed = [
            i
            if i.file != "<string>"
            else ConfigIssue(
                i.message,
                file=file,
                line=doc.locate(i.path).line,
                column=doc.locate(i.path).column,
                path=i.path,
                severity=i.severity,
                code=i.code,
            )
            for i in exc.issues
        ]
        return CheckResult(file, (*issues, *fixed), silenced=silenced)
    warnings = tuple(issues)
    return CheckResult(file, warnings, LoadedConfig(reg, rel, warnings), silenced)


def check_config_bytes(
    data: bytes | str,
    *,
    file: str = "<string>",
    base_dir: Path | None = None,
    with_relations: bool = True,
    env: Mapping[str, str] | None = None,
    ignore: Iterable[str] = (),
) -> CheckResult:
    """Check a registry given as bytes or text. Never raises for bad input. ``ignore``:
    warning codes silenced on top of the file's own ``validate.ignore``."""
    raw = data.encode("utf-8", errors="surrogatepass") if isinstance(data, str) else data
    if len(raw) > MAX_BYTES:
        return CheckResult(
            file,
            (
                _issue(
                    file,
                    f"file is {len(raw)} bytes; the limit is {MAX_BYTES} (1 MiB)",
                    code="too_large",
                ),
            ),
        )
    try:
        text = decode_utf8(raw)
        doc = load_positioned(text)
    except YamlLoadError as exc:
        if exc.code == "yaml_syntax":
            hint = indentation.syntax_hint(text, exc.pos.line, _schema_valid)
            if hint is not None:
                return CheckResult(file, (_issue(file, exc.message + hint.text, hint.pos),))
        return CheckResult(file, (_issue(file, exc.message, exc.pos, exc.path, exc.code),))
    return _check_doc(
        doc,
        file=file,
        base_dir=base_dir if base_dir is not None else Path("."),
        with_relations=with_relations,
        env=env,
        text=text,
        ignore=ignore,
    )


def check_config(
    path: str | Path,
    *,
    with_relations: bool = True,
    env: Mapping[str, str] | None = None,
    ignore: Iterable[str] = (),
) -> CheckResult:
    """Check a registry file. Never raises for bad input (unreadable files included)."""
    p = Path(path)
    file = str(path)
    try:
        with p.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except IsADirectoryError:
        return CheckResult(file, (_issue(file, "is a directory, not a file", code="io"),))
    except OSError as exc:
        return CheckResult(file, (_issue(file, f"cannot read: {exc.strerror}", code="io"),))
    if len(raw) > MAX_BYTES:
        return CheckResult(
            file,
            (_issue(file, f"file larger than {MAX_BYTES} bytes (1 MiB)", code="too_large"),),
        )
    return check_config_bytes(
        raw, file=file, base_dir=p.parent, with_relations=with_relations, env=env, ignore=ignore
    )


def _loaded(result: CheckResult) -> LoadedConfig:
    if result.config is None or not result.valid:
        raise ConfigError(result.errors + result.warnings or result.issues, file=result.file)
    return result.config


def load_config_text(
    text: str, *, file: str = "<string>", base_dir: Path | None = None, with_relations: bool = True
) -> LoadedConfig:
    """Load a registry from text. Raises ConfigError with every error (and warning)."""
    return _loaded(
        check_config_bytes(text, file=file, base_dir=base_dir, with_relations=with_relations)
    )


def load_config(path: str | Path, *, with_relations: bool = True) -> LoadedConfig:
    """Load a registry file. Raises ConfigError with every error (and warning)."""
    return _loaded(check_config(path, with_relations=with_relations))
