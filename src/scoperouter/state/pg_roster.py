"""Which processors the replicas on one PostgreSQL store route (the roster), and the work
a replica leaves to the others by it.

A replica routes the processors of its routes.yaml (``StoreOptions.processors``; None:
every processor, no roster -- a store opened without a router). It writes them to
``sr_processors`` with its time (:func:`announce`: at start, then every lease) and fires
windows, pages and claims outbox rows only of processors it routes, or that no replica
has written for :func:`orphan_after_s` (``ORPHAN_AFTER_LEASES`` leases): a rolling deploy
that adds a processor leaves its work to the replicas that route it, whose target the old
ones do not know; once no replica has routed it for that long (a rollback, a rename) it is
an orphan, taken by any replica for ``defaults.target`` as after a restart
(:mod:`scoperouter.runtime.orphans`). The check is in each fire's and claim's statement
(the roster as the transaction sees it); the earliest deadline leaves out the windows of
processors other replicas route as of the last :func:`announce` (a wake-up only: a window
that became theirs since is a fire that takes nothing, once). A roster row nobody has
written for :data:`FORGET_AFTER_S` (a processor renamed or removed long ago) is deleted by
the next :func:`announce`: it is long past live, so the rule reads the same without it, and
the table stays as small as the processors routed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from scoperouter.state.model import LaneClaim, LaneClaimed, StoreOptions

logger = logging.getLogger("scoperouter.state")

ORPHAN_AFTER_LEASES = 5
"""A processor no replica has written to the roster for this many ``lease_s`` is an
orphan (150 s at ``serve``'s 30 s lease): a replica that routes it writes it every lease."""

FORGET_AFTER_S = 7 * 86_400.0
"""A roster row not written for this long is deleted (:func:`announce`): a week, far past
any grace, so a replica whose clock runs ahead of the others' by less than that deletes
nothing live."""

FORGET = "DELETE FROM sr_processors WHERE seen_at < %s RETURNING processor"

ANNOUNCE = """
INSERT INTO sr_processors (processor, seen_at)
SELECT p, %s FROM unnest(%s::text[]) AS t(p) ORDER BY p
ON CONFLICT (processor) DO UPDATE SET seen_at = excluded.seen_at
"""
# live: written within the grace of this replica's now, either way -- a row written by a
# clock far ahead is not live for the grace plus that clock's lead, and the last writer
# wins (no greatest()): once no replica with such a clock routes it, it ages out as any
ROUTED_ELSEWHERE = """
SELECT processor FROM sr_processors WHERE seen_at BETWEEN %s AND %s
AND NOT (processor = ANY(%s)) ORDER BY processor
"""
ROUTED = (
    "SELECT processor FROM sr_processors WHERE seen_at BETWEEN %s AND %s AND processor = ANY(%s)"
)


def owned(table: str) -> str:
    """The condition on a row of ``table`` this replica may fire or claim; parameters:
    its processors, then the roster's live bounds (:func:`live_bounds`)."""
    return (
        f"({table}.processor = ANY(%s) OR NOT EXISTS (SELECT 1 FROM sr_processors r "
        f"WHERE r.processor = {table}.processor AND r.seen_at BETWEEN %s AND %s))"
    )


def orphan_after_s(options: StoreOptions) -> float:
    """How long a processor stays another replica's after it last wrote it."""
    return ORPHAN_AFTER_LEASES * options.lease_s


def live_bounds(options: StoreOptions, now: float) -> tuple[float, float]:
    """Roster entries written within these times are live at ``now``: the grace back, and
    as far ahead (a replica's clock may lead this one's a little; a row from much further
    ahead is a clock gone wrong and would keep a removed processor live until it passes)."""
    grace = orphan_after_s(options)
    return now - grace, now + grace


def announce(c: Any, options: StoreOptions, now: float) -> tuple[frozenset[str], list[str]]:
    """Write this replica's processors with ``now`` and delete the rows nobody wrote for
    :data:`FORGET_AFTER_S`; the processors other replicas route and this one does not (live
    roster entries outside its own), and those deleted (:func:`said_forgotten` once the
    transaction committed)."""
    mine = sorted(options.processors or ())
    if mine:
        c.execute(ANNOUNCE, (now, mine))
    gone = sorted(str(r[0]) for r in c.execute(FORGET, (now - FORGET_AFTER_S,)).fetchall())
    rows = c.execute(ROUTED_ELSEWHERE, (*live_bounds(options, now), mine)).fetchall()
    return frozenset(str(r[0]) for r in rows), gone


def said_forgotten(gone: list[str]) -> None:
    """Log the roster rows :func:`announce` deleted (none: nothing)."""
    if gone:
        logger.info(
            "state: %d processors no replica has routed for %d days left the roster: %s",
            len(gone),
            FORGET_AFTER_S // 86_400,
            ", ".join(gone),
            extra={"forgotten": gone},
        )


def routed_elsewhere(
    c: Any, options: StoreOptions, processors: Iterable[str], now: float
) -> set[str]:
    """The processors among ``processors`` outside this replica's own that another
    replica routes at ``now`` (none when every processor is its own)."""
    mine = options.processors
    other = sorted(set(processors) - mine) if mine is not None else []
    if not other:
        return set()
    return {str(r[0]) for r in c.execute(ROUTED, (*live_bounds(options, now), other))}


def split_claims(
    c: Any, options: StoreOptions, claims: Sequence[LaneClaim], now: float
) -> tuple[list[LaneClaim], dict[str, LaneClaimed]]:
    """The lanes this replica may claim, and an empty answer for each lane of a processor
    outside its own that another replica routes (its rows wait for that replica)."""
    routed = routed_elsewhere(c, options, (x.processor for x in claims), now)
    if not routed:
        return list(claims), {}
    left = {p: LaneClaimed(p, (), False, None, ()) for p in routed}
    return [x for x in claims if x.processor not in routed], left
