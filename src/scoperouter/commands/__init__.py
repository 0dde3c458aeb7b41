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
from datetime import UTC, date, datetime
from pathlib import Path

DEFAULT_CONFIG = "routes.yaml"
DEFAULT_LOG = Path(".scoperouter") / "execution_log.sqlite"  # = execution_log.DEFAULT_LOG_PATH


def iso_date(text: str) -> date:
    """argparse type: a YYYY-MM-DD date (usage error, exit 2, otherwise)."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid date {text!r} (expected YYYY-MM-DD)") from None


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
            help="the router's today: lookbacks stop there (default: today)",
        )
    if json:
        g.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    return p


def config_path(args: argparse.Namespace) -> str:
    """``--config``, else ``./routes.yaml``."""
    value = getattr(args, "config", None)
    return str(value) if value else DEFAULT_CONFIG


def as_of(args: argparse.Namespace) -> date:
    """``--as-of``, else today in UTC -- the date ``serve`` caps lookbacks at (a local
    date would make ``explain`` disagree with ``serve`` for hours every day)."""
    value: date | None = getattr(args, "as_of", None)
    return value or datetime.now(UTC).date()


def log_path(args: argparse.Namespace, default: Path = DEFAULT_LOG) -> Path:
    """``--log``, else ``default``."""
    value: Path | None = getattr(args, "log", None)
    return value or default
