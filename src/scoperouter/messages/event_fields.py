"""Reading one field of a raw event (SPEC section 3) for the normaliser
(:mod:`scoperouter.messages.normalize`, whose docstring states the rules).

Invariant: each reader returns the field's canonical value or raises the
:class:`~scoperouter.errors.EventError` (reason code, a one-line detail naming the field)
that rejects the event -- but the production time, which only informs, is never a rejection
(:func:`produced_time_of`: one that does not read is absent, and named); none keeps state beyond the :class:`Ctx` it is given, which carries
the event id into every error and bounds the entity ids read.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from typing import Any, cast

from scoperouter.errors import EventError, EventRejectReason
from scoperouter.messages.models import Priority, Status
from scoperouter.processor_registry.compiled import CompiledRegistry

MAX_EVENT_ENTITIES = 2000
MAX_ID_CHARS = 512
MAX_COUNT = 2**63 - 1  # a signed 64-bit integer: SQLite INTEGER, BigQuery INT64
DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
STATUSES: frozenset[str] = frozenset({"success", "partial", "no_data", "failed"})
PRIORITIES: frozenset[str] = frozenset({"normal", "critical"})
_MAX_DETAIL = 80


def short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."


class Ctx:
    """Carries the event id (once known) into every error raised, counts entity ids (past
    :data:`MAX_EVENT_ENTITIES` the rest is not even read: bounded work) and notes an id
    nobody can name (:func:`unnamed_id`)."""

    __slots__ = ("event_id", "ids", "unnamed")

    def __init__(self) -> None:
        self.event_id: str | None = None
        self.ids = 0
        self.unnamed = False

    def over_cap(self) -> bool:
        """Count one more distinct id; True past the cap (stop reading ids)."""
        self.ids += 1
        return self.ids > MAX_EVENT_ENTITIES

    def fail(self, reason: EventRejectReason, detail: str) -> EventError:
        return EventError(reason, detail, self.event_id)


def encodable(v: str) -> bool:
    """Whether UTF-8 can encode ``v`` (not when it holds a lone surrogate, a JSON
    ``\\udc00`` escape: no store, log or journal could keep it)."""
    if v.isascii():
        return True
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def utf8_text(v: str, key: str, ctx: Ctx) -> str:
    """``v`` when UTF-8 can encode it; a lone surrogate (a JSON ``\\udc00`` escape) cannot
    be stored, serialised or forwarded, so it is rejected here (``invalid_field``)."""
    if not v.isascii():
        try:
            v.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ctx.fail(
                "invalid_field",
                f"{key} is not valid UTF-8 text (lone surrogate at index {exc.start})",
            ) from None
    return v


def opt_str(raw: Mapping[str, Any], key: str, ctx: Ctx) -> str | None:
    v = raw.get(key)
    if v is None:
        return None
    if not isinstance(v, str) or not v.strip():
        raise ctx.fail("invalid_field", f"{key} must be a non-empty string, got {short(v)}")
    return utf8_text(v.strip(), key, ctx)


def opt_id(raw: Mapping[str, Any], key: str, ctx: Ctx) -> str | None:
    """An id-like field the router only carries along (``correlation_id``): stripped text;
    absent (None) when null or blank (empty, whitespace only, ``"\\xa0"`` included); a number
    as its text, as :func:`event_id_of` reads one (NaN or infinite: absent) -- never a reason
    to reject a routable event. Rejected only when no store could keep it: another JSON
    type, control characters as :func:`id_text` (NUL included: a PostgreSQL state store
    cannot keep it, and failed every batch the event joined), a lone surrogate."""
    v = raw.get(key)
    if isinstance(v, int | float) and not isinstance(v, bool):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        v = str(v)
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    if not isinstance(v, str):
        raise ctx.fail("invalid_field", f"{key} must be a string, got {short(v)}")
    v = utf8_text(v.strip(), key, ctx)
    if not v.isprintable() and any(ord(c) < 32 or 127 <= ord(c) < 160 for c in v):
        raise ctx.fail("invalid_field", f"{key} contains control characters")
    return v


def count_or_none(v: Any) -> int | None:
    """A usable count (an int, an integral float or a decimal string, from 0 to
    :data:`MAX_COUNT`), else None: never raises (``record_count`` never rejects an event).
    A count past a signed 64-bit integer is unusable like a negative one: no SQLite
    INTEGER or BigQuery INT64 column could store it (one such completion row failed every
    execution-log flush after it)."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int):
        n = v
    elif isinstance(v, float) and v.is_integer():
        n = int(v)
    elif isinstance(v, str) and (text := v.strip()).isdecimal():
        # isdecimal, not isdigit: "²" and "①" are digits int() does not read; and int()
        # still refuses a string past its digit limit (ValueError)
        try:
            n = int(text)
        except ValueError:
            return None
    else:
        return None
    return n if 0 <= n <= MAX_COUNT else None


def is_id_text(v: str) -> bool:
    """Whether ``v`` passes :func:`id_text`: at most :data:`MAX_ID_CHARS` characters, no
    control character (NUL included), UTF-8 text -- what every store can key (a trigger
    id a message names that is not such text cannot be one the router issued)."""
    if len(v) > MAX_ID_CHARS:
        return False
    if not v.isprintable() and any(ord(c) < 32 or 127 <= ord(c) < 160 for c in v):
        return False
    return encodable(v)


def id_text(v: str, key: str, ctx: Ctx) -> str:
    """An id exactly as sent (never stripped: ``" e1"`` and ``"e1"`` are two events), at
    most :data:`MAX_ID_CHARS` characters, without control characters (NUL included)."""
    if len(v) > MAX_ID_CHARS:
        raise ctx.fail("invalid_field", f"{key} is longer than {MAX_ID_CHARS} characters")
    if not v.isprintable() and any(ord(c) < 32 or 127 <= ord(c) < 160 for c in v):
        raise ctx.fail("invalid_field", f"{key} contains control characters")
    return utf8_text(v, key, ctx)


def body_digest(raw: Mapping[str, Any], n: int = 24) -> str:
    """The first ``n`` hex digits of the SHA-256 of ``raw``'s canonical JSON: equal for a
    redelivered copy (the same body), different for any other body."""
    canonical = json.dumps(
        raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    # surrogatepass: a lone surrogate in a field nobody reads must not break the id
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:n]


def execution_key(execution_id: str, raw: Mapping[str, Any]) -> str:
    """The id of a message known by its ``execution_id``: that id plus ``@`` and a digest
    of the body. Production's execution id names a *run*, not a message: a processor
    object keeps its ``run_id`` across ``run()`` calls (``analytics_base.py:472-475``) and
    publishes it as ``execution_id`` for each date it runs (``:1642``, ``:1644``; one
    cron job runs one object over many dates, ``bin/maintenance/phase3_backfill_check.py:
    152-169``), and it is 8 hex digits (``raw/processor_base.py:369``), so two runs'
    ids collide. By the id alone, distinct completions were dropped as duplicates; a
    redelivery (the same body) still gets the same id."""
    # top-level nulls are dropped (SPEC section 3): a body with one is the body without it
    body = {k: v for k, v in raw.items() if v is not None}
    return f"{execution_id}@{body_digest(body, 16)}"


def event_id_of(raw: Mapping[str, Any], message_id: str | None, ctx: Ctx) -> str:
    # an empty or missing id falls back to the next source; a number is used as text,
    # checked as a string id (a 3,000-digit one overflowed PostgreSQL's seen-ids key)
    for key in ("event_id", "execution_id"):
        v = raw.get(key)
        if isinstance(v, int | float) and not isinstance(v, bool):
            if isinstance(v, float) and not math.isfinite(v):
                # NaN, Infinity or a number beyond a double: as text ("nan", "inf") every
                # such event would share one id, all but the first answered as duplicates
                raise ctx.fail("invalid_field", f"{key} must be a finite number, got {v!r}")
            text = id_text(str(v), key, ctx)
        elif isinstance(v, str) and v.strip():
            text = id_text(v, key, ctx)
        elif v is not None and not isinstance(v, str):
            raise ctx.fail("invalid_field", f"{key} must be a string, got {short(v)}")
        else:
            continue
        return text if key == "event_id" else execution_key(text, raw)
    if message_id:  # as checked as an id sent in the event (a push message's id is text)
        return id_text(message_id, "message id", ctx)
    return "h-" + body_digest(raw)


def source_names(raw: Mapping[str, Any], ctx: Ctx) -> Iterator[str]:
    """The candidate source names in SPEC order, each checked only when it is reached."""
    for key in ("source", "source_table", "analytics_table"):
        name = opt_str(raw, key, ctx)
        if name is not None:
            yield name
    table = opt_str(raw, "output_table", ctx)
    if table is not None:
        dataset = opt_str(raw, "output_dataset", ctx)
        # production's raw processors already qualify their table_name: never prefix twice
        yield f"{dataset}.{table}" if dataset is not None and "." not in table else table


def source_of(raw: Mapping[str, Any], registry: CompiledRegistry, ctx: Ctx) -> str:
    first: str | None = None
    for name in source_names(raw, ctx):
        try:
            resolved = registry.resolve_source(name)
        except ValueError as exc:
            raise ctx.fail("ambiguous_source", str(exc)) from None
        if resolved is not None:
            return resolved
        first = first or name
    if first is not None:
        return first
    if raw.get("output_dataset") is not None:
        raise ctx.fail("missing_source", "output_dataset without output_table")
    raise ctx.fail(
        "missing_source",
        "no source: expected source, source_table, analytics_table or output_dataset+output_table",
    )


def parse_date(value: object, key: str, ctx: Ctx) -> date | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ctx.fail("invalid_date", f"{key} must be a YYYY-MM-DD string, got {short(value)}")
    text = value.strip()
    if not text:
        return None
    if not DATE_RE.fullmatch(text):
        raise ctx.fail("invalid_date", f"{key} {short(value)} is not YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ctx.fail("invalid_date", f"{key} {short(value)} is not a real date") from None


TIME_KEYS: tuple[str, ...] = ("produced_at", "timestamp")
"""Where an event says when it was produced, in the order they are read."""


def read_time(value: object) -> datetime | None:
    """``value`` as an aware time, or None when it is none the router reads (never raises):
    ISO 8601 / RFC 3339 text (RFC 3339's ``t`` and ``z`` in either case; a naive time is
    UTC) or epoch seconds (a number, not a boolean, that a datetime can hold)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(float(value), tz=UTC)
        except (OverflowError, OSError, ValueError):  # NaN, past year 9999 (epoch ms)
            return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith("z"):  # fromisoformat takes "Z" only (and any separator for "T")
        text = text[:-1] + "Z"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def produced_time_of(raw: Mapping[str, Any], unread: list[str] | None = None) -> datetime | None:
    """When ``raw`` was produced: the first of :data:`TIME_KEYS` that :func:`read_time` reads.
    The time only informs (the ledger's check that a completion predates its trigger's last
    firing, replay's clock), so one that does not read is absent -- never a rejection --
    and its key is appended to ``unread`` (the caller says so)."""
    for key in TIME_KEYS:
        v = raw.get(key)
        if v is None:
            continue
        at = read_time(v)
        if at is not None:
            return at
        if unread is not None:
            unread.append(key)
    return None


def unnamed_id(v: str) -> bool:
    """Whether an entity id names no entity anyone can look up: empty, blank, with spaces
    around it, or holding a character that is not printable (a control character -- NUL,
    which PostgreSQL cannot store --, a zero-width or other invisible format character, a
    no-break or line separator). Such an id matches no relation row (relation data is read
    stripped) and no processor's row (an identity-mapped processor would get it verbatim:
    ``player_lookup IN ('lebronjames ')``), so reading the others alone would narrow the
    scope (see :func:`merge_entities`)."""
    return not v or v[0].isspace() or v[-1].isspace() or not v.isprintable()


def _entity_id(i: object, key: str, ctx: Ctx) -> str | None:
    """One id of an entity list, or None when it names nobody (``null`` or
    :func:`unnamed_id`, noted in ``ctx``). Another JSON type is rejected."""
    if i is None:
        ctx.unnamed = True
        return None
    if not isinstance(i, str):
        raise ctx.fail("invalid_field", f"{key} must contain strings, got {short(i)}")
    if unnamed_id(utf8_text(i, key, ctx)):
        ctx.unnamed = True
        return None
    return i


def merge_entities(
    value: object, key: str, ctx: Ctx, into: dict[str, set[str]], flat: set[str] | None = None
) -> bool:
    """Merge one entity mapping into ``into`` (a flat list of ids into ``flat``, when given).
    False when the field is absent/null or an empty flat list (no entity information).

    An id that names nobody (``null``: production's change detector selects a nullable
    column; blank; invisible characters, see :func:`unnamed_id`) stands for a changed entity
    the event cannot name: ``ctx.unnamed`` is set and the caller routes the full date --
    never the other ids alone (a lost update) and never a rejection (nothing would run)."""
    if value is None:
        return False
    if flat is not None and isinstance(value, list | tuple):
        for i in value:
            got = _entity_id(i, key, ctx)
            if got is None or got in flat:
                continue
            if ctx.over_cap():
                break
            flat.add(got)
        return False
    if not isinstance(value, Mapping):
        raise ctx.fail(
            "invalid_field",
            f"{key} must be a mapping of entity type to a list of ids, got {short(value)}",
        )
    for etype, ids in value.items():
        if not isinstance(etype, str) or not etype:
            raise ctx.fail("invalid_field", f"{key} has an invalid entity type key {short(etype)}")
        utf8_text(etype, f"{key} entity type", ctx)
        if not isinstance(ids, list | tuple):
            raise ctx.fail(
                "invalid_field", f"{key}.{etype} must be a list of strings, got {short(ids)}"
            )
        bucket = into.setdefault(etype, set())
        for i in ids:
            got = _entity_id(i, f"{key}.{etype}", ctx)
            if got is None or got in bucket:
                continue
            if ctx.over_cap():
                break
            bucket.add(got)
    return True


def merge_fields(value: object, key: str, ctx: Ctx, into: set[str]) -> bool | None:
    """Add one changed-fields list to ``into``, names as sent: :class:`~scoperouter.messages.
    models.Event` folds them (:func:`~scoperouter.field_names.changed_field_names`: stripped,
    lower-case; a name blank after stripping, ``""`` included, makes the event's changed
    fields unknown whatever another list names). False when absent/null, None when present
    and empty ("unknown", SPEC section 2: likewise), else True. A name that is not a string
    is rejected."""
    if value is None:
        return False
    if not isinstance(value, list | tuple):
        raise ctx.fail("invalid_field", f"{key} must be a list of strings, got {short(value)}")
    if not value:
        return None
    for f in value:
        if not isinstance(f, str):
            raise ctx.fail("invalid_field", f"{key} must contain strings, got {short(f)}")
        into.add(utf8_text(f, key, ctx))
    return True


def status_of(raw: Mapping[str, Any], ctx: Ctx) -> Status:
    if "status" in raw and raw["status"] is not None:
        st = raw["status"]
        if not isinstance(st, str) or st.strip().lower() not in STATUSES:
            raise ctx.fail(
                "invalid_status",
                f"status {short(st)} is not one of success, partial, no_data, failed",
            )
        return cast(Status, st.strip().lower())
    if "success" in raw and raw["success"] is not None:
        ok = raw["success"]
        if not isinstance(ok, bool):
            raise ctx.fail("invalid_status", f"success must be true or false, got {short(ok)}")
        return "success" if ok else "failed"
    return "success"


def priority_of(raw: Mapping[str, Any], ctx: Ctx) -> Priority:
    p = raw.get("priority")
    if p is None:
        return "normal"
    if not isinstance(p, str) or p.strip().lower() not in PRIORITIES:
        raise ctx.fail("invalid_field", f"priority {short(p)} is not normal or critical")
    return cast(Priority, p.strip().lower())


def top_or_meta(raw: Mapping[str, Any], meta: Mapping[str, Any], key: str) -> Any:
    """``raw[key]``, else ``meta[key]``: a top-level ``null`` is absent (SPEC section 3:
    top-level nulls are dropped), so it never hides the value ``metadata`` carries."""
    v = raw.get(key)
    return meta.get(key) if v is None else v


def flag(raw: Mapping[str, Any], meta: Mapping[str, Any], key: str, ctx: Ctx) -> bool:
    v = top_or_meta(raw, meta, key)
    if v is None:
        return False
    if not isinstance(v, bool):
        raise ctx.fail("invalid_field", f"{key} must be true or false, got {short(v)}")
    return v
