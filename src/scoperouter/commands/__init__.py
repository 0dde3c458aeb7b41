"""One module per CLI subcommand; each exposes ``register(subparsers)``.

Invariant: the options several commands share -- ``--config``, ``--log`` / ``--no-log``,
``--as-of`` and ``--json`` -- are defined once here, as argparse parent parsers
(:func:`common`), so they are spelled, typed and documented the same everywhere. Their
defaults are ``None`` and each command resolves them when it runs (:func:`config_path`,
:func:`as_of`), and no default is computed from the environment while the parser is built:
one command's environment (``PORT`` for ``serve``) can never break another.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scoperouter.processor_registry.compiled import CompiledRegistry

DEFAULT_CONFIG = "routes.yaml"
DEFAULT_LOG = Path(".scoperouter") / "execution_log.sqlite"  # = execution_log.DEFAULT_LOG_PATH


def iso_date(text: str) -> date:
    """argparse type: a YYYY-MM-DD date (usage error, exit 2, otherwise) -- only that form,
    as an event's game_date (``date.fromisoformat`` also takes ``2025-W47`` and ``20251117``)."""
    from scoperouter.messages.event_fields import DATE_RE

    try:
        if not DATE_RE.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid date {text!r} (expected YYYY-MM-DD)") from None


def nonempty(text: str) -> str:
    """argparse type: a value with something in it (usage error, exit 2, otherwise) -- a
    filter given as ``--processor "$P"`` with ``P`` unset must not read as no filter."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def common(
    *,
    config: bool = False,
    log: str | None = None,
    as_of: bool = False,
    json: bool = False,
) -> argparse.ArgumentParser:
    """A parent parser with the shared options a command takes.

    ``log="read"`` adds ``--log PATH`` (the execution log a command reads); ``log="write"``
    adds ``--log PATH`` and ``--no-log`` (the log a command appends to)."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("common options")
    if config:
        g.add_argument(
            "--config",
            metavar="FILE",
            default=None,
            help=f"the registry (default: ./{DEFAULT_CONFIG})",
        )
    if log is not None:
        verb = "read" if log == "read" else "append to"
        g.add_argument(
            "--log",
            metavar="PATH",
            type=Path,
            default=None,
            help=f"SQLite execution log to {verb} (default: ./{DEFAULT_LOG})",
        )
        if log == "write":
            g.add_argument("--no-log", action="store_true", help="write no execution log")
    if as_of:
        g.add_argument(
            "--as-of",
            metavar="DATE",
            type=iso_date,
            default=None,
            help="the router's today: lookbacks stop there (default: $SCOPEROUTER_AS_OF, else "
            "routes.yaml server.as_of, as serve reads them; else today -- replay: each "
            "event's virtual date)",
        )
    if json:
        g.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    return p


def config_path(args: argparse.Namespace) -> str:
    """``--config``, else ``./routes.yaml``."""
    value = getattr(args, "config", None)
    return str(value) if value else DEFAULT_CONFIG


def configured_as_of(args: argparse.Namespace, registry: CompiledRegistry) -> date | None:
    """The lookback cap ``serve`` would use, by its precedence: ``--as-of``, else
    ``$SCOPEROUTER_AS_OF``, else ``routes.yaml``'s ``server.as_of``; None when none is set
    (a bad value is a ConfigError naming where it came from, as ``serve``'s)."""
    from scoperouter.runtime.config import resolve

    server = registry.spec.server
    yaml = server.model_dump(exclude_unset=True, exclude={"auth"}) if server is not None else {}
    cfg = resolve(
        {"as_of": getattr(args, "as_of", None)}, os.environ, yaml,
        file=registry.file, only=("as_of",),
    )  # fmt: skip
    value: date | None = cfg["as_of"]
    return value


def as_of(args: argparse.Namespace, registry: CompiledRegistry) -> date:
    """:func:`configured_as_of`, else today in UTC -- the date ``serve`` caps lookbacks at
    (a local date would make ``explain`` disagree with ``serve`` for hours every day)."""
    return configured_as_of(args, registry) or datetime.now(UTC).date()


def log_path(args: argparse.Namespace, default: Path = DEFAULT_LOG) -> Path:
    """``--log``, else ``default``."""
    value: Path | None = getattr(args, "log", None)
    return value or default


def invalid_event_json(reason: str, detail: str, event_id: str | None, **more: object) -> str:
    """The ``--json`` error of an invalid event, for stdout (README, "``--json`` errors"):
    ``{"error": "invalid_event", "reason", "detail", "event_id"}`` and ``more``."""
    return json.dumps(
        {"error": "invalid_event", "reason": reason, "detail": detail, "event_id": event_id, **more}
    )


def fail(args: argparse.Namespace, message: str, rc: int = 1) -> int:
    """A command's own error: ``error: MESSAGE`` on stderr and, with ``--json`` (or
    ``--format json``), the ``invalid_config`` object main() prints for a ConfigError on
    stdout (README, "``--json`` errors"). Returns ``rc``."""
    from scoperouter.errors import ConfigIssue

    issue = ConfigIssue(message)
    print(issue.format(), file=sys.stderr)
    if getattr(args, "json", False) or getattr(args, "format", None) == "json":
        print(json.dumps({"error": "invalid_config", "issues": [issue.to_json()]}))
    return rc
