"""A trigger's dispatch mode -- ``live`` (sent to its target) or ``shadow`` (planned and
logged, no target called) -- is decided once, when the trigger fires, and stored with its
outbox row; the dispatcher sends each row by its stored mode (docs/rollout.md "Flip back").
A window that an event joined while its processor fired live fires live (its ``live``
bit: that update reached scoperouter only), any other window in its processor's mode when
it fires; a re-dispatch by the closed loop's ledger is live only when the trigger's first
attempt was (the ledger tracks triggers fired live only).

Invariant: one function, :func:`fire_modes`, says which mode a processor's triggers fire
in now (``serve --shadow``: all shadow; else routes.yaml ``mode``; a processor no longer
in it: ``defaults.mode``), for every writer of outbox rows -- the state stores through
``StoreOptions.modes``, the snapshot + journal store through
:class:`~scoperouter.runtime.durable_windows.DurableWindows` -- and for the rows stored
without one (written before the mode was kept: :func:`row_mode` gives them the processor's
mode at dispatch, as before). So a restart that flips a processor's mode changes the mode
of the triggers fired after it only, but for the windows events joined while it was live:
one fired live (or from such a window) is still delivered (its update reached scoperouter
only), one fired in shadow is marked done as shadow, never sent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Final

from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.state.model import FireModes, OutboxItem

LIVE: Final = "live"
SHADOW: Final = "shadow"

logger = logging.getLogger("scoperouter.runtime")


def fire_modes(registry: CompiledRegistry, shadow_all: bool = False) -> FireModes:
    """The mode each processor's triggers fire in now (``shadow_all``: ``serve --shadow``)."""
    if shadow_all:
        return FireModes(shadow=frozenset(registry.processors), others=SHADOW)
    shadow = frozenset(n for n, p in registry.processors.items() if p.mode == SHADOW)
    live = frozenset(registry.processors) - shadow
    return FireModes(shadow, live, SHADOW if registry.spec.defaults.mode == SHADOW else LIVE)


def row_mode(stored: str | None, processor: str, modes: FireModes) -> str:
    """The mode a row is sent by: the one stored with it, else its processor's now."""
    return stored if stored is not None else modes.of(processor)


def other_modes(items: Iterable[OutboxItem], modes: FireModes) -> dict[int, str]:
    """The rows among ``items`` (just fired) stored with another mode than their
    processor's now -- a window an event joined while its processor fired live, fired after
    it became shadow: ``live`` -- as ``{row id: mode}`` (:meth:`Dispatcher.fired`'s
    ``stored``); empty when every processor fires live now (no row can differ)."""
    if not modes.shadow and modes.others != SHADOW:
        return {}
    of = modes.of
    return {
        x.item_id: x.mode for x in items if x.mode is not None and x.mode != of(x.trigger.processor)
    }


def announce_live_backlog(backlog: Mapping[str, int], modes: FireModes) -> int:
    """At start: one line naming how many triggers fired live and still to send belong to
    processors that fire in shadow now (``backlog``: such rows per processor, any mode
    now); they are delivered all the same. Logged when some processor is shadow now.
    Returns the count."""
    held = {p: n for p, n in sorted(backlog.items()) if modes.of(p) == SHADOW and n}
    n = sum(held.values())
    if not modes.shadow and modes.others != SHADOW:
        return n
    logger.log(
        logging.WARNING if n else logging.INFO,
        "restart: %d pending triggers fired live of processors now in shadow mode will "
        "still be delivered to their targets%s",
        n,
        ": " + ", ".join(f"{p} {k}" for p, k in held.items()) if held else "",
        extra={"live_backlog": n, "live_backlog_processors": held},
    )
    return n
