"""Durable router state behind one interface (:class:`StateStore`).

Invariant: the daemon depends on :class:`~scoperouter.state.api.StateStore` only; which
implementation backs it is decided once, from the ``--state`` location, by
:func:`open_state_store` -- a path or ``sqlite:///path`` for the embedded SQLite store
(one instance: the daemon holds a lock on the file), ``postgresql://...`` for PostgreSQL
(any number of replicas). Any other URL, and text that reads as a keyword-form connection
string (``host=... password=...``: :func:`is_keyword_dsn`), is refused, never made a file
named after it.
"""

from __future__ import annotations

from pathlib import Path

from scoperouter.state.api import StateStore
from scoperouter.state.merge import apply, contributions, merge, to_trigger
from scoperouter.state.model import StoreOptions

__all__ = [
    "KEYWORD_DSN_REFUSED",
    "StateStore",
    "StoreOptions",
    "apply",
    "contributions",
    "is_keyword_dsn",
    "is_postgres_url",
    "merge",
    "open_state_store",
    "sqlite_path",
    "to_trigger",
]


def is_postgres_url(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


# the refusal of a keyword-form DSN: it names none of the text (a password is in it)
KEYWORD_DSN_REFUSED = (
    "looks like a keyword-form connection string (key=value pairs): not a state store "
    "location; use a postgresql://... URL (or sqlite:///path for a SQLite file)"
)


def is_keyword_dsn(location: str) -> bool:
    """Whether ``location`` reads as a libpq keyword/value connection string (``host=db
    password=...``): no ``://``, an ``=`` and whitespace -- never a SQLite path someone
    meant, and its password must not become a file name."""
    return "://" not in location and "=" in location and any(c.isspace() for c in location)


def sqlite_path(location: str) -> str | None:
    """The file a SQLite store location names (``sqlite:///path``: the path after the three
    slashes, relative unless it starts with a fourth; or a path), None for any other URL."""
    if location.startswith("sqlite:///"):
        return location[len("sqlite:///") :]
    return None if "://" in location else location


def open_state_store(
    location: str | Path,
    options: StoreOptions | None = None,
    *,
    sync: str = "full",
    exclusive: bool = False,
    lock_timeout_s: float = 0.0,
) -> StateStore:
    """The store at ``location`` (schema migrated). SQLite only: ``sync``, and
    ``exclusive`` -- the daemon's open: hold the file's instance lock until close, waiting
    up to ``lock_timeout_s`` for another daemon to let it go, else
    :class:`~scoperouter.state.sqlite_lock.StoreInUse` (PostgreSQL takes any number of
    replicas: no lock)."""
    loc = str(location)
    if isinstance(location, str) and is_keyword_dsn(loc):
        raise ValueError(f"the location {KEYWORD_DSN_REFUSED}")
    if is_postgres_url(loc):
        try:
            from scoperouter.state.postgres import PostgresStateStore
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise RuntimeError(
                "a postgresql:// state store needs psycopg 3: pip install 'scoperouter[postgres]'"
            ) from exc
        return PostgresStateStore(loc, options)
    from scoperouter.state.sqlite import SqliteStateStore

    path = sqlite_path(loc)
    if path is not None:
        loc = path
    else:  # a typo or another database's URL: never a local file named after it
        scheme = loc.split("://", 1)[0]
        raise ValueError(
            f"unsupported state store scheme {scheme + '://'!r}: use postgresql://... "
            "or sqlite:///path"
        )
    if sync not in ("full", "normal"):
        raise ValueError(f"sync must be 'full' or 'normal', not {sync!r}")
    return SqliteStateStore(
        loc,
        options,
        sync="full" if sync == "full" else "normal",
        exclusive=exclusive,
        lock_timeout_s=lock_timeout_s,
    )
