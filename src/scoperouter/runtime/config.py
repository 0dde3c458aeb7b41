"""Every operator setting of ``scoperouter serve``, resolved in one pure function.

Precedence, per setting: the command line, then the environment, then ``routes.yaml``'s
``server:`` section, then the default. :data:`SETTINGS` is the one table of settings
(name, ``server:`` key, flag, environment variables, type, default); :func:`resolve` reads
no file, no clock and no process state -- its inputs are passed in -- so it is tested by
a table and ``serve --print-config`` prints exactly what the daemon would use, with where
each value came from.

Invariant: a value that does not parse raises :class:`ConfigError` naming its source (the
flag, the environment variable, or ``server.<key>``); nothing is computed when the
argument parser is built, so ``PORT=abc scoperouter validate`` never fails.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from scoperouter.errors import ConfigError, ConfigIssue
from scoperouter.processor_registry.models import parse_duration
from scoperouter.runtime.affinity import parse_cpus
from scoperouter.state import KEYWORD_DSN_REFUSED, is_keyword_dsn

_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def seconds(value: object) -> float:
    """A duration: ``30s``/``2m``/``50ms`` or a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 30s, got {value!r}")
    if isinstance(value, int | float):
        if not value >= 0 or value == float("inf"):  # negative, NaN or infinite
            raise ValueError(f"expected a non-negative duration, got {value!r}")
        return float(value)
    text = str(value).strip()
    if _NUMBER.fullmatch(text):
        return float(text)
    try:
        return parse_duration(text)
    except ValueError:
        raise ValueError(f"expected a duration like 30s, got {text!r}") from None


def _port(value: object) -> int:
    n = _int(value, 0)
    if n > 65535:
        raise ValueError(f"expected a port number (0-65535), got {n}")
    return n


def _int(value: object, minimum: int) -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected an integer, got {value!r}")
    try:
        n = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise ValueError(f"expected an integer, got {value!r}") from None
    if n < minimum:
        raise ValueError(f"expected an integer >= {minimum}, got {n}")
    return n


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _choice(*options: str) -> Callable[[object], str]:
    def parse(value: object) -> str:
        text = str(value).strip()
        if text not in options:
            raise ValueError(f"expected one of {', '.join(options)}, got {text!r}")
        return text

    return parse


def _text(value: object) -> str:
    text = str(value).strip()
    if not text:
        raise ValueError("expected a non-empty string")
    return text


def _state(value: object) -> str:
    """A state store location (``postgresql://...``, ``sqlite:///path``, a path); a
    keyword-form DSN is refused without repeating it (its password)."""
    text = _text(value)
    if is_keyword_dsn(text):
        raise ValueError(f"the value {KEYWORD_DSN_REFUSED}")
    return text


def _log_level(value: object) -> str:
    """A logging level name (``debug`` -> ``DEBUG``); ValueError for one logging lacks."""
    text = _text(value).upper()
    names = [n for n in logging.getLevelNamesMapping() if n not in ("NOTSET", "WARN", "FATAL")]
    if text not in names:
        raise ValueError(f"expected a log level ({', '.join(names)}), got {value!r}")
    return text


def _date(value: object) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError(f"expected a date YYYY-MM-DD, got {value!r}") from None


@dataclass(frozen=True, slots=True)
class Setting:
    """One operator setting. ``router``: it is a :class:`RouterOptions` field."""

    name: str  # the ``server:`` key and the ServeConfig field
    parse: Callable[[object], Any]
    default: Any
    help: str
    flag: str | None = None  # its command-line flag (dest: the name), None: no flag
    env: tuple[str, ...] | None = None  # None: SCOPEROUTER_<NAME>; (): no variable
    yaml: bool = True  # settable in ``server:``
    router: str | None = None  # RouterOptions field


def _env(name: str) -> tuple[str, ...]:
    return (f"SCOPEROUTER_{name.upper()}",)


_S: list[Setting] = [
    Setting("state_dir", lambda v: Path(_text(v)), Path(".scoperouter"), "SQLite state and outbox", "--state-dir"),
    Setting("state", _state, None, "state store: postgresql://... (replicas) or sqlite:///path (default: SQLite in state_dir)", "--state"),
    Setting("lease", seconds, 30.0, "a fired or claimed trigger stays reserved to its replica", "--lease"),
    Setting("replica_id", _text, None, "this replica's name in trigger leases (default host-pid-random)", "--replica-id"),
    Setting("state_poll_interval", seconds, 0.2, "look for due windows and expired leases this often"),
    Setting("state_lock_timeout", seconds, 30.0, "PostgreSQL: a statement waiting this long for a lock fails (the batch is retried; 0s: waits for ever)", "--state-lock-timeout"),
    Setting("state_idle_in_transaction_timeout", seconds, 60.0, "PostgreSQL: the server ends a session idle inside a transaction this long (a frozen replica's), releasing its locks (0s: never)", "--state-idle-in-transaction-timeout"),
    Setting("host", _text, "127.0.0.1", "HTTP bind address", "--host"),
    Setting("port", lambda v: _port(v), 8080, "HTTP port (0 = any free port)", "--port", ("PORT",)),
    Setting("http", _bool, True, "serve HTTP (false: Pub/Sub only)", "--no-http"),
    Setting("subscription", _text, None, "Pub/Sub subscription to pull", "--subscription"),
    Setting("as_of", _date, None, "lookback cap date (default: today, UTC)", "--as-of"),
    Setting("sync", _choice("full", "normal"), "full", "SQLite synchronous mode", "--sync"),
    Setting("max_body_bytes", lambda v: _int(v, 1), 1_048_576, "largest request body", "--max-body-bytes"),
    Setting("dedup_horizon", seconds, 86400.0, "how long event ids are remembered", "--dedup-horizon"),
    Setting("bearer_token", _text, None, "shared push token (else server.auth)", "--bearer-token", yaml=False),
    Setting("dead_letter_topic", _text, None, "Pub/Sub topic receiving dead letters", "--dead-letter-topic"),
    Setting("execution_log", lambda v: Path(_text(v)), None, "execution log (default <state_dir>/execution_log.sqlite)", "--execution-log"),
    Setting("log", _bool, True, "write the execution log", "--no-log"),
    Setting("execution_log_retention", seconds, 30 * 86400.0, "keep execution-log rows this long (0s: forever)", "--execution-log-retention"),
    Setting("outbox_max_bytes", lambda v: _int(v, 0), 256 * 1024 * 1024, "rotate outbox.jsonl past this size (0: never)", "--outbox-max-bytes"),
    Setting("outbox_keep", lambda v: _int(v, 1), 3, "rotated outbox files kept (outbox.jsonl.1 .. .N); the next rotation deletes the oldest, logged at WARNING", "--outbox-keep"),
    Setting("lock_timeout", seconds, 30.0, "wait for another daemon to release the state dir or SQLite file", "--lock-timeout"),
    Setting("relations_refresh", seconds, 60.0, "poll relation CSV files (0 = only SIGHUP)", "--relations-refresh"),
    Setting("shutdown_timeout", seconds, 8.0, "finish in-flight work on SIGTERM", "--shutdown-timeout"),
    Setting("loop", _choice("auto", "asyncio", "uvloop"), "auto", "event loop", "--loop"),
    Setting("cpus", parse_cpus, "auto", "CPUs the daemon's threads run on: auto (one, when it may use more), all (the scheduler's choice) or a list like 0 or 2-3", "--cpus"),
    Setting("log_level", _log_level, "INFO", "daemon log level", "--log-level"),
    # per processor in routes.yaml (``mode``), for all of them only on the command line
    Setting("shadow", _bool, False, "every processor in shadow mode (call no target)", "--shadow", (), yaml=False),
    Setting("max_batch", lambda v: _int(v, 1), 512, "events per ingest transaction", router="max_batch"),
    Setting("ingest_linger", seconds, 0.002, "wait this long for more events to join an ingest transaction (fewer fsyncs; adds up to this to an event's ack)", router="ingest_linger_s"),
    Setting("retry_backoff_base", seconds, 0.5, "first dispatch retry delay", router="backoff_base_s"),
    Setting("retry_backoff_cap", seconds, 60.0, "longest dispatch retry delay", router="backoff_cap_s"),
    Setting("breaker_threshold", lambda v: _int(v, 1), 5, "failed attempts in a row that open a target's circuit", router="breaker_threshold"),
    Setting("dispatch_page_interval", seconds, 1.0, "page waiting triggers from the store at least this often", router="pump_interval_s"),
    Setting("compact_every", lambda v: _int(v, 1), 20000, "journal rows before a window snapshot", router="compact_every"),
    Setting("compact_min_interval", seconds, 5.0, "least time between window snapshots", router="compact_min_interval_s"),
    Setting("mark_flush_interval", seconds, 0.05, "how often dispatch outcomes are written", router="mark_flush_interval_s"),
    Setting("housekeeping_interval", seconds, 60.0, "how often old rows are pruned", router="housekeeping_interval_s"),
    Setting("done_retention", seconds, 7 * 86400.0, "keep delivered triggers this long", router="done_retention_s"),
    Setting("dead_letter_retention", seconds, 7 * 86400.0, "keep dead letters of rejected events this long (dead triggers: until redriven or discarded)", router="dead_letter_retention_s"),
    Setting("store_backoff_base", seconds, 0.05, "first retry delay of a failing store", router="store_backoff_base_s"),
    Setting("store_backoff_cap", seconds, 5.0, "longest retry delay of a failing store", router="store_backoff_cap_s"),
    Setting("store_log_interval", seconds, 30.0, "log a failing store at most this often", router="store_log_interval_s"),
]  # fmt: skip


def _with_env(s: Setting) -> Setting:
    env = s.env if s.env is not None else _env(s.name)
    if s.name == "port":
        env = ("PORT", "SCOPEROUTER_PORT")
    return Setting(s.name, s.parse, s.default, s.help, s.flag, env, s.yaml, s.router)


SETTINGS: tuple[Setting, ...] = tuple(_with_env(s) for s in _S)
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
YAML_KEYS: tuple[str, ...] = tuple(s.name for s in SETTINGS if s.yaml)


@dataclass(frozen=True)
class ServeConfig:
    """Resolved settings: ``values[name]`` and where each came from (``sources[name]``:
    ``--flag``, ``$VAR``, ``server.<key>`` or ``default``)."""

    values: Mapping[str, Any]
    sources: Mapping[str, str]

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def router_options(self) -> dict[str, Any]:
        """The :class:`RouterOptions` tuning fields these settings set (``as_of`` and the
        dedup horizon are daemon settings of their own)."""
        return {s.router: self.values[s.name] for s in SETTINGS if s.router is not None}

    def to_json(self) -> dict[str, dict[str, Any]]:
        def show(v: Any) -> Any:
            if isinstance(v, Path | date):
                return str(v)
            return v

        def secret(name: str, v: Any) -> Any:
            if name == "bearer_token" and v:
                return "***"
            if name == "state" and v:
                return redact_url(str(v))
            return show(v)

        return {
            s.name: {
                "value": secret(s.name, self.values[s.name]),
                "source": self.sources[s.name],
            }
            for s in SETTINGS
        }


def resolve(
    cli: Mapping[str, Any],
    env: Mapping[str, str],
    server: Mapping[str, Any],
    *,
    file: str = "routes.yaml",
    only: tuple[str, ...] | None = None,
) -> ServeConfig:
    """Resolve every setting (``only``: just these). ``cli``: flag values by setting name,
    None = not given; ``env``: the environment; ``server``: the keys set in ``routes.yaml``
    ``server:`` (only those actually written). Raises ConfigError naming the source of a
    bad value."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    issues: list[ConfigIssue] = []
    for s in SETTINGS if only is None else tuple(BY_NAME[n] for n in only):
        candidates: list[tuple[str, Any, str, tuple[str | int, ...]]] = []
        if s.flag is not None and cli.get(s.name) is not None:
            candidates.append((s.flag, cli[s.name], "<command line>", (s.flag,)))
        for var in s.env or ():
            if env.get(var, "") != "":
                candidates.append((f"${var}", env[var], "<environment>", (var,)))
                break
        if s.yaml and server.get(s.name) is not None:
            candidates.append((f"server.{s.name}", server[s.name], file, ("server", s.name)))
        if not candidates:
            values[s.name], sources[s.name] = s.default, "default"
            continue
        where, raw, origin, path = candidates[0]
        try:
            # a flag's value may already be typed by argparse (int, float, Path, date):
            # it is still checked like the same value from the environment or server:
            values[s.name] = s.parse(raw)
        except ValueError as exc:
            issues.append(ConfigIssue(str(exc), file=origin, path=path))
            continue
        sources[s.name] = where
    if issues:
        raise ConfigError(issues)
    return ServeConfig(values, sources)


# query parameters of a DSN that hold a credential (libpq: password, sslpassword)
_SECRET_QUERY_KEY = re.compile(r"pass|secret|token|key", re.IGNORECASE)
# a keyword-form DSN's ``key=value`` (a value quoted '...' may hold spaces)
_KEYWORD_VALUE = re.compile(r"(\w+\s*=\s*)(?:'(?:[^'\\]|\\.)*'?|\S*)")


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (a DSN is printed and logged): the
    userinfo password and the value of a credential query parameter (``?password=``).
    A URL that does not parse shows only its scheme (its password cannot be found); a
    keyword-form DSN (``host=db password=x``) shows its keys with every value masked."""
    if is_keyword_dsn(url):
        return _KEYWORD_VALUE.sub(r"\1***", url)
    try:
        parts = urlsplit(url)
        port = parts.port  # (raises on a malformed port, like urlsplit on a malformed host)
    except ValueError:
        scheme = url.split("://", 1)[0] if "://" in url else ""
        return f"{scheme}://***" if scheme else "***"
    pieces = []
    for piece in parts.query.split("&") if parts.query else ():
        k, eq, _v = piece.partition("=")
        pieces.append(f"{k}=***" if eq and _SECRET_QUERY_KEY.search(k) else piece)
    query = "&".join(pieces)
    if parts.password is None:
        # (urlunsplit would turn sqlite:///x into sqlite:/x: only a masked query is rebuilt)
        return url if query == parts.query else url.replace(f"?{parts.query}", f"?{query}", 1)
    parts = parts._replace(query=query)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if port is not None:
        host = f"{host}:{port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


def cli_values(args: Any) -> dict[str, Any]:
    """The flags a user gave, by setting name (argparse defaults are None: not given)."""
    out: dict[str, Any] = {}
    for s in SETTINGS:
        if s.flag is not None:
            out[s.name] = getattr(args, s.name, None)
    return out


def format_config(cfg: ServeConfig, *, auth: dict[str, Any] | None = None) -> str:
    """``serve --print-config``: one ``name = value  (source)`` line per setting (``auth``:
    the ``auth`` line, :meth:`scoperouter.runtime.auth_mode.AuthMode.to_json`)."""
    rows = cfg.to_json()
    if auth is not None:
        rows["auth"] = auth
    width = max(len(n) for n in rows)
    return "\n".join(
        f"{name:<{width}} = {r['value']!r}  ({r['source']})" for name, r in rows.items()
    )
