"""Where the closed loop's state lives between runs: the ledger, held windows and their
deadlines (one JSON document), and operator requests (redrive) for a running router.

Invariant: the interface is two small protocols, so the daemon's store (SQLite today,
PostgreSQL with the ``state`` package) can implement them in its own transaction; the file
implementation writes atomically (temp file + rename) and never leaves a torn document.
Requests are an append-only JSON Lines file; a router consumes them and records their ids;
a line that is no request (:func:`~scoperouter.router.closed_loop.request_problem`) is
skipped with a warning naming the file and the line, never applied.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from scoperouter.router.closed_loop import SNAPSHOT_VERSION, request_problem

LOOP_FILE = "loop.json"
REQUESTS_FILE = "loop-requests.jsonl"

logger = logging.getLogger("scoperouter.runtime")


class LoopState(Protocol):
    def load(self) -> dict[str, Any] | None:
        """The last saved snapshot (:meth:`ClosedLoop.snapshot`), None when none; a
        ValueError naming the file when it is unreadable, no object or another version's."""
        ...

    def save(self, snapshot: dict[str, Any]) -> None: ...


class FileLoopState:
    """``<state-dir>/loop.json``."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / LOOP_FILE

    def load(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read {self.path}: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError(
                f"cannot read {self.path}: not a JSON object (a {type(data).__name__})"
            )
        if data.get("version") != SNAPSHOT_VERSION:
            raise ValueError(
                f"cannot read {self.path}: written by another version of scoperouter (version "
                f"{data.get('version')!r}; this one reads version {SNAPSHOT_VERSION})"
            )
        return data

    def save(self, snapshot: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".loop-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(snapshot, fh, separators=(",", ":"))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class Requests:
    """``<state-dir>/loop-requests.jsonl``: ``{"id", "op": "redrive", "trigger_ids"}``."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / REQUESTS_FILE

    def append(self, request: dict[str, Any]) -> None:
        """Append ``request`` as one line, on disk when this returns. A torn last line (a
        crash while appending) is ended first: glued onto it, this request would be
        unreadable, skipped by :meth:`read` though the command reported it made."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(request, separators=(",", ":")) + "\n"
        with self.path.open("a+b") as fh:
            if fh.seek(0, os.SEEK_END) > 0:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    line = "\n" + line
            fh.write(line.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())

    def read(self) -> list[dict[str, Any]]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        out = []
        for n, line in enumerate(lines, 1):
            try:
                item = json.loads(line)
            except ValueError:
                if n < len(lines):  # a torn last line (a crash while appending): skipped
                    logger.warning("%s line %d: not JSON: skipped", self.path, n)
                continue
            problem = request_problem(item)
            if problem is not None:
                logger.warning("%s line %d: not a request (%s): skipped", self.path, n, problem)
                continue
            out.append(item)
        return out
