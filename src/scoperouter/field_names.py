"""How a changed-field name is compared: as a column name of a BigQuery-like table, without
its surrounding whitespace and ignoring case (an extension of SPEC; docs/registry.md).

Invariant: :func:`field_key` is idempotent and is the only spelling compared. An event's
names are folded once, when it is read (:class:`~scoperouter.messages.models.Event` and the
fast path, :mod:`scoperouter.messages.fast_event`), and the registry's ``fields`` /
``ignore_fields`` once, when it is compiled (:mod:`scoperouter.processor_registry.compiled`):
the planner compares the two sets as they are, with no work per input. This module imports
nothing of the project, so both sides can use it.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["changed_field_names", "field_key"]


def field_key(name: str) -> str:
    """``name`` as compared: stripped of surrounding whitespace, lower-cased."""
    return name.strip().lower()


def changed_field_names(names: Iterable[str]) -> tuple[str, ...]:
    """An event's changed fields as compared: each :func:`field_key`, deduplicated and sorted;
    ``()`` ("unknown": relevant to every reader, SPEC section 2) when one is blank after
    stripping or holds a character that is not printable (a zero-width space, a control)
    -- a name nobody can read hides a changed field, so it never narrows the event to the
    others (as a blank or invisible entity id routes the full date)."""
    keys = set()
    for name in names:
        key = name.strip().lower()
        if not key or not key.isprintable():
            return ()
        keys.add(key)
    return tuple(sorted(keys))
