"""Publish what a processor changed as a canonical completion event (SPEC section 3).

::

    publisher = CompletionPublisher("nba-phase3-analytics-complete",
                                    source="nba_analytics.player_game_summary")
    result = publisher.publish(game_date=d, affected_entities={"players": ["lebronjames"]},
                               changed_fields=["points"], scope=scope)

* The event is the canonical form the router reads: ``event_id, source, game_date,
  status, affected_entities, changed_fields, priority, correlation_id, produced_at``.
  ``correlation_id`` and ``priority`` are carried over from the trigger's :class:`Scope`.
* Size fallback: when the entity list has more than ``limits.max_entities`` ids, or the
  encoded message would be larger than ``limits.max_bytes``, the event is published at
  date level (no ``affected_entities``) -- the router then runs downstream processors for
  the whole date, which is always safe. Both limits are inclusive: exactly the limit stays
  entity-level. By default ``max_entities`` is the router's own cap
  (``MAX_EVENT_ENTITIES``, 2000) and ``max_bytes`` 64 KiB: size guards, so the router's
  per-processor ``max_entities`` (counted after mapping) decide each reader's scope.
* Nothing changed: only the SDK's change detection says so -- an empty
  :class:`~scoperouter.sdk.change_detection.EntityChanges`, for which
  ``completion_event`` returns ``None`` (``publish_event(None)`` publishes nothing,
  ``reason="nothing_changed"``) and ``ChangeDetector.events`` none (``publish_detected``
  publishes nothing). Every event a caller builds is published, whatever it names: the
  router routes it (SPEC section 2: an empty or missing ``changed_fields`` is unknown,
  relevant; section 3: an entity list naming no id is no entity information, date scope),
  so ``affected_entities={"players": []}`` runs every reader for the whole date. A run that
  changed nothing publishes no event (``if changes:`` around ``publish``) and closes its
  trigger with :meth:`CompletionPublisher.report`. ``publish_unchanged`` no longer has an
  effect (kept so existing constructors work).
* Pub/Sub attributes: ``source``, the date (keyed by the registry's ``date_field``,
  ``game_date`` by default), ``event_id``, ``status``, ``scope``
  (``entities``/``date``), ``priority`` and, when known, ``correlation_id``, ``trigger_id``.
* The attempt: with a ``scope`` whose trigger came in a message with an id (Pub/Sub, or an
  HTTP push envelope's ``messageId``), every event and report carries it as
  ``trigger_message_id`` -- also next to a trigger id: the trigger id names the trigger, the
  message id the attempt (a re-dispatch keeps the trigger id, but is a new message). The
  router then treats a success of a run that already reported missed ids or a failure as
  stale, and closes a re-run on its own success. Without it (a trigger passed as a dict)
  a success names no attempt: after a failure it closes the trigger only once such
  successes outnumber the failure reports -- extra runs, at worst a dead letter
  (docs/ledger.md).

The Pub/Sub client is ``google.cloud.pubsub_v1.PublisherClient``, which talks to the
emulator when ``PUBSUB_EMULATOR_HOST`` is set. The event itself is built by
:mod:`scoperouter.sdk.events` (pure: no client; its names are re-exported here).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal, Protocol

from scoperouter.sdk.events import (
    PublishLimits,
    Status,
    apply_limits,
    build_completion_event,
    build_completion_events,
    encode_event,
    event_attributes,
    missed_ids,
    run_id,
    with_missed,
)
from scoperouter.sdk.scope import Scope

__all__ = [
    "CompletionPublisher",
    "DetectedChanges",
    "PublishLimits",
    "PublishResult",
    "Status",
    "apply_limits",
    "build_completion_event",
    "build_completion_events",
    "encode_event",
    "event_attributes",
    "run_id",
    "topic_path",
    "with_missed",
]


@dataclass(frozen=True)
class PublishResult:
    """What :meth:`CompletionPublisher.publish` did."""

    published: bool
    reason: Literal["published", "nothing_changed"]
    event: dict[str, Any] | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    message_id: str | None = None
    fell_back: bool = False
    fallback_reason: Literal["max_entities", "max_bytes"] | None = None
    size_bytes: int = 0


def topic_path(topic: str, project: str | None = None) -> str:
    """``projects/P/topics/T`` from a topic id (project from arg, GOOGLE_CLOUD_PROJECT, or the emulator)."""
    if topic.startswith("projects/"):
        return topic
    project = project or os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("GCP_PROJECT")
    if not project and os.environ.get("PUBSUB_EMULATOR_HOST"):
        project = "local-project"
    if not project:
        raise ValueError(
            f"topic {topic!r} has no project: pass project=, use projects/P/topics/T, or set GOOGLE_CLOUD_PROJECT"
        )
    return f"projects/{project}/topics/{topic}"


class DetectedChanges(Protocol):
    """What :class:`scoperouter.sdk.change_detection.ChangeDetector` offers the publisher."""

    def events(
        self,
        *,
        run_id: str = "",
        priority: Literal["normal", "critical"] = "normal",
        correlation_id: str | None = None,
        produced_at: datetime | None = None,
        date_field: str | None = None,
    ) -> list[dict[str, Any]]: ...


class CompletionPublisher:
    """Publishes a processor's completion events to one Pub/Sub topic."""

    def __init__(
        self,
        topic: str,
        *,
        source: str,
        project: str | None = None,
        limits: PublishLimits | None = None,
        publish_unchanged: bool = False,  # no effect: every event given is published
        client: Any = None,
        timeout: float = 30.0,
    ) -> None:
        self.topic = topic_path(topic, project)
        self.source = source
        self.limits = limits or PublishLimits()
        self.publish_unchanged = publish_unchanged
        self.timeout = timeout
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            from google.cloud.pubsub_v1 import PublisherClient

            self._client = PublisherClient()
        return self._client

    def publish(
        self,
        *,
        game_date: date | None,
        affected_entities: Mapping[str, Iterable[str]] | None,
        changed_fields: Iterable[str] | None = None,
        scope: Scope | None = None,
        **kwargs: Any,
    ) -> PublishResult:
        """Build the event (see :func:`build_completion_event`) and publish it. A range
        (``start_date``/``end_date``) is a backfill: with ids or fields it needs
        ``backfill=True``; a change over several dates is :meth:`publish_each_date`."""
        event = build_completion_event(
            source=self.source,
            game_date=game_date,
            affected_entities=affected_entities,
            changed_fields=changed_fields,
            scope=scope,
            **kwargs,
        )
        return self.publish_event(event, scope=scope)

    def publish_each_date(
        self,
        *,
        start_date: date,
        end_date: date,
        affected_entities: Mapping[str, Iterable[str]] | None,
        changed_fields: Iterable[str] | None = None,
        scope: Scope | None = None,
        **kwargs: Any,
    ) -> tuple[PublishResult, ...]:
        """Publish a change over several dates as one event per date, oldest first (see
        :func:`build_completion_events`): the router scopes each date and applies its
        readers' lookback, which a range event (a backfill) would not. All events are built
        before the first is published (a bad argument publishes nothing)."""
        events = build_completion_events(
            source=self.source,
            start_date=start_date,
            end_date=end_date,
            affected_entities=affected_entities,
            changed_fields=changed_fields,
            scope=scope,
            **kwargs,
        )
        return tuple(self.publish_event(e, scope=scope) for e in events)

    def publish_event(
        self, event: Mapping[str, Any] | None, *, scope: Scope | None = None
    ) -> PublishResult:
        """Publish a ready canonical event (e.g. from change detection), applying the limits.

        ``None`` -- :func:`~scoperouter.sdk.change_detection.completion_event`'s answer when
        nothing changed -- publishes nothing (``published=False``, ``reason="nothing_changed"``);
        any event is published (the router routes it, whatever it names)."""
        if event is None:
            return PublishResult(published=False, reason="nothing_changed")
        event = dict(event)
        if scope is not None and scope.correlation_id and not event.get("correlation_id"):
            event["correlation_id"] = scope.correlation_id
        if scope is not None and scope.message_id:
            # the message the trigger came in: the attempt (and the trigger, for a mapped
            # body without a trigger id: the router knows the message it sent)
            event.setdefault("trigger_message_id", scope.message_id)
        out, fallback = apply_limits(event, self.limits)
        data = encode_event(out)
        attrs = event_attributes(out, scope)
        future = self.client.publish(self.topic, data, **attrs)
        message_id = str(future.result(timeout=self.timeout))
        return PublishResult(
            published=True,
            reason="published",
            event=out,
            attributes=attrs,
            message_id=message_id,
            fell_back=fallback is not None,
            fallback_reason=fallback,
            size_bytes=len(data),
        )

    def detected_events(
        self,
        detector: DetectedChanges,
        scope: Scope | None = None,
        *,
        missed_entities: Iterable[str] = (),
        attempt: str | None = None,
    ) -> list[dict[str, Any]]:
        """The events of ``detector`` for a transactional outbox (one per changed date; none
        when nothing changed), built without publishing: stored next to the rows they
        announce, each is handed to :meth:`publish_event` (with the same ``scope``) once the
        rows are committed. Their ids are fixed here, so a re-publish of a stored event is a
        duplicate the router drops. When it returns none but ``missed_entities`` is not
        empty, the run's ``report(scope, "partial", missed_entities=...)`` carries the
        missed ids instead.

        The ids are this detection's: ``attempt`` defaults to the detector's ``run_nonce``
        (one per detector, i.e. per run), so every committed change is a new event -- also a
        redelivery of the trigger message whose rows went A -> B -> A between deliveries,
        which without it would repeat an earlier delivery's id and be dropped as a
        duplicate. Nothing is lost by it: with an outbox a change is detected again only
        when the earlier detection's rows (and events) were rolled back, never published."""
        if attempt is None:
            attempt = getattr(detector, "run_nonce", None)
        return self._detected(detector, scope, missed_entities, attempt)

    def _detected(
        self,
        detector: DetectedChanges,
        scope: Scope | None,
        missed_entities: Iterable[str],
        attempt: str | None,
    ) -> list[dict[str, Any]]:
        """The events of ``detector`` under :func:`run_id` of ``scope`` and ``attempt``."""
        rid = run_id(scope) if scope else ""
        if attempt:
            rid = f"{rid}~{attempt}"
        events = detector.events(
            run_id=rid,
            priority=scope.priority if scope else "normal",
            correlation_id=scope.correlation_id if scope else None,
            produced_at=datetime.now(UTC),
            # the trigger's date key (the registry's): a detector naming another one raises
            date_field=scope.date_field if scope else None,
        )
        missed = missed_entities if isinstance(missed_entities, str) else tuple(missed_entities)
        return [with_missed(e, missed) for e in events]

    def publish_detected(
        self,
        detector: DetectedChanges,
        scope: Scope | None = None,
        *,
        missed_entities: Iterable[str] = (),
        attempt: str | None = None,
    ) -> tuple[PublishResult, ...]:
        """Publish the events of a change detector (one per changed date; none when nothing changed).

        Announce only committed rows: the router may trigger downstream consumers at once (a
        ``critical`` event has no quiet window), and a consumer reading the table before the
        commit landed misses the update. Committing first and then publishing loses the
        change when the publish fails (the retry finds the rows already equal and announces
        nothing), so use a transactional outbox (examples/processor_service): take the
        events from :meth:`detected_events`, write them in the same transaction as the rows,
        commit, then publish each with :meth:`publish_event` and delete it once published;
        a failed publish leaves it pending for the next run. Call this method directly only
        when the rows are already committed and a lost event is acceptable, or with no
        outbox: publishing before the commit (and rolling back on any exception) loses
        nothing, but a consumer may read the rows before the commit lands.

        The event ids derive from the change and the run (:func:`run_id`: the trigger id and
        the message id it came in) and ``attempt``, by default the detector's ``run_nonce``
        (one per detector, i.e. per run): every detection is a new event, as with
        :meth:`detected_events`. So a redelivered trigger whose rows went A -> B -> A since an
        earlier delivery, or a retry re-reporting the change after a failed commit, is heard
        -- with the ids of an earlier delivery the router would drop it as a redelivery, a
        lost update -- at the price of an extra downstream run when a redelivery reports a
        change already announced. ``attempt=""`` gives the run's ids alone (a redelivery
        reporting the same change repeats them and the router drops the copy): only where
        upstream cannot change between deliveries and every commit precedes its publish. A
        re-dispatch of the trigger (a new message) always gets new ids -- an idempotent re-run
        republishing the first run's change is heard and closes its trigger. The trigger's
        ``priority`` and ``correlation_id`` are carried over.

        ``missed_entities``: the trigger's ids this run did not process. The events then
        say ``status: partial`` and name them (:func:`with_missed`), so the router re-runs
        them whichever of the run's messages reaches it first. When nothing changed, the
        run's partial :meth:`report` is published instead (and returned: no second report
        is needed); without a ``scope`` that is a :class:`ValueError`. Without them, these events
        report the run as a success, which closes its trigger: a ``report(scope, "partial",
        missed_entities=...)`` of the same run reaching the router later reopens it; one
        reaching it earlier makes these events stale when the trigger came in a message with
        an id (they name that attempt), else its re-run is cancelled by these events.
        """
        missed = missed_entities if isinstance(missed_entities, str) else tuple(missed_entities)
        if attempt is None:
            attempt = getattr(detector, "run_nonce", None)
        events = self._detected(detector, scope, missed, attempt)
        if not events and missed:
            # no change event to carry the missed ids: the run's partial report does, else
            # the router would never re-run them
            if scope is None:
                raise ValueError(
                    "missed_entities of a run that changed nothing need the trigger's scope "
                    "(report(scope, 'partial', missed_entities=...))"
                )
            return (self.report(scope, "partial", missed_entities=missed),)
        return tuple(self.publish_event(e, scope=scope) for e in events)

    def report(
        self,
        scope: Scope,
        status: Status = "success",
        *,
        error: str | None = None,
        missed_entities: Iterable[str] = (),
        record_count: int | None = None,
        execution_id: str | None = None,
    ) -> PublishResult:
        """Publish a bare completion report for the trigger of ``scope`` (the closed loop,
        docs/ledger.md): call it when a run changed nothing (no event was published) or
        failed (``status="failed"``, ``error``), or with ``status="partial"`` and the
        ``missed_entities`` the router should re-run (missed ids make any status but
        ``failed`` a ``partial``, as :func:`with_missed` does for events). It names the trigger and no source,
        so it closes the trigger and routes nothing.

        A run that published change events reports its missed ids with them
        (``publish_detected(..., missed_entities=...)``): events that say success and reach
        the router after this report are stale when they name the attempt (a scope with a
        ``message_id``); else they name no attempt, and after a failure they close the
        trigger only once they outnumber the failure reports (extra runs, at worst a dead
        letter)."""
        day = scope.game_date or scope.start_date
        msg: dict[str, Any] = {
            "trigger_id": scope.trigger_id,
            # the message the trigger came in: the attempt this run is (next to the trigger
            # id), and what names the trigger when the body had no id (a mapped body),
            # instead of the oldest open trigger of the processor on the date
            "trigger_message_id": scope.message_id,
            "processor": scope.processor,
            # under game_date whatever the registry's date_field: the router's completion
            # reader falls back to it, and a report has no source, so a date_field that is
            # also a trigger marker (analysis_date) would read as a request to run
            "game_date": day.isoformat(),
            "status": status,
            "execution_id": execution_id or uuid.uuid4().hex,
        }
        if record_count is not None:
            msg["record_count"] = record_count
        if error:
            msg["error_message"] = error[:500]
        missed = missed_ids(missed_entities)
        if missed:
            msg["missed_entities"] = missed
            if status != "failed":  # as with_missed: the ledger closes a success or no_data
                msg["status"] = status = "partial"
        msg = {k: v for k, v in msg.items() if v is not None}
        data = encode_event(msg)
        attrs = {"status": status, "game_date": day.isoformat()}
        if scope.trigger_id:
            attrs["trigger_id"] = scope.trigger_id
        future = self.client.publish(self.topic, data, **attrs)
        message_id = str(future.result(timeout=self.timeout))
        return PublishResult(
            published=True,
            reason="published",
            event=msg,
            attributes=attrs,
            message_id=message_id,
            size_bytes=len(data),
        )

    async def publish_async(self, **kwargs: Any) -> PublishResult:
        """:meth:`publish` in a worker thread, for asyncio services."""
        return await asyncio.to_thread(lambda: self.publish(**kwargs))

    async def publish_event_async(
        self, event: Mapping[str, Any] | None, *, scope: Scope | None = None
    ) -> PublishResult:
        return await asyncio.to_thread(lambda: self.publish_event(event, scope=scope))

    def close(self) -> None:
        if self._client is not None and hasattr(self._client, "stop"):
            self._client.stop()
