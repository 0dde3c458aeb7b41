"""The closed loop in the daemon: which messages are completions, when the loop is on,
and the loop's state mirrored to ``<state-dir>/loop.json`` for ``trace`` / ``deadletters``.

Invariant: the engine's loop state is durable through the window snapshot + journal
(:mod:`scoperouter.runtime.durable_windows` journals every completion and request); the
``loop.json`` mirror is written after commits and is only read by the CLI. Operator
requests (``deadletters redrive``) come from ``<state-dir>/loop-requests.jsonl`` and are
applied once each (their ids are part of the loop's state).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scoperouter.errors import EventError
from scoperouter.messages.models import Event
from scoperouter.messages.normalize import loads_event_json
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.router.completion_ref import (
    CompletionRef,
    completion_ref,
    is_report_only,
    missed_entities,
    ref_to_dict,
)
from scoperouter.runtime.loop_store import FileLoopState, Requests
from scoperouter.runtime.outcomes import Inbound

logger = logging.getLogger("scoperouter.runtime")
REQUEST_POLL_S = 2.0  # how often a running router looks for operator requests
MIRROR_MIN_INTERVAL_S = 1.0  # loop.json is rewritten at most this often
# ... and a rewrite (a JSON document of the whole ledger: it grows with the open and the
# day's closed triggers) takes at most this share of the state thread: the next one waits
# for its duration divided by this
MIRROR_MAX_SHARE = 0.05


def loop_wanted(registry: CompiledRegistry) -> bool:
    """True when the registry asks for the closed loop (run_retries, completion_timeout,
    retry_backoff or barrier anywhere): otherwise the daemon behaves as before.

    A setting counts when routes.yaml writes it, whatever its value: ``defaults.run_retries``
    (0) and ``defaults.retry_backoff`` (30s) always have one, so they count when written
    (pydantic's ``model_fields_set``) -- ``run_retries: 0`` is the loop without re-dispatches
    after a failure (a failed run is a dead letter at once), not the loop off."""
    d = registry.spec.defaults
    if (
        "run_retries" in d.model_fields_set
        or d.completion_timeout
        or d.barrier is not None
        or "retry_backoff" in d.model_fields_set
    ):
        return True
    return any(
        p.spec.run_retries is not None
        or p.spec.completion_timeout
        or p.spec.barrier is not None
        or p.spec.retry_backoff is not None
        for p in registry.processors.values()
    )


LOOP_SETTINGS = ("run_retries", "completion_timeout", "retry_backoff", "barrier")


def loop_settings(registry: CompiledRegistry) -> list[str]:
    """Where routes.yaml turns the closed loop on, as :func:`loop_wanted` reads it:
    ``defaults.<key>`` or ``<processor>.<key>`` for each setting written (empty: off)."""
    d = registry.spec.defaults
    found = [
        f"defaults.{k}"
        for k in LOOP_SETTINGS
        if (k in d.model_fields_set if k in ("run_retries", "retry_backoff") else getattr(d, k))
    ]
    for name, p in sorted(registry.processors.items()):
        found += [f"{name}.{k}" for k in LOOP_SETTINGS if getattr(p.spec, k) is not None]
    return found


def loop_not_modelled(registry: CompiledRegistry, driver: str) -> str | None:
    """The warning of a driver that routes without the closed loop (``replay``,
    ``report --what-if``, the simulation) when ``serve`` would run it: None when it is off."""
    where = loop_settings(registry) if loop_wanted(registry) else []
    if not where:
        return None
    shown = ", ".join(where[:4]) + (f" and {len(where) - 4} more" if len(where) > 4 else "")
    return (
        f"{driver} does not model the closed loop routes.yaml turns on ({shown}): serve "
        "holds barrier windows until their upstream runs complete, merges what it holds and "
        f"re-dispatches runs without a completion; {driver}'s triggers are those without "
        "the loop and can differ from serve's"
    )


def raw_of(inbound: Inbound) -> Mapping[str, Any] | None:
    """The message as a JSON object (None when it is not one), its bytes read the one way
    every path reads an event (:func:`~scoperouter.messages.normalize.loads_event_json`:
    UTF-8, a leading byte order mark ignored): a body the router rejects as ``not_json``
    reports no completion either."""
    if isinstance(inbound.obj, Mapping):
        return inbound.obj
    if inbound.data is None:
        return None
    try:
        obj = loads_event_json(inbound.data)
    except EventError:
        return None
    return obj if isinstance(obj, Mapping) else None


def completion_of(
    inbound: Inbound, parsed: Event | EventError, registry: CompiledRegistry
) -> CompletionRef | None:
    """The completion a message reports (None: it names no trigger and no processor)."""
    raw = raw_of(inbound)
    ref = (
        completion_ref(raw, date_field=registry.date_field, processors=registry.processors)
        if raw is not None
        else None
    )
    ev = parsed if isinstance(parsed, Event) else None
    if ref is None and inbound.trigger_id and ev is not None:
        # the SDK's CompletionPublisher names the run in a Pub/Sub attribute; a partial
        # run's change events name the ids it missed (re-run them, whichever of the run's
        # messages arrives first)
        return CompletionRef(
            outcome=ev.status,
            trigger_id=inbound.trigger_id,
            event_id=ev.event_id,
            missed=missed_entities(raw) if raw is not None else (),
            produced_at=None if ev.produced_at is None else ev.produced_at.timestamp(),
            routed=True,
        )
    if ref is None:
        return None
    if ref.trigger_id is None and inbound.trigger_id:
        # the SDK's change event: the trigger in the attribute, the attempt (the message id
        # the trigger came in) in the body -- the trigger id says which trigger
        ref = dataclasses.replace(ref, trigger_id=inbound.trigger_id)
    if ref.trigger_id is None and ref.message_id is None and ev is not None:
        # production's unified message: the processor is the publisher of its source
        pubs = [p.name for p in registry.processors.values() if p.publishes == ev.source]
        proc = pubs[0] if len(pubs) == 1 else None
        return CompletionRef(
            outcome=ref.outcome,
            processor=proc,
            day=ev.game_date,
            execution_id=ref.execution_id,
            parent_processor=ref.parent_processor,
            error=ref.error,
            missed=ref.missed,
            event_id=ev.event_id,
            produced_at=ref.produced_at,
            routed=True,
        )
    return ref


def unknown_processor(ref: CompletionRef, registry: CompiledRegistry) -> str | None:
    """The processor name a completion matches by (no trigger id, no message id: processor
    and date) when it is no registry processor -- such a completion can close nothing; the
    caller counts it (``scoperouter_completions_unmatched_total``) and logs the name."""
    name = ref.processor
    if ref.trigger_id is not None or ref.message_id is not None or name is None:
        return None
    return None if name in registry.processors else name


def is_report(inbound: Inbound) -> bool:
    """A bare completion report (no source): closes its trigger, routes nothing."""
    raw = raw_of(inbound)
    return raw is not None and is_report_only(raw) and completion_ref(raw) is not None


def ref_to_json(ref: CompletionRef) -> str:
    return json.dumps(ref_to_dict(ref), separators=(",", ":"))


class LoopMirror:
    """``loop.json`` and the request queue in the router's state dir."""

    def __init__(self, state_dir: Path) -> None:
        self.state = FileLoopState(state_dir)
        self.requests = Requests(state_dir)
        self._mtime: float | None = None  # the file's, when its requests were committed
        self._pending: float | None = None  # the file's, read in the running transaction

    def new_requests(self, done: set[str]) -> list[dict[str, Any]]:
        """Requests not applied yet (cheap when the file did not change since the requests
        read were committed: :meth:`committed`; until then the file is read again)."""
        try:
            mtime = self.requests.path.stat().st_mtime
        except FileNotFoundError:
            return []
        if mtime == self._mtime:
            return []
        self._pending = mtime
        return [r for r in self.requests.read() if r["id"] not in done]

    def committed(self) -> None:
        """The transaction that applied :meth:`new_requests`' requests committed."""
        if self._pending is not None:
            self._mtime, self._pending = self._pending, None

    def rolled_back(self) -> None:
        """It did not: the next poll reads the file again."""
        self._pending = None

    def save(self, snapshot: dict[str, Any]) -> None:
        try:
            self.state.save(snapshot)
        except OSError:
            logger.exception("could not write loop.json (the store keeps the state)")
