"""Sender-side change detection: publish only what a run really changed.

A processor that reruns a set of entities usually rewrites most of them with identical
values. Downstream work is proportional to what the completion event names, so the
sender compares, per entity and per field, what it is about to write with what was there
and names only the entities and fields that differ::

    detector = ChangeDetector("nba_analytics.player_game_summary", "player",
                              entity_plural="players")  # else the singular key "player"
    detector.observe(day, before={"lebronjames": {"points": 25}},
                          after={"lebronjames": {"points": 27}})
    events = detector.events(run_id=run_id(scope), priority=scope.priority)
    # [{"event_id": ..., "source": ..., "game_date": ..., "status": "success",
    #   "affected_entities": {"players": ["lebronjames"]}, "changed_fields": ["points"], ...}]

An event id derives from the change -- its ids, fields and the digest of each changed id's
new (or removed) row -- and the run: ``run_id``, :func:`scoperouter.sdk.publisher.run_id`
(the trigger id and the message id the trigger came in; ``publish_detected`` passes it), so
a redelivered trigger reporting the same change under that run id repeats its ids (the
router drops the copy) and a re-dispatched one gets new ids. "The same change" is the same
ids, fields and new rows, so a redelivery whose rows went A -> B -> A since an earlier
delivery would repeat that delivery's ids: ``CompletionPublisher.publish_detected`` and
``detected_events`` therefore add the detector's :attr:`ChangeDetector.run_nonce` to the run
id by default (one nonce per detection; stored with the committed rows in an outbox, so a
republish of a stored event keeps its id), and every detected change is a new event.
Without a run id
(a run no trigger started, e.g. a scheduled raw processor) the ids derive from the
detector's own :attr:`ChangeDetector.run_nonce`: each run's events are new events (two runs
making the same change would otherwise share an id, and the router drops the second as a
redelivery), while the same detector's events repeat their ids (a retry).

A row's key is its entity id: a ``str``, or an ``int`` (sent as its digits); any other key
(a tuple of several key columns, a float) raises TypeError, never becomes an invented id
(:mod:`scoperouter.sdk.entity_ids`). A changed row whose id names nobody (``None`` -- a NULL
key --, empty, blank or invisible)
is never sent as an id (``str(None)`` is a player called "None"): it makes its date's event
date level, as the router reads such an id (full date).

A row is a mapping of column -> value; a ``google.cloud.bigquery`` ``Row`` (what
``client.query(...).result()`` yields, whose iteration gives values, not columns) is read by
its columns, and a row without columns (a tuple) raises TypeError (:func:`as_row`).
Values are compared field by field in one canonical form (:func:`canonical`), the one the
digests hash, so :func:`row_digest` and :func:`field_digests` give the same answer as
stable hashes, for processors that keep the digests of what they wrote instead of
re-reading the old rows: JSON's types stay apart at every depth (``1``, ``1.0`` and
``True`` differ, also inside a list or a struct); ``None`` is a value like any other, and a
missing column reads as ``None``; an array (a list, a tuple, or an array-like with
``tolist()``) is compared item by item in full; a set without its order; a mapping keyed by
non-strings (dates, ints) by its pairs; aware datetimes as UTC instants (the two 01:30 of a
DST fold differ); other values (dates, ``Decimal``) by their text. The digest of an ordinary
value (JSON's types, dates, datetimes, decimals, lists and tuples) is what it always was;
sets, mappings with non-string keys and array-likes got digests that take their type and
every item into account (their earlier digests were order-dependent, colliding or
truncated). An
entity present on one side only (a row appeared or disappeared) changed in every field
of the side that has it. An entity that changed with no field to name (a row of key columns
or ignored columns only appeared or disappeared) is still announced, its event without
``changed_fields`` ("unknown": relevant to every reader, SPEC section 2), as
:func:`~scoperouter.sdk.events.build_completion_event` leaves out an empty one. Nothing
changed (no entity) -> no event (``None`` / empty list): the router then has nothing to
route, which is the whole point. This is the only "nothing changed" the publisher knows
(``publish_event(None)``, ``publish_detected`` of such a detector): any event built is
published, as the router routes it.

Everything here is pure (no clock, no I/O) except what the caller passes in and the
detector's random run nonce.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from scoperouter.sdk.canonical import (
    Row,
    as_row,
    canonical,
    canonical_text,
    field_digests,
    row_digest,
    same,
    same_row,
    value_digest,
)
from scoperouter.sdk.entity_ids import entity_name
from scoperouter.sdk.router_checks import check_event

Priority = Literal["normal", "critical"]

__all__ = [
    "ChangeDetector",
    "EntityChanges",
    "as_day",
    "as_row",
    "canonical",
    "completion_event",
    "diff_rows",
    "entity_key",
    "field_digests",
    "row_digest",
    "value_digest",
]


@dataclass(frozen=True)
class EntityChanges:
    """What changed between two snapshots of the same scope.

    ``unnamed`` counts the changed rows whose id names nobody (``None``, empty, blank,
    padded with spaces or invisible: :func:`~scoperouter.messages.event_fields.unnamed_id`): never sent as ids (``"None"`` would name a player called
    None), they make the event date level, as the router reads such an id (full date).

    ``digests`` (not compared: which entities and fields changed is the change set) names,
    per changed id, the row it changed to -- the digest of its new row without the ignored
    fields, or ``-`` and the removed row's -- so that a completion event's id tells one
    change from another (:func:`completion_event`)."""

    entities: tuple[str, ...]  # sorted ids whose rows differ (ids naming somebody)
    fields: tuple[str, ...]  # sorted union of the fields that differ
    added: tuple[str, ...] = ()  # ids with a row only after
    removed: tuple[str, ...] = ()  # ids with a row only before
    digests: tuple[tuple[str, str], ...] = field(default=(), compare=False)  # (id, digest)
    unnamed: int = 0  # changed rows whose id names nobody: the event is date level
    # a row appeared or disappeared with no field to name (key or ignored columns only):
    # the event leaves changed_fields out ("unknown", relevant to every reader), or the
    # other entities' fields would narrow it and a reader of other fields skip this entity
    fields_unknown: bool = False

    def __bool__(self) -> bool:
        return bool(self.entities) or self.unnamed > 0


def _name(key: object) -> str | None:
    """``key`` as an event id, or None when it names nobody (null, blank, invisible); a key
    that is no str or int raises TypeError (:func:`~scoperouter.sdk.entity_ids.entity_name`)."""
    return entity_name(key, "row key")


def _kept(row: dict[str, object], ignored: frozenset[str]) -> dict[str, object]:
    return {k: v for k, v in row.items() if k not in ignored}


def _by_entity(rows: Mapping[Any, Row]) -> dict[str | tuple[None, object], dict[str, object]]:
    """One snapshot's rows (a row of None is no row) by the entity their key names: its id
    (an int key is its digits, so a row keyed 1628983 pairs with one keyed "1628983" -- an
    INT64 column read back beside a recomputed string id), or ``(None, key)`` for a key
    naming nobody. Two keys naming one entity in one snapshot raise ValueError: one of the
    rows would be lost."""
    out: dict[str | tuple[None, object], dict[str, object]] = {}
    for k, v in rows.items():
        if v is None:
            continue
        name = _name(k)
        pair: str | tuple[None, object] = name if name is not None else (None, k)
        if pair in out:
            raise ValueError(
                f"two rows of entity {name!r} in one snapshot (keyed {k!r} and by its other "
                "spelling, e.g. 1628983 and '1628983'): key every row by one id type"
            )
        out[pair] = as_row(v, k)
    return out


def diff_rows(
    before: Mapping[str, Row],
    after: Mapping[str, Row],
    *,
    ignore_fields: Iterable[str] = (),
) -> EntityChanges:
    """Compare two snapshots ``entity id -> row`` field by field.

    Fields in ``ignore_fields`` (e.g. a ``processed_at`` column) never count as a change.
    Ids come out as strings (SPEC: entity ids are strings; rows keyed by an INT64 column
    would otherwise make an event the router rejects); a key that is no str or int (a
    tuple, a float) raises TypeError, never a made-up id; rows pair by the id their key
    names (``1628983`` and ``"1628983"`` are one entity; both in one snapshot raise
    ValueError); a changed row whose id names nobody
    (a NULL key) is counted in ``unnamed`` instead. Each row is read as a dict first
    (:func:`as_row`: a BigQuery ``Row`` by its columns; a row that has none raises
    TypeError); a row of ``None`` is no row.
    """
    ignored = frozenset(ignore_fields)
    changed: set[str] = set()
    fields: set[str] = set()
    added: list[str] = []
    removed: list[str] = []
    digests: dict[str, str] = {}
    unnamed = 0
    unknown = False  # a row with no field to name appeared or disappeared
    olds = _by_entity(before)
    news = _by_entity(after)
    for pair in olds.keys() | news.keys():
        old = olds.get(pair)
        new = news.get(pair)
        name = pair if isinstance(pair, str) else None
        # an id naming nobody: its digest under a key no named id can be (non-printable)
        key = name if name is not None else f"\x00{pair[1]!r}"
        if old is None or new is None:
            present = new if new is not None else old
            assert present is not None
            named = [f for f in present if f not in ignored]
            fields.update(named)
            unknown = unknown or not named
            kept = row_digest(_kept(present, ignored))
            digests[key] = kept if new is not None else f"-{kept}"
        elif same_row(old, new):
            continue
        else:
            diff = {
                f
                for f in set(old) | set(new)
                if f not in ignored and not same(old.get(f), new.get(f))
            }
            if not diff:
                continue
            fields.update(diff)
            digests[key] = row_digest(_kept(new, ignored))
        if name is None:
            unnamed += 1
            continue
        changed.add(name)
        if old is None:
            added.append(name)
        elif new is None:
            removed.append(name)
    return EntityChanges(
        entities=tuple(sorted(changed)),
        fields=tuple(sorted(fields)),
        added=tuple(sorted(added)),
        removed=tuple(sorted(removed)),
        digests=tuple(sorted(digests.items())),
        unnamed=unnamed,
        fields_unknown=unknown,
    )


def entity_key(entity_type: str, plural: str | None = None) -> str:
    """The ``affected_entities`` key for an entity type: ``plural`` when given (the
    registry's ``entities.<type>.plural``, e.g. ``people`` for ``person``, or ``players``),
    else the singular type itself, which every registry accepts
    (:func:`scoperouter.processor_registry.compiled.entity_key_table`) -- a guessed name plus
    ``s`` is not a key of a registry that declares another plural (``persons``)."""
    return plural if plural is not None else entity_type


def as_day(value: object, what: str = "game_date") -> date:
    """``value`` as a calendar date: a ``datetime`` (a TIMESTAMP or DATETIME column, a
    ``pandas.Timestamp``) is its ``.date()`` -- in its own time zone -- whose isoformat is
    the ``YYYY-MM-DD`` the router accepts (a datetime's, ``2025-11-19T00:00:00``, it
    rejects). Anything that is not a date (an ISO string, a number) raises TypeError."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return date(value.year, value.month, value.day)  # a plain date, whatever subclass
    raise TypeError(
        f"{what} must be a date (or a datetime, read as its date), got "
        f"{type(value).__name__} {value!r:.40}"
    )


def _iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def completion_event(
    *,
    source: str,
    game_date: date,
    entity_type: str,
    changes: EntityChanges,
    event_id: str | None = None,
    run_id: str | None = None,
    priority: Priority = "normal",
    correlation_id: str | None = None,
    produced_at: datetime | None = None,
    record_count: int | None = None,
    entity_plural: str | None = None,
    date_field: str = "game_date",
    referenced_tables: Iterable[str] | None = None,
) -> dict[str, Any] | None:
    """The canonical SPEC section 3 completion event naming only what changed.

    ``referenced_tables``: the tables the run read (drift: the router counts undeclared ones).

    The ids go under :func:`entity_key` (``entity_plural``, e.g. SPEC's ``players`` or a
    registry's ``people``, else the singular ``entity_type``, which the router always
    accepts); the
    date under ``date_field`` (the registry's ``date_field``, default ``game_date``).

    ``record_count`` (entities the run processed on that date) lets the router's execution
    log measure waste: processed vs changed.

    An ``event_id``, ``correlation_id`` or entity key the router would reject (control
    characters, a lone surrogate) raises ValueError.

    ``None`` when nothing changed. Without ``event_id`` the id is derived from the change --
    the ids, the fields and each changed id's new or removed row (``changes.digests``) --
    and ``run_id``: the same run reporting the same change has the same id (a redelivery,
    which the router drops), a different change another one, even in the same run (a
    redelivered trigger whose upstream was corrected in between). Without ``run_id`` (or
    an empty one) a random nonce stands for it: each call is a new event, so pass the
    run's id, or keep the event, to repeat it on a retry.
    """
    game_date = as_day(game_date, date_field)
    if not changes:
        return None
    if event_id is None:
        rid = run_id or f"#{uuid.uuid4().hex[:12]}"
        payload = canonical_text(
            [
                source,
                game_date.isoformat(),
                list(changes.entities),
                list(changes.fields),
                rid,
                [list(d) for d in changes.digests],
            ]
        )
        event_id = "ce-" + hashlib.sha256(payload.encode("utf-8")).hexdigest()[:20]
    event: dict[str, Any] = {
        "event_id": event_id,
        "source": source,
        date_field: game_date.isoformat(),
        "status": "success",
        # an id naming nobody changed: date level (the router's reading of such an id)
        **(
            {}
            if changes.unnamed
            else {
                "affected_entities": {
                    entity_key(entity_type, entity_plural): list(changes.entities)
                }
            }
        ),
        # none to name, or an entity with none: left out, "unknown" (relevant, as [] would
        # be: SPEC section 2) -- never narrowed to the fields of the others
        **(
            {"changed_fields": list(changes.fields)}
            if changes.fields and not changes.fields_unknown
            else {}
        ),
        "priority": priority,
    }
    if correlation_id is not None:
        event["correlation_id"] = correlation_id
    if produced_at is not None:
        event["produced_at"] = _iso(produced_at)
    if record_count is not None:
        event["record_count"] = record_count
    if referenced_tables is not None:
        event["referenced_tables"] = sorted(set(referenced_tables))
    check_event(event)  # the router's field checks: a bad id raises here (ValueError)
    return event


class ChangeDetector:
    """Accumulate per-date diffs of one run, then emit one completion event per date.

    ``observe`` may be called once per date the run wrote (a lookback run writes several).
    """

    def __init__(
        self,
        source: str,
        entity_type: str,
        *,
        ignore_fields: Iterable[str] = (),
        entity_plural: str | None = None,
        date_field: str | None = None,
    ) -> None:
        self.source = source
        self.entity_type = entity_type
        self.entity_plural = entity_plural
        #: the key of the events' date; None: the one :meth:`events` is given (the
        #: trigger's, from ``publish_detected``), else ``game_date``
        self.date_field = date_field
        self._ignore = tuple(ignore_fields)
        #: this run's identity when :meth:`events` gets no ``run_id`` (one per detector)
        self.run_nonce = uuid.uuid4().hex[:12]
        self._by_date: dict[date, EntityChanges] = {}
        self._processed: dict[date, set[str]] = {}

    def observe(
        self, day: date, before: Mapping[str, Row], after: Mapping[str, Row]
    ) -> EntityChanges:
        """Diff one date's rows (only the scope the run rewrote) and remember the result.
        ``day`` may be a datetime (read as its date, :func:`as_day`)."""
        day = as_day(day, "day")
        changes = diff_rows(before, after, ignore_fields=self._ignore)
        self._processed.setdefault(day, set()).update(map(str, before), map(str, after))
        prev = self._by_date.get(day)
        if prev is not None:
            changes = EntityChanges(
                entities=tuple(sorted(set(prev.entities) | set(changes.entities))),
                fields=tuple(sorted(set(prev.fields) | set(changes.fields))),
                added=tuple(sorted(set(prev.added) | set(changes.added))),
                removed=tuple(sorted(set(prev.removed) | set(changes.removed))),
                # an id observed twice on a date: its latest row is what it changed to
                digests=tuple(sorted({**dict(prev.digests), **dict(changes.digests)}.items())),
                unnamed=prev.unnamed + changes.unnamed,
                fields_unknown=prev.fields_unknown or changes.fields_unknown,
            )
        self._by_date[day] = changes
        return changes

    @property
    def changes(self) -> Mapping[date, EntityChanges]:
        """What changed, per date observed (dates with no change included, empty)."""
        return dict(self._by_date)

    @property
    def changed(self) -> bool:
        return any(self._by_date.values())

    def events(
        self,
        *,
        run_id: str = "",
        priority: Priority = "normal",
        correlation_id: str | None = None,
        produced_at: datetime | None = None,
        date_field: str | None = None,
    ) -> list[dict[str, Any]]:
        """One completion event per date with changes, dates ascending; [] when none.

        Without ``run_id`` the ids derive from :attr:`run_nonce`: distinct from any other
        run's, the same on every call of this detector.

        The date goes under ``date_field`` (``publish_detected`` passes the trigger's), else
        the detector's :attr:`date_field`, else ``game_date``; both given and different
        raise ValueError (one of them is not the registry's: the router rejects the event)."""
        if date_field is not None and self.date_field is not None and date_field != self.date_field:
            raise ValueError(
                f"the detector's date_field {self.date_field!r} contradicts the trigger's "
                f"date_field {date_field!r} (the registry's)"
            )
        key = date_field or self.date_field or "game_date"
        rid = run_id or f"#{self.run_nonce}"
        out: list[dict[str, Any]] = []
        for day in sorted(self._by_date):
            ev = completion_event(
                source=self.source,
                game_date=day,
                entity_type=self.entity_type,
                changes=self._by_date[day],
                run_id=rid,
                priority=priority,
                correlation_id=correlation_id,
                produced_at=produced_at,
                record_count=len(self._processed.get(day, ())),
                entity_plural=self.entity_plural,
                date_field=key,
            )
            if ev is not None:
                out.append(ev)
        return out
