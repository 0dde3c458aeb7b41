"""Target formats: what a target sends for a trigger -- the SPEC push envelope, the bare
trigger, or a declared mapping into a service's own contract (``target.mapping``).

Invariant: the same function (:func:`build_shaper`) compiles a target's mapping for
``validate`` (:func:`target_issues`, every problem with its YAML path) and for the sinks,
against one table of trigger field types (:func:`trigger_fields`), so a mapping that
validates renders for every trigger the router can fire -- the only render-time failures
are a ``$lookup`` miss without a default, a ``$join`` item holding the separator (it
would split back into other ids) and a header value taking a control character from a
trigger field (every literal a header may hold is checked when it compiles), which
:class:`~template.RenderError` reports.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from scoperouter.processor_registry.models import RoutesSpec, TargetFormat, TargetSpec
from scoperouter.processor_registry.template import (
    ABSENT,
    ARRAY,
    BOOLEAN,
    NULL,
    NUMBER,
    STRING,
    Node,
    Path,
    RenderError,
    T,
    TemplateError,
    TemplateIssue,
    Type,
    compile_template,
    render,
)

# Headers the HTTP client owns; a mapping may not set them.
RESERVED_HEADERS = frozenset({"content-type", "content-length", "host", "transfer-encoding"})
DATE_GRANULARITY = "date"
# what an HTTP header value may not hold: a control character other than tab (RFC 9110
# section 5.5; header injection) -- what aiohttp refuses when it writes the request
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def trigger_fields(
    processors: Iterable[str], entity_types: Iterable[str] | None, date_field: str = "game_date"
) -> dict[str, Type]:
    """The fields of a SPEC section 3 trigger as sent (``Trigger.wire()``) with their JSON
    types, for the processors that use a target: the date under the registry's
    ``date_field`` (plus ``date_field`` itself when it is not ``game_date``); reasons are
    those of a run decision. ``entity_types``: the users' entity granularities (none: every
    user is date-granular, so ``entity_type`` is always null); None when the users are
    not known (a fallback sink), and with no processors their names are not known either."""
    from scoperouter.router.decisions import REASON_ORDER, SKIP_REASONS  # no import cycle

    procs = frozenset(processors)
    renamed = {"date_field": T(STRING, values=frozenset({date_field}))}
    return {
        "trigger_id": T(STRING),
        "processor": T(STRING, values=procs or None),
        date_field: T(STRING),
        **(renamed if date_field != "game_date" else {}),
        "start_date": T(STRING),
        "end_date": T(STRING),
        "scope": T(STRING, values=frozenset({"entities", "date"})),
        "entity_type": _entity_type(entity_types),
        "entity_ids": T(ARRAY, NULL, items=frozenset({STRING})),
        "reason": T(STRING, values=frozenset(REASON_ORDER) - SKIP_REASONS),
        "caused_by": T(ARRAY, items=frozenset({STRING})),
        "correlation_id": T(STRING, NULL),
        "priority": T(STRING, values=frozenset({"normal", "critical"})),
        "fired_at": T(STRING, NULL),
    }


def _entity_type(entity_types: Iterable[str] | None) -> Type:
    """``entity_type``'s type: the users' granularities or null (entity scope only); with no
    entity-granular user every trigger has a date scope, so always null (known: no string
    value, and a ``$lookup`` keyed by it needs a default); open when the users are unknown."""
    if entity_types is None:
        return T(STRING, NULL)
    types = frozenset(entity_types)
    return T(STRING, NULL, values=types) if types else T(NULL, values=frozenset())


@dataclass(frozen=True)
class Shaper:
    """How one target turns a trigger into bytes (and HTTP headers)."""

    format: TargetFormat
    body: Node | None  # the mapping's body template (format 'mapping')
    headers: tuple[tuple[str, Node], ...] = ()
    wrap: bool = False  # HTTP: send inside the Pub/Sub push envelope

    def data(self, trigger_json: Mapping[str, Any], raw: bytes | None = None) -> bytes:
        """The JSON that is sent (or wrapped): the mapped body, else the trigger itself."""
        if self.body is None:
            return raw if raw is not None else _dumps(trigger_json)
        return _dumps(render(self.body, trigger_json))

    def header_values(self, trigger_json: Mapping[str, Any]) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, node in self.headers:
            v = render(node, trigger_json)
            if v is None:
                continue
            text = json.dumps(v) if isinstance(v, bool) else str(v)
            if _CONTROL.search(text):  # the HTTP client refuses it: never sendable
                raise RenderError(f"header {name!r}: a control character in its value")
            out[name] = text
        return out


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def build_shaper(
    target: TargetSpec,
    fields: Mapping[str, Type],
    *,
    literal_hook: Callable[[str, Path], str] | None = None,
    where: Path = (),
) -> Shaper:
    """Compile ``target``'s format. Raises :class:`TemplateError` whose issue paths are
    YAML paths below ``where`` (the target's own path)."""
    fmt = target.effective_format
    issues = []
    if fmt == "envelope" and target.http is None:
        issues.append(
            (
                (*where, "format"),
                f"format 'envelope' is for HTTP targets ({target.kind} sends "
                "the trigger as the message itself; use 'trigger' or 'mapping')",
            )
        )
    if target.mapping is None:
        _raise(issues)
        return Shaper(fmt, None, wrap=fmt == "envelope")
    m, mwhere = target.mapping, (*where, "mapping")
    if target.http is None:
        if m.headers:
            issues.append(
                ((*mwhere, "headers"), f"headers are for HTTP targets (not {target.kind})")
            )
        if m.envelope:
            issues.append(
                ((*mwhere, "envelope"), f"envelope is for HTTP targets (not {target.kind})")
            )
    body: Node | None = None
    try:
        body = compile_template(m.body, fields, literal_hook=literal_hook, base=(*mwhere, "body"))
    except TemplateError as exc:
        issues += [(i.path, i.message) for i in exc.issues]
    if body is not None and ABSENT in body.type.kinds:
        issues.append(
            ((*mwhere, "body"), "the body may be left out ($if without else at the root)")
        )
    headers: list[tuple[str, Node]] = []
    for name, tmpl in (m.headers or {}).items():
        hpath = (*mwhere, "headers", name)
        if name.lower() in RESERVED_HEADERS or (
            name.lower() == "authorization" and target.http is not None and target.http.audience
        ):
            issues.append((hpath, f"header {name!r} is set by scoperouter itself"))
            continue
        try:
            node = compile_template(tmpl, fields, literal_hook=literal_hook, base=hpath)
        except TemplateError as exc:
            issues += [(i.path, i.message) for i in exc.issues]
            continue
        if not node.type.only(STRING, NUMBER, BOOLEAN, NULL, ABSENT):
            issues.append((hpath, f"a header value is a string (this is {node.type.describe()})"))
        elif any(_CONTROL.search(text) for text in node.texts):
            # a literal the value may hold (${VAR} expanded: a constant, a $concat part, a
            # $lookup value...) the HTTP client would refuse on every trigger that sends it
            issues.append(
                (
                    hpath,
                    "a header value holds a control character other than tab (CR, LF, NUL, "
                    "ESC, DEL...: the HTTP client refuses it)",
                )
            )
        headers.append((name, node))
    _raise(issues)
    return Shaper("mapping", body, tuple(headers), wrap=m.envelope)


def _raise(issues: list[tuple[Path, str]]) -> None:
    if issues:
        raise TemplateError([TemplateIssue(p, msg) for p, msg in issues])


def target_users(spec: RoutesSpec) -> list[tuple[Path, TargetSpec, list[str]]]:
    """Every target in the registry with its YAML path and the processors that use it."""
    default_users = [n for n, p in spec.processors.items() if p.target is None]
    out: list[tuple[Path, TargetSpec, list[str]]] = [
        (("defaults", "target"), spec.defaults.target, default_users or list(spec.processors))
    ]
    for n, p in spec.processors.items():
        if p.target is not None:
            out.append((("processors", n, "target"), p.target, [n]))
    return out


def users_fields(spec: RoutesSpec, users: list[str]) -> dict[str, Type]:
    """The field table a target used by ``users`` is compiled against (by ``validate`` and
    by the sinks alike: a mapping that validates builds at ``serve``)."""
    grans = {spec.processors[u].granularity for u in users} - {DATE_GRANULARITY}
    return trigger_fields(users, grans, spec.date_field)


def target_of(spec: RoutesSpec, processor: str, target: TargetSpec) -> tuple[Path, list[str]]:
    """The YAML path and the users of ``target`` as ``processor``'s target: the processors
    sharing the default target when ``processor`` names none and ``target`` is it (as
    :func:`target_users` lists them), else the processor alone."""
    proc = spec.processors.get(processor)
    if proc is not None and proc.target is None and target == spec.defaults.target:
        for where, _t, users in target_users(spec)[:1]:
            return where, users
    return ("processors", processor, "target"), [processor]


def target_issues(spec: RoutesSpec) -> list[tuple[Path, str]]:
    """(YAML path, message) for every target whose format or mapping is wrong."""
    found: list[tuple[Path, str]] = []
    for where, target, users in target_users(spec):
        try:
            build_shaper(target, users_fields(spec, users), where=where)
        except TemplateError as exc:
            found += [(i.path, i.message) for i in exc.issues]
    return found
