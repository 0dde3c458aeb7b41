"""Every error scoperouter raises, split by who is at fault.

* :class:`ConfigError` -- the registry (``routes.yaml``) or relation data is wrong: the
  operator fixes the file. Carries one or more :class:`ConfigIssue` with file/line/column
  and the YAML path.
* :class:`EventError` -- an incoming event cannot be understood: the producer is at fault.
  The router rejects it (HTTP 400 / dead-letter) with a reason code; it never crashes.
* :class:`DispatchError` -- a target could not be reached or refused a trigger: the
  downstream service (or the network) is at fault; retried, then dead-lettered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]


def format_path(path: Sequence[str | int]) -> str:
    """Render a YAML path like ``processors.player_game_summary.inputs[0].map``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<root>"


NO_FILE = "<string>"
"""A :class:`ConfigIssue`'s ``file`` when it names none (a state dir, an address, text)."""


@dataclass(frozen=True)
class ConfigIssue:
    """One finding about a configuration file, positioned as precisely as we can."""

    message: str
    file: str = NO_FILE
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based
    path: tuple[str | int, ...] = ()
    severity: Severity = "error"
    code: str = "invalid"

    def format(self) -> str:
        """``FILE:LINE:COL: severity: PATH: message`` (line/col default to 1 when unknown);
        ``severity: [PATH: ]message`` for an issue with neither file nor line."""
        if self.file == NO_FILE and self.line is None:
            where = f"{format_path(self.path)}: " if self.path else ""
            return f"{self.severity}: {where}{self.message}"
        line = self.line if self.line is not None else 1
        col = self.column if self.column is not None else 1
        return (
            f"{self.file}:{line}:{col}: {self.severity}: {format_path(self.path)}: {self.message}"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "file": None if self.file == NO_FILE else self.file,
            "line": self.line,
            "column": self.column,
            "path": format_path(self.path),
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
        }


class ScopeRouterError(Exception):
    """Base class of every error this package raises on purpose."""


class StoreBusy(ScopeRouterError):
    """A state store statement waited longer than ``lock_timeout`` for a lock another
    session holds (a replica frozen or cut off mid-transaction, a long operator query):
    the call failed and wrote nothing; retry it later (a batch: its sources redeliver it).
    See :mod:`scoperouter.state.pg_session`."""


class ConfigError(ScopeRouterError):
    """The registry or its relation data is invalid. Fix the file."""

    def __init__(self, issues: Sequence[ConfigIssue] | str, *, file: str = NO_FILE) -> None:
        if isinstance(issues, str):
            issues = [ConfigIssue(issues, file=file)]
        self.issues: tuple[ConfigIssue, ...] = tuple(issues)
        super().__init__("\n".join(i.format() for i in self.issues))

    @property
    def errors(self) -> tuple[ConfigIssue, ...]:
        return tuple(i for i in self.issues if i.severity == "error")


EventRejectReason = Literal[
    "not_json",
    "not_an_object",
    "too_large",
    "missing_source",
    "unknown_source",
    "ambiguous_source",
    "missing_date",
    "invalid_date",
    "invalid_date_range",
    "invalid_status",
    "invalid_field",
    "invalid_envelope",
    "not_a_completion",
]


@dataclass
class EventError(ScopeRouterError):
    """An event the router cannot understand. Rejected with a reason, never dropped."""

    reason: EventRejectReason
    detail: str
    event_id: str | None = None
    extra: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f" (event {self.event_id})" if self.event_id else ""
        return f"{self.reason}: {self.detail}{where}"


@dataclass
class DispatchError(ScopeRouterError):
    """A trigger could not be delivered to its target. ``local``: refused by the router
    before anything was sent (a quota check, a mapping that does not render, no target):
    it says nothing about the target, so its circuit breaker ignores it. ``retry_after_s``:
    the pause the target asked for before the next attempt (HTTP ``Retry-After``)."""

    processor: str
    target: str
    detail: str
    retryable: bool = True
    trigger_id: str | None = None
    local: bool = False
    retry_after_s: float | None = None

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        tid = f" trigger {self.trigger_id}" if self.trigger_id else ""
        return f"dispatch to {self.target} for {self.processor}{tid} failed: {self.detail}"

    @classmethod
    def from_exception(
        cls, processor: str, target: str, exc: BaseException, *, trigger_id: str | None = None
    ) -> DispatchError:
        """A retryable failure described by ``exc``'s type and message (chain it with
        ``raise ... from exc``)."""
        return cls(processor, target, f"{type(exc).__name__}: {exc}", trigger_id=trigger_id)
