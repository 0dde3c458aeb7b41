"""Where triggers go: one sink per processor, built from ``registry.processors[p].target``
(with ``${ENV}`` interpolation) -- never from an event.

* :class:`~scoperouter.runtime.outbox.OutboxSink` -- append one trigger (SPEC section 3
  JSON) per line to a JSONL file (group-committed ``fdatasync``, rotation by size).
* :class:`PubSubSink` -- publish with attributes ``processor``, the date (keyed by the
  registry's ``date_field``), ``scope``, ``trigger_id`` (dedupe key, whatever the data
  carries) and an ordering key per processor and date; Pub/Sub's limits are checked first
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
import contextlib
import importlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

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

# Pub/Sub quotas (https://cloud.google.com/pubsub/quotas#resource_limits)
MAX_ATTRIBUTES = 100
MAX_ATTRIBUTE_KEY_BYTES = 256
MAX_ATTRIBUTE_VALUE_BYTES = 1024
MAX_ORDERING_KEY_BYTES = 1024
# a publish request (topic, data, attributes, ordering key), as google-cloud-pubsub checks
# it before sending (publisher/_batch/thread.py _SERVER_PUBLISH_MAX_BYTES)
MAX_MESSAGE_BYTES = 10_000_000


def _varint_bytes(n: int) -> int:
    size = 1
    while n >= 0x80:
        n >>= 7
        size += 1
    return size


def _field_bytes(n: int, *, always: bool = False) -> int:
    """A length-delimited protobuf field of ``n`` bytes (tag, length, bytes); proto3 leaves
    an empty one out, except in a map entry."""
    return 1 + _varint_bytes(n) + n if n or always else 0


def publish_request_bytes(
    topic: str, data: bytes, attributes: Mapping[str, str], ordering: str | None
) -> int:
    """The size of the Pub/Sub ``PublishRequest`` carrying this one message: what the client
    library compares with :data:`MAX_MESSAGE_BYTES` (it raises ``MessageTooLargeError``)."""
    msg = _field_bytes(len(data))
    for k, v in attributes.items():  # map entries carry both key and value, even empty
        entry = _field_bytes(len(k.encode()), always=True) + _field_bytes(
            len(v.encode()), always=True
        )
        msg += _field_bytes(entry, always=True)
    msg += _field_bytes(len((ordering or "").encode()))
    return _field_bytes(len(topic.encode())) + _field_bytes(msg, always=True)


def check_pubsub_limits(
    data: bytes,
    attributes: Mapping[str, str],
    ordering: str | None,
    *,
    processor: str,
    target: str,
    topic: str = "",
) -> None:
    """Raise a non-retryable DispatchError when Pub/Sub would refuse the message (to
    ``topic``: its name counts towards the request size)."""

    def fail(why: str) -> DispatchError:
        return DispatchError(processor, target, why, retryable=False, local=True)

    if len(attributes) > MAX_ATTRIBUTES:
        raise fail(f"{len(attributes)} attributes (max {MAX_ATTRIBUTES})")
    for k, v in attributes.items():
        if len(k.encode()) > MAX_ATTRIBUTE_KEY_BYTES:
            raise fail(f"attribute key {k[:40]!r}... exceeds {MAX_ATTRIBUTE_KEY_BYTES} bytes")
        if len(v.encode()) > MAX_ATTRIBUTE_VALUE_BYTES:
            raise fail(f"attribute {k!r} exceeds {MAX_ATTRIBUTE_VALUE_BYTES} bytes")
    if ordering is not None and len(ordering.encode()) > MAX_ORDERING_KEY_BYTES:
        raise fail(f"ordering key exceeds {MAX_ORDERING_KEY_BYTES} bytes")
    size = publish_request_bytes(topic, data, attributes, ordering)
    if size > MAX_MESSAGE_BYTES:
        raise fail(
            f"publish request of {size} bytes (data {len(data)}) exceeds {MAX_MESSAGE_BYTES}"
        )


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


def topic_path(topic: str, project: str | None) -> str:
    if topic.startswith("projects/"):
        return topic
    proj = project or os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("PUBSUB_PROJECT_ID")
    if not proj:
        raise ValueError(
            f"topic {topic!r} needs a project: set target.pubsub.project, use "
            "projects/P/topics/T, or set GOOGLE_CLOUD_PROJECT"
        )
    return f"projects/{proj}/topics/{topic}"


class PubSubPublisher:
    """One shared google-cloud-pubsub PublisherClient (message ordering enabled), created
    lazily; honours PUBSUB_EMULATOR_HOST."""

    def __init__(self) -> None:
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            pubsub_v1: Any = importlib.import_module("google.cloud.pubsub_v1")

            self._client = pubsub_v1.PublisherClient(
                publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True),
                batch_settings=pubsub_v1.types.BatchSettings(max_latency=0.005, max_messages=100),
            )
        return self._client

    async def publish(
        self, topic: str, data: bytes, attributes: Mapping[str, str], ordering: str | None
    ) -> str:
        kwargs: dict[str, Any] = dict(attributes)
        if ordering:
            kwargs["ordering_key"] = ordering
        fut = self.client.publish(topic, data, **kwargs)
        try:
            mid: str = await asyncio.wrap_future(fut)
        except BaseException:
            if ordering:
                # a failed ordered publish pauses its key until resumed
                with contextlib.suppress(Exception):
                    self.client.resume_publish(topic, ordering)
            raise
        return mid

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.stop()
            self._client = None


class PubSubSink:
    def __init__(self, topic: str, *, publisher: PubSubPublisher, ordering: bool = True) -> None:
        self.topic = topic
        self.name = f"pubsub:{topic}"
        self._publisher = publisher
        self._ordering = ordering

    async def send(self, trigger: Trigger, *, message_id: str, body: bytes | None = None) -> str:
        """Publish ``trigger``; returns the message id Pub/Sub assigned (the processor's
        ``trigger_message_id``: the closed loop records it against the trigger)."""
        data = body or trigger_bytes(trigger)
        attrs = trigger_attributes(trigger)
        key = ordering_key(trigger) if self._ordering else None
        check_pubsub_limits(
            data, attrs, key, processor=trigger.processor, target=self.name, topic=self.topic
        )
        try:
            return await self._publisher.publish(self.topic, data, attrs, key)
        except Exception as exc:
            if type(exc).__name__ == "MessageTooLargeError":  # the client's own size check
                raise DispatchError(
                    trigger.processor,
                    self.name,
                    f"{type(exc).__name__}: {exc}",
                    retryable=False,
                    trigger_id=trigger.trigger_id,
                    local=True,
                ) from exc
            raise DispatchError.from_exception(
                trigger.processor, self.name, exc, trigger_id=trigger.trigger_id
            ) from exc

    async def close(self) -> None:
        return None


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
    ) -> None:
        """``fsync``: outbox sends return only once their line is on disk (group-committed
        ``fdatasync``); the daemon may turn it off with ``--sync normal``.
        ``outbox_max_bytes``: rotate outbox files past this size (0: never)."""
        self.state_dir = state_dir
        self.env = env
        self.fsync = fsync
        self.outbox_max_bytes = outbox_max_bytes
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
            fields = trigger_fields([], [], day)
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
            sink: Sink = PubSubSink(path, publisher=self.publisher, ordering=target.pubsub.ordering)
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
                self._outboxes[p] = OutboxSink(p, fsync=self.fsync, max_bytes=self.outbox_max_bytes)
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
