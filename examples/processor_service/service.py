"""An example scoped processor service: ``player_game_summary`` on a tiny sqlite table.

Invariant: no change is committed unannounced, and nothing is announced before it is
committed. A transactional outbox: each run writes the changed rows *and* their completion
events (into ``pending_events``, same database) in one transaction and commits; only then
are the pending events published, oldest first, each deleted once its publish returned.
Any exception before the commit rolls everything back (no rows, no events) and answers 500,
so the redelivered trigger finds the same change and announces it. A publish failing after
the commit leaves its events pending and answers 500 too: every run (and the service's
start) first publishes whatever is still pending, under the event ids computed when the
rows were written -- a re-published event is a true duplicate, which the router drops.
Publishing before the commit instead would let the router trigger a downstream consumer
(at once, for a ``critical`` event) that reads the table before the commit landed; committing
the rows alone first would lose the change when the publish fails (the retry finds the rows
already equal and has nothing to announce).

It has the shape of today's Cloud Run processors -- ``POST /process`` receives the Pub/Sub
push envelope -- and uses the SDK end to end:

1. :func:`scoperouter.sdk.parse_trigger` turns the request body into a ``Scope``
   (a legacy date-only message is a full-date scope);
2. the work is restricted to the scope with :func:`scoperouter.sdk.qmark_filter`
   (BigQuery processors use :func:`scoperouter.sdk.entity_filter` the same way);
3. the recomputed rows are compared with every stored row of the scope, date by date,
   field by field (:class:`scoperouter.sdk.change_detection.ChangeDetector`): only changed
   rows are rewritten, and the rows of players whose raw rows disappeared are deleted
   (and announced);
4. :meth:`scoperouter.sdk.CompletionPublisher.detected_events` builds one completion event
   per date with the players and fields that changed (none when nothing changed); they are
   committed with the rows and then published by
   :meth:`scoperouter.sdk.CompletionPublisher.publish_event` (a date-level event above the
   size limit);
5. a run that changed nothing commits a ``success`` report of its trigger instead, with the
   records it processed, published by :meth:`scoperouter.sdk.CompletionPublisher.report`
   through the same outbox: every run is reported (docs/ledger.md), so with a
   ``completion_timeout`` a run that changed nothing is not taken for a lost one.

Run it::

    python -m examples.processor_service --db /tmp/pgs.sqlite --seed \\
        --topic nba-phase3-analytics-complete --port 8080
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from aiohttp import web

from scoperouter.sdk import CompletionPublisher, PublishResult, Scope, TriggerError, parse_trigger
from scoperouter.sdk.bigquery import qmark_filter
from scoperouter.sdk.change_detection import ChangeDetector, EntityChanges

PROCESSOR = "player_game_summary"
SOURCE = "nba_analytics.player_game_summary"
#: Output fields compared between runs; they become the event's ``changed_fields``.
FIELDS = ("points", "minutes", "injury_status", "available")
log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS raw_player_stats (
    player_lookup TEXT NOT NULL, game_date TEXT NOT NULL, team_abbr TEXT NOT NULL,
    points INTEGER, minutes REAL, injury_status TEXT,
    PRIMARY KEY (player_lookup, game_date));
CREATE TABLE IF NOT EXISTS player_game_summary (
    player_lookup TEXT NOT NULL, game_date TEXT NOT NULL,
    points INTEGER, minutes REAL, injury_status TEXT, available INTEGER,
    PRIMARY KEY (player_lookup, game_date));
-- the outbox: completion events committed with the rows they announce, not yet published
-- (``scope``: the trigger's Scope as JSON, which the publish reads attributes from); a run
-- that changed nothing stores its report instead ({"report": {...}}: report()'s arguments)
CREATE TABLE IF NOT EXISTS pending_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL,
    event TEXT NOT NULL, scope TEXT NOT NULL);
"""

SEED_ROWS = (
    ("lebronjames", "2025-11-19", "LAL", 28, 35.5, "available"),
    ("anthonydavis", "2025-11-19", "LAL", 31, 36.0, "questionable"),
    ("stephencurry", "2025-11-19", "GSW", 33, 34.0, "available"),
    ("draymondgreen", "2025-11-19", "GSW", 9, 30.0, "available"),
)


def connect(path: str = ":memory:") -> sqlite3.Connection:
    """Open the example database (schema created if needed); usable from worker threads."""
    db = sqlite3.connect(path, check_same_thread=False)
    db.executescript(SCHEMA)
    return db


def seed(db: sqlite3.Connection, rows: Iterable[tuple[Any, ...]] = SEED_ROWS) -> None:
    """Load raw rows (insert or replace)."""
    db.executemany("INSERT OR REPLACE INTO raw_player_stats VALUES (?, ?, ?, ?, ?, ?)", rows)
    db.commit()


@dataclass(frozen=True)
class RunResult:
    """What one trigger did: rows recomputed, per date what changed, and the events this
    request published (pending events of earlier runs first, then its own)."""

    scope: Scope
    rows_processed: int
    detector: ChangeDetector
    published: tuple[PublishResult, ...] = ()

    @property
    def changes(self) -> Mapping[date, EntityChanges]:
        return {d: c for d, c in self.detector.changes.items() if c}

    def to_json(self) -> dict[str, object]:
        return {
            "processor": PROCESSOR,
            "scope": self.scope.scope,
            "entity_ids": list(self.scope.entity_ids),
            "dates": [d.isoformat() for d in self.scope.dates],
            "rows_processed": self.rows_processed,
            "changed": {
                d.isoformat(): {"entities": list(c.entities), "fields": list(c.fields)}
                for d, c in sorted(self.changes.items())
            },
            "published": [
                {
                    "message_id": r.message_id,
                    "event_id": (r.event or {}).get("event_id"),
                    "fell_back": r.fell_back,
                }
                for r in self.published
                if r.published
            ],
        }


class PlayerGameSummary:
    """The processor: recompute summary rows for a scope, commit them with their events, publish.

    One transaction per run (the module's invariant): the changed rows and the run's
    completion events (``pending_events``; a ``success`` report when nothing changed) are
    written and committed together; an exception
    before the commit rolls both back and propagates. Then every pending event is published,
    oldest first, and deleted once its publish returned; a failed publish propagates and
    leaves it (and those after it) pending for the next run, which publishes them before it
    computes anything. A delete whose commit fails re-publishes its event later: a duplicate
    of the same id, which the router drops.
    """

    def __init__(self, db: sqlite3.Connection, publisher: CompletionPublisher) -> None:
        self.db = db
        self.publisher = publisher
        self._lock = threading.Lock()

    def run(self, scope: Scope) -> RunResult:
        """Publish what is pending, recompute ``scope``, commit rows and events, publish them."""
        with self._lock:
            earlier = self._publish_pending()
            try:
                rows_processed, detector = self._write(scope)
                events = self.publisher.detected_events(detector, scope)
                if not events:  # nothing changed: the run is still reported (docs/ledger.md)
                    report = {
                        "status": "success",
                        "record_count": rows_processed,
                        "execution_id": detector.run_nonce,  # a republish: the same run
                    }
                    events = [{"event_id": f"report-{detector.run_nonce}", "report": report}]
                self.db.executemany(
                    "INSERT INTO pending_events (event_id, event, scope) VALUES (?, ?, ?)",
                    [(e["event_id"], json.dumps(e), scope.model_dump_json()) for e in events],
                )
                self.db.commit()
            except BaseException:
                self.db.rollback()
                raise
            published = self._publish_pending()
            return RunResult(scope, rows_processed, detector, (*earlier, *published))

    def publish_pending(self) -> tuple[PublishResult, ...]:
        """Publish every pending event, oldest first (e.g. at the service's start)."""
        with self._lock:
            return self._publish_pending()

    def _publish_pending(self) -> tuple[PublishResult, ...]:
        pending = self.db.execute(
            "SELECT seq, event, scope FROM pending_events ORDER BY seq"
        ).fetchall()
        results = []
        for seq, event, scope in pending:
            stored, trigger = json.loads(event), Scope.model_validate_json(scope)
            if "report" in stored:
                results.append(self.publisher.report(trigger, **stored["report"]))
            else:
                results.append(self.publisher.publish_event(stored, scope=trigger))
            try:
                self.db.execute("DELETE FROM pending_events WHERE seq = ?", (seq,))
                self.db.commit()
            except BaseException:
                self.db.rollback()
                raise
        return tuple(results)

    def _write(self, scope: Scope) -> tuple[int, ChangeDetector]:
        """Write the scope's changed rows (uncommitted); the rows read and what changed."""
        # Only the scope's rows are read and rewritten: ids travel as parameters.
        where, params = qmark_filter(scope, "player_lookup")
        raw = self.db.execute(
            "SELECT player_lookup, game_date, points, minutes, injury_status "
            f"FROM raw_player_stats {where}",
            params,
        ).fetchall()
        stored: dict[tuple[str, str], dict[str, object]] = {
            (r[0], r[1]): dict(zip(FIELDS, r[2:], strict=True))
            for r in self.db.execute(
                f"SELECT player_lookup, game_date, {', '.join(FIELDS)} "
                f"FROM player_game_summary {where}",
                params,
            )
        }
        after: dict[str, dict[str, dict[str, object]]] = {}
        for pid, day, points, minutes, status in raw:
            after.setdefault(day, {})[pid] = {
                "points": points,
                "minutes": minutes,
                "injury_status": status,
                "available": int(status != "out"),
            }
        # the registry's key for several players (routes.yaml: "players"); without it the
        # SDK sends the singular "player", which every registry accepts too
        detector = ChangeDetector(SOURCE, "player", entity_plural="players")
        # Every date of the scope, and before = every stored row of the scope on it: a
        # player whose raw rows disappeared is diffed too (removed: announced, row deleted)
        for d in scope.dates:
            day = d.isoformat()
            rows = after.get(day, {})
            before = {pid: row for (pid, sday), row in stored.items() if sday == day}
            changes = detector.observe(d, before=before, after=rows)
            for pid in changes.entities:
                if pid in rows:
                    self.db.execute(
                        "INSERT OR REPLACE INTO player_game_summary VALUES (?, ?, ?, ?, ?, ?)",
                        (pid, day, *(rows[pid][f] for f in FIELDS)),
                    )
                else:
                    self.db.execute(
                        "DELETE FROM player_game_summary WHERE player_lookup = ? AND game_date = ?",
                        (pid, day),
                    )
        return len(raw), detector


PROCESSOR_KEY = web.AppKey("processor", PlayerGameSummary)
HISTORY_KEY = web.AppKey("history", list[RunResult])


async def handle_process(request: web.Request) -> web.Response:
    """``POST /process``: Pub/Sub push envelope in, scoped run, completion event out."""
    body = await request.read()
    try:
        scope = parse_trigger(body, expect_processor=PROCESSOR)
    except TriggerError as exc:
        # 400: Pub/Sub push retries it until the dead-letter policy takes it.
        return web.json_response({"error": exc.reason, "detail": exc.detail}, status=400)
    app = request.app
    try:
        result = await asyncio.to_thread(app[PROCESSOR_KEY].run, scope)
    except Exception as exc:
        # 500: Pub/Sub push redelivers the trigger. Failed before the commit: rolled back,
        # the retry announces the change; failed publishing: the events stay pending and
        # the retry publishes them first
        log.exception("run of trigger %s failed", scope.trigger_id)
        return web.json_response(
            {"error": "run_failed", "detail": f"{type(exc).__name__}: {exc}"[:500]}, status=500
        )
    app[HISTORY_KEY].append(result)
    return web.json_response(result.to_json())


async def handle_health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "processor": PROCESSOR})


async def publish_pending_at_start(app: web.Application) -> None:
    """Publish the events a previous process committed but did not publish; a failure is
    logged, not fatal (the next run publishes them first)."""
    try:
        await asyncio.to_thread(app[PROCESSOR_KEY].publish_pending)
    except Exception:
        log.exception("publishing the pending events at start failed")


def create_app(db: sqlite3.Connection, publisher: CompletionPublisher) -> web.Application:
    """The aiohttp application (``POST /process``, ``GET /health``); it publishes the
    pending events at start."""
    app = web.Application()
    app[PROCESSOR_KEY] = PlayerGameSummary(db, publisher)
    app[HISTORY_KEY] = []
    app.on_startup.append(publish_pending_at_start)
    app.router.add_post("/process", handle_process)
    app.router.add_get("/health", handle_health)
    return app
