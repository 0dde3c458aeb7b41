"""Load ``routes.yaml`` into a compiled registry plus its relation data.

Invariant: each stage runs only when the previous one passed, so one fault gives one
message rather than a cascade; ``check_*`` never raise for bad input, ``load_*`` raise
ConfigError carrying every error (and warning).

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
that moved, with a hint (:mod:`indentation`). Schema errors are mapped to positions by
:mod:`schema_errors`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from scoperouter.errors import ConfigError, ConfigIssue
from scoperouter.processor_registry import ignores, indentation, semantic
from scoperouter.processor_registry.compiled import CompiledRegistry, compile_registry
from scoperouter.processor_registry.models import RoutesSpec
from scoperouter.processor_registry.relations import (
    EMPTY_RELATIONS,
    InMemoryRelations,
    load_csv_relations,
)
from scoperouter.processor_registry.schema_errors import (
    EXTENSION_PREFIX as EXTENSION_PREFIX,  # re-exported: scoperouter.schemas imports it here
)
from scoperouter.processor_registry.schema_errors import _schema_issues, _schema_valid, _short
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
    daily = {n for n, r in registry.relations.items() if r.every_day and not r.inverse}
    return load_csv_relations(d, base, inv, inv_types, every_day=daily)


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
    check_code: bool = False,
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
            spec,
            doc,
            file=file,
            base_dir=base_dir,
            check_files=with_relations,
            env=env,
            check_code=check_code,
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
    # relation data warnings point into the CSV files, so only a code silences them (an
    # ignore comment is a line of routes.yaml)
    codes = {*spec.validate_.ignore, *ignore}
    for w in rel.warnings:
        if w.code in codes:
            silenced = (*silenced, w)
        else:
            issues = (*issues, w)
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
    check_code: bool = False,
) -> CheckResult:
    """Check a registry given as bytes or text. Never raises for bad input. ``ignore``:
    warning codes silenced on top of the file's own ``validate.ignore``; ``check_code``: warn
    (``lineage_code_missing``) for a ``lineage.code`` glob matching no file."""
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
        check_code=check_code,
    )


def check_config(
    path: str | Path,
    *,
    with_relations: bool = True,
    env: Mapping[str, str] | None = None,
    ignore: Iterable[str] = (),
    check_code: bool = False,
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
        raw,
        file=file,
        base_dir=p.parent,
        with_relations=with_relations,
        env=env,
        ignore=ignore,
        check_code=check_code,
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
