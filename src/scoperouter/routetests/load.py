"""Finding and loading route-test files, checked against the registry they test.

Invariant: a file either loads completely -- every case with its events normalised, each
from a source the registry names (unless the case expects ``unknown_source``), its as-of
date fixed and every processor it names known to the registry -- or raises one
:class:`ConfigError` listing every problem at its ``FILE:LINE:COL`` and YAML path. Nothing
here depends on the clock: a case's as-of date is its own, the file's, or its event's date.

Discovery (``scoperouter test [PATH...]``): a file is taken as it is; a directory stands
for its ``routes.tests.yaml`` and ``tests/routes/*.yaml`` (``.yml`` too: the pre-commit hook
fires on both spellings); no PATH means the current directory. The registry is ``--config``, else the file's ``config:`` (relative to the
file), else the nearest ``routes.yaml`` in the file's directory or above.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from scoperouter.errors import ConfigError, ConfigIssue, EventError
from scoperouter.messages.models import Event
from scoperouter.messages.normalize import normalize_event, parse_event_bytes
from scoperouter.processor_registry import semantic
from scoperouter.processor_registry.loader import LoadedConfig, load_config
from scoperouter.processor_registry.yaml_positions import (
    PositionedDocument,
    YamlLoadError,
    YamlPath,
    decode_utf8,
    load_positioned,
)
from scoperouter.routetests.spec import RouteTest, RouteTestFile

DEFAULT_FILE = "routes.tests.yaml"
DEFAULT_FILES = (DEFAULT_FILE, "routes.tests.yml")  # .yml is run too, never skipped in silence
DEFAULT_DIR = Path("tests") / "routes"
REGISTRY_NAME = "routes.yaml"


@dataclass(frozen=True)
class LoadedCase:
    spec: RouteTest
    index: int  # position in the file's tests
    line: int  # of the case in the file
    events: tuple[tuple[str, Event, date], ...]  # (label, event, as_of)


@dataclass(frozen=True)
class LoadedFile:
    path: Path
    config_path: Path
    config: LoadedConfig
    cases: tuple[LoadedCase, ...]


def discover(paths: Sequence[str], cwd: Path | None = None) -> list[Path]:
    """The route-test files PATH arguments stand for (see the module docstring)."""
    base = cwd or Path.cwd()
    found: list[Path] = []
    issues: list[ConfigIssue] = []
    for arg in paths or ["."]:
        p = base / arg
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            here = [p / n for n in DEFAULT_FILES if (p / n).is_file()]
            here += sorted(f for ext in ("*.yaml", "*.yml") for f in (p / DEFAULT_DIR).glob(ext))
            if not here:
                issues.append(
                    ConfigIssue(
                        f"no route tests in {arg}: expected {DEFAULT_FILE} or {DEFAULT_DIR}/*.yaml",
                        file=arg,
                        code="no_tests",
                    )
                )
            found += here
        else:
            issues.append(ConfigIssue(f"no such file or directory: {arg}", file=arg, code="io"))
    if issues:
        raise ConfigError(issues)
    unique = list(dict.fromkeys(p.resolve() for p in found))
    return [_relative(p, base) for p in unique]


def _relative(p: Path, base: Path) -> Path:
    try:
        return p.relative_to(base.resolve())
    except ValueError:
        return p


def registry_for(test_file: Path, spec: RouteTestFile, override: str | None) -> Path:
    """The registry a test file tests (see the module docstring)."""
    if override:
        return Path(override)
    if spec.config:
        return test_file.parent / spec.config
    for d in [test_file.parent.resolve(), *test_file.parent.resolve().parents]:
        if (d / REGISTRY_NAME).is_file():
            return _relative(d / REGISTRY_NAME, Path.cwd())
    raise ConfigError(
        f"no {REGISTRY_NAME} in {test_file.parent} or above: set 'config:' or pass --config",
        file=str(test_file),
    )


def _issue(
    file: Path, doc: PositionedDocument, path: YamlPath, message: str, *, key: bool = False
) -> ConfigIssue:
    pos = doc.locate(path, key=key)
    return ConfigIssue(message, file=str(file), line=pos.line, column=pos.column, path=path)


def _schema_issues(file: Path, doc: PositionedDocument, exc: ValidationError) -> list[ConfigIssue]:
    out: list[ConfigIssue] = []
    for err in exc.errors():
        path: YamlPath = tuple(
            p for p in err["loc"] if isinstance(p, int | str) and not str(p).startswith("function-")
        )
        # a union's branch name (dict[str,any], str) is not part of the YAML path
        path = tuple(p for p in path if not (isinstance(p, str) and ("[" in p or p == "str")))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = f"unknown key {path[-1]!r}" if path else msg
        out.append(_issue(file, doc, path, msg))
    # one message per place is enough (unions report each branch)
    unique = {(i.line, i.column, i.message): i for i in out}
    return sorted(unique.values(), key=lambda i: (i.line or 0, i.column or 0))


def parse_file(path: Path) -> tuple[RouteTestFile, PositionedDocument]:
    """The file's models and positions. Raises ConfigError (positioned)."""
    try:
        doc = load_positioned(decode_utf8(path.read_bytes()))
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=str(path)) from None
    except YamlLoadError as exc:
        raise ConfigError(
            [
                ConfigIssue(
                    exc.message,
                    file=str(path),
                    line=exc.pos.line,
                    column=exc.pos.column,
                    path=exc.path,
                    code=exc.code,
                )
            ]
        ) from None
    if not isinstance(doc.data, dict):
        raise ConfigError("expected a mapping with 'tests'", file=str(path))
    try:
        return RouteTestFile.model_validate(doc.data), doc
    except ValidationError as exc:
        raise ConfigError(_schema_issues(path, doc, exc)) from None


RawEvent = tuple[str, YamlPath, bytes | dict[str, Any]]  # label, YAML path, the event


def _read_events(
    path: Path, at: YamlPath, source: dict[str, Any] | list[dict[str, Any]] | str, many: bool
) -> list[RawEvent]:
    """The raw events of a case: inline ones, or from a JSON / JSON Lines file (relative to
    the test file)."""
    field = "events" if many else "event"
    if isinstance(source, dict):
        return [(field, (*at, field), source)]
    if isinstance(source, list):
        return [(f"events[{i}]", (*at, field, i), e) for i, e in enumerate(source)]
    data = (path.parent / source).read_bytes()
    if not many:
        return [(source, (*at, field), data)]
    return [
        (f"{source}:{n}", (*at, field), line)
        for n, line in enumerate(data.splitlines(), start=1)
        if line.strip()
    ]


def _states(case: RouteTest, reason: str) -> bool:
    """Whether an expectation of ``case`` names ``reason``."""
    wants = [*case.expect.values(), *(case.cascade or {}).values()]
    return any(w.reason == reason for w in wants)


def _unknown_source(label: str, source: str, cfg: LoadedConfig) -> str:
    """The error of an event from a source the registry names nowhere: every processor would
    skip it (``unknown_source``), so a case expecting skips would pass on a typo."""
    names = sorted(cfg.registry.sources)
    hint = semantic.close_match(source, names)
    if hint is None:  # a bare table name: compare with the sources' table names
        tables = {n.rsplit(".", 1)[-1]: n for n in names}
        table = semantic.close_match(source.rsplit(".", 1)[-1], list(tables))
        hint = tables[table] if table is not None else None
    more = f" (did you mean {hint!r}?)" if hint else ""
    return (
        f"{label}: the registry names no source {source!r}{more}: every processor would skip "
        "it (unknown_source); fix the event, declare the source under 'sources:' to test "
        "that it routes nothing, or expect reason: unknown_source"
    )


def _load_case(
    path: Path,
    doc: PositionedDocument,
    index: int,
    case: RouteTest,
    file_as_of: date | None,
    cfg: LoadedConfig,
    issues: list[ConfigIssue],
) -> LoadedCase:
    at: YamlPath = ("tests", index)
    names = cfg.registry.processor_names
    for key in ("expect", "cascade"):
        for proc in getattr(case, key) or {}:
            if proc not in cfg.registry.processors:
                hint = semantic.close_match(proc, list(names))
                more = f" (did you mean {hint!r}?)" if hint else ""
                issues.append(
                    _issue(
                        path, doc, (*at, key, proc), f"unknown processor {proc!r}{more}", key=True
                    )
                )
    many = case.event is None
    source = case.events if many else case.event
    assert source is not None  # the model requires one of them
    events: list[tuple[str, Event, date]] = []
    try:
        raws = _read_events(path, at, source, many)
    except OSError as exc:
        field = "events" if many else "event"
        issues.append(_issue(path, doc, (*at, field), f"cannot read {source}: {exc.strerror}"))
        raws = []
    else:
        if not raws:  # an empty events file: the case would check nothing and pass
            issues.append(_issue(path, doc, (*at, "events"), f"{source} holds no event"))
    for label, where, raw in raws:
        try:
            if isinstance(raw, bytes):
                ev = parse_event_bytes(raw, cfg.registry)
            else:
                ev = normalize_event(raw, cfg.registry)
        except EventError as exc:
            issues.append(_issue(path, doc, where, f"{label}: invalid event: {exc}"))
            continue
        if ev.source not in cfg.registry.sources and not _states(case, "unknown_source"):
            issues.append(_issue(path, doc, where, _unknown_source(label, ev.source, cfg)))
            continue
        own = ev.game_date or ev.end_date
        as_of = case.as_of or file_as_of or own
        assert as_of is not None  # a normalised event has a game_date or a range
        events.append((label, ev, as_of))
    line = doc.locate(at).line
    return LoadedCase(case, index, line, tuple(events))


def load_file(
    path: Path, override: str | None = None, cache: dict[Path, LoadedConfig] | None = None
) -> LoadedFile:
    """A route-test file with its registry loaded. Raises ConfigError (every problem)."""
    spec, doc = parse_file(path)
    reg_path = registry_for(path, spec, override)
    cache = cache if cache is not None else {}
    key = reg_path.resolve()
    if key not in cache:
        cache[key] = load_config(reg_path)
    cfg = cache[key]
    issues: list[ConfigIssue] = []
    cases = tuple(
        _load_case(path, doc, i, c, spec.as_of, cfg, issues) for i, c in enumerate(spec.tests)
    )
    if issues:
        raise ConfigError(issues)
    return LoadedFile(path, reg_path, cfg, cases)
