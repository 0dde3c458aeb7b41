"""Where triggers go: one sink per processor, built from ``registry.processors[p].target``
(with ``${ENV}`` interpolation) -- never from an event.

* :class:`~scoperouter.runtime.outbox.OutboxSink` -- append one trigger (SPEC section 3
  JSON) per line to a JSONL file (group-committed ``fdatasync``, rotation by size).
* :class:`~scoperouter.runtime.pubsub_sink.PubSubSink` -- publish with attributes
  ``processor``, the date (keyed by the registry's ``date_field``), ``scope``,
  ``trigger_id`` (dedupe key, whatever the data carries) and an ordering key per processor
  and date; Pub/Sub's limits are checked first
  (attributes, and the size of the whole publish request as the client library counts it:
  a message it would refuse is a local, permanent refusal -- a dead letter --, never
  retried). ``send`` returns the message id Pub/Sub assigned (recorded against the trigger).
* :class:`~scoperouter.runtime.http_sink.HttpSink` -- POST the Pub/Sub push envelope (what
  ``/process`` endpoints accept), or the bare trigger, or a mapped body and headers
  (``target.format``, docs/targets.md).

A target's ``mapping`` reshapes what is sent (:mod:`~scoperouter.processor_registry.
target_format`): the HTTP body, the Pub/Sub message data (attributes unchanged), the
outbox line (:class:`MappedSink`).

A sink raises :class:`DispatchError` (``retryable`` or not); the dispatcher retries with
backoff and dead-letters after the last attempt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

import aiohttp

from scoperouter.errors import ConfigError, ConfigIssue, DispatchError
from scoperouter.messages.models import Trigger
from scoperouter.processor_registry.compiled import CompiledRegistry, interpolate_env
from scoperouter.processor_registry.models import TargetSpec, parse_duration
from scoperouter.processor_registry.target_format import (
    Shaper,
    build_shaper,
    target_of,
    trigger_fields,
    users_fields,
)
from scoperouter.processor_registry.template import RenderError, TemplateError
from scoperouter.runtime.http_sink import HttpSink
from scoperouter.runtime.outbox import OutboxSink
from scoperouter.runtime.payloads import (
    ordering_key,
    trigger_attributes,
    trigger_bytes,
    trigger_json,
)
from scoperouter.runtime.pubsub_sink import (
    PubSubPublisher,
    PubSubSink,
    check_pubsub_limits,
    topic_path,
)
from scoperouter.runtime.redact import redact_url

__all__ = [
    "HttpSink",
    "MappedSink",
    "OutboxSink",
    "PubSubSink",
    "Sink",
    "SinkFactory",
    "check_pubsub_limits",
    "ordering_key",
    "topic_path",
    "trigger_attributes",
    "trigger_bytes",
    "trigger_json",
]


class Sink(Protocol):
    """Delivers one trigger; returns when the target acknowledged it."""

    name: str

    async def send(
        self, trigger: Trigger, *, message_id: str, body: bytes | None = None
    ) -> str | None:
        """Deliver ``trigger``; ``body`` is its serialised JSON when the caller has it.
        Returns the id the target gave the message (a Pub/Sub publish's message id), or
        None when the target assigns none (``message_id`` is what an HTTP target got)."""
        ...

    async def close(self) -> None: ...


class MappedSink:
    """Sends the mapped body instead of the trigger through a Pub/Sub or outbox sink (the
    Pub/Sub attributes and ordering key still come from the trigger)."""

    def __init__(self, inner: Sink, shaper: Shaper) -> None:
        self.inner = inner
        self.shaper = shaper
        self.name = inner.name

    async def send(
        self, trigger: Trigger, *, message_id: str, body: bytes | None = None
    ) -> str | None:
        try:
            data = self.shaper.data(trigger_json(trigger))
        except RenderError as exc:
            raise DispatchError(
                trigger.processor,
                self.name,
                str(exc),
                retryable=False,
                trigger_id=trigger.trigger_id,
                local=True,
            ) from exc
        return await self.inner.send(trigger, message_id=message_id, body=data)

    async def close(self) -> None:
        return None  # the factory closes the inner sink


class SinkFactory:
    """Builds (and owns) the sinks of a registry. Shared resources: one Pub/Sub publisher,
    one file descriptor per outbox path. Each HTTP target gets its *own* connection pool
    sized to its ``concurrency``, so a processor that hangs (holding all its connections)
    never makes another processor on the same host wait for a pool slot -- and time out
    waiting -- for its requests."""

    def __init__(
        self,
        state_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
        fsync: bool = True,
        outbox_max_bytes: int = 0,
        outbox_keep: int = 3,
    ) -> None:
        """``fsync``: outbox sends return only once their line is on disk (group-committed
        ``fdatasync``); the daemon may turn it off with ``--sync normal``.
        ``outbox_max_bytes``: rotate outbox files past this size (0: never), keeping
        ``outbox_keep`` rotated files."""
        self.state_dir = state_dir
        self.env = env
        self.fsync = fsync
        self.outbox_max_bytes = outbox_max_bytes
        self.outbox_keep = outbox_keep
        self.publisher = PubSubPublisher()
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._outboxes: dict[Path, OutboxSink] = {}
        self._sinks: list[Sink] = []

    def session(self, key: str = "<shared>", limit: int = 64) -> aiohttp.ClientSession:
        """The connection pool of ``key`` (one per HTTP target), at most ``limit`` connections."""
        s = self._sessions.get(key)
        if s is None or s.closed:
            s = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit, limit_per_host=0))
            self._sessions[key] = s
        return s

    def _session_factory(self, key: str, limit: int) -> Callable[[], aiohttp.ClientSession]:
        return lambda: self.session(key, limit)

    def _expand(self, text: str, path: tuple[str | int, ...]) -> str:
        try:
            return interpolate_env(text, self.env)
        except KeyError as exc:
            raise ConfigError(
                [ConfigIssue(f"environment variable {exc.args[0]} is not set", path=path)]
            ) from exc

    def shaper(
        self, processor: str, target: TargetSpec, registry: CompiledRegistry | None
    ) -> Shaper:
        """The compiled format of ``target`` for ``processor`` (``${ENV}`` expanded in
        literal strings), against the fields ``validate`` checked it with (a shared default
        target: those of every processor using it); an error here is a config error."""
        where: tuple[str | int, ...] = ("processors", processor, "target")
        if registry is not None and processor in registry.spec.processors:
            where, users = target_of(registry.spec, processor, target)
            fields = users_fields(registry.spec, users)
        else:  # a fallback sink serves any processor: no known values
            day = registry.date_field if registry is not None else "game_date"
            fields = trigger_fields([], None, day)
        try:
            return build_shaper(
                target,
                fields,
                literal_hook=lambda text, path: self._expand(text, path),
                where=where,
            )
        except TemplateError as exc:
            raise ConfigError([ConfigIssue(i.message, path=i.path) for i in exc.issues]) from exc

    def build(
        self, processor: str, target: TargetSpec, registry: CompiledRegistry | None = None
    ) -> Sink:
        where: tuple[str | int, ...] = ("processors", processor, "target")
        shaper = self.shaper(processor, target, registry)
        if target.pubsub is not None:
            topic = self._expand(target.pubsub.topic, (*where, "pubsub", "topic"))
            project = (
                self._expand(target.pubsub.project, (*where, "pubsub", "project"))
                if target.pubsub.project
                else None
            )
            try:
                path = topic_path(topic, project)
            except ValueError as exc:
                raise ConfigError([ConfigIssue(str(exc), path=(*where, "pubsub"))]) from exc
            sink: Sink = PubSubSink(
                path,
                publisher=self.publisher,
                ordering=target.pubsub.ordering,
                timeout_s=parse_duration(target.pubsub.timeout),
            )
        elif target.http is not None:
            url = self._expand(target.http.url, (*where, "http", "url"))
            if not url.startswith(("http://", "https://")):
                raise ConfigError(
                    [
                        ConfigIssue(
                            f"not an http(s) URL: {redact_url(url)!r}", path=(*where, "http", "url")
                        )
                    ]
                )
            audience = (
                self._expand(target.http.audience, (*where, "http", "audience"))
                if target.http.audience
                else None
            )
            sink = HttpSink(
                url,
                timeout_s=parse_duration(target.http.timeout),
                # one pool per processor: its dispatcher never has more than
                # ``concurrency`` requests in flight, so no request waits for a slot
                session_factory=self._session_factory(processor, target.concurrency),
                audience=audience,
                subscription=f"projects/scoperouter/subscriptions/{processor}",
                shaper=shaper,
                retry_on=target.http.retry_on,
            )
        else:
            assert target.outbox is not None
            raw = target.outbox.path
            p = (
                Path(self._expand(raw, (*where, "outbox", "path")))
                if raw
                else self.state_dir / "outbox.jsonl"
            )
            p = p.resolve()
            if p not in self._outboxes:
                self._outboxes[p] = OutboxSink(
                    p, fsync=self.fsync, max_bytes=self.outbox_max_bytes, keep=self.outbox_keep
                )
            sink = self._outboxes[p]
        self._sinks.append(sink)
        if shaper.body is not None and target.http is None:
            return MappedSink(sink, shaper)
        return sink

    def build_all(self, registry: CompiledRegistry) -> dict[str, Sink]:
        return {
            name: self.build(name, cp.target, registry) for name, cp in registry.processors.items()
        }

    async def close(self) -> None:
        for s in self._sinks:
            await s.close()
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()
        await asyncio.get_running_loop().run_in_executor(None, self.publisher.close)
