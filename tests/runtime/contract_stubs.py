"""Stubs of production's processor entry points (najicham/nba-stats-scraper) that ENFORCE
each contract: they build ``opts`` exactly as production does and answer 4xx to anything
production would reject -- and also (marked "stricter") to what production silently
mishandles (unknown processor names dropped, a missing list running everything, a missing
``game_date`` predicting for today). docs/targets.md states each contract with path:line.

One aiohttp app serves the three paths; ``accepted`` records what production would run,
``rejected`` every refusal with its status and reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ANALYTICS_KEY = "analytics-key-1"
COORDINATOR_KEY = "coordinator-key-1"

# data_processors/analytics/main_analytics_service.py:1220-1226
ANALYTICS_CLASSES = frozenset({
    "PlayerGameSummaryProcessor", "TeamOffenseGameSummaryProcessor",
    "TeamDefenseGameSummaryProcessor", "UpcomingPlayerGameContextProcessor",
    "UpcomingTeamGameContextProcessor",
})  # fmt: skip
# keys /process-date-range reads (:1182-1186, :1239), plus entities_changed: the patch of
# docs/migration.md that forwards it into opts
ANALYTICS_KEYS = frozenset({
    "start_date", "end_date", "processors", "backfill_mode", "dataset_prefix",
    "skip_downstream_trigger", "entities_changed",
})  # fmt: skip
# data_processors/precompute/main_precompute_service.py:303-309
PRECOMPUTE_CLASSES = frozenset({
    "TeamDefenseZoneAnalysisProcessor", "PlayerShotZoneAnalysisProcessor",
    "PlayerDailyCacheProcessor", "PlayerCompositeFactorsProcessor", "MLFeatureStoreProcessor",
})  # fmt: skip
# keys /process-date reads (:273-278, :324-331), plus the entities_changed patch
PRECOMPUTE_KEYS = frozenset({
    "analysis_date", "processors", "backfill_mode", "strict_mode", "skip_dependency_check",
    "dataset_prefix", "trigger_source", "correlation_id", "triggered_by", "entities_changed",
})  # fmt: skip
# keys /start reads (predictions/coordinator/coordinator.py:923-1013), plus trigger_source,
# which production's own Phase 4->5 caller sends and /start ignores
# (orchestration/cloud_functions/phase4_to_phase5/main.py:1673-1677)
COORDINATOR_KEYS = frozenset({
    "game_date", "min_minutes", "use_multiple_lines", "force", "require_real_lines",
    "prediction_run_mode", "correlation_id", "parent_processor", "dataset_prefix",
    "skip_completeness_check", "skip_postponement_check", "trigger_source",
})  # fmt: skip


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Call:
    service: str
    opts: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class ServiceStubs:
    """POST /process-date-range (analytics), /process-date (precompute), /start (coordinator)."""

    def __init__(self) -> None:
        self.accepted: list[Call] = []
        self.rejected: list[tuple[str, int, str]] = []
        app = web.Application()
        app.router.add_post("/process-date-range", self._wrap("analytics", self.analytics))
        app.router.add_post("/process-date", self._wrap("precompute", self.precompute))
        app.router.add_post("/start", self._wrap("coordinator", self.coordinator))
        self.server = TestServer(app)

    def url(self, path: str = "") -> str:
        return str(self.server.make_url(path)).rstrip("/")

    def _wrap(self, service: str, handler: Any) -> Any:
        async def run(request: web.Request) -> web.Response:
            try:
                status, opts = await handler(request)
            except Refused as exc:
                self.rejected.append((service, exc.status, exc.reason))
                return web.json_response({"error": exc.reason}, status=exc.status)
            self.accepted.append(Call(service, opts, dict(request.headers)))
            return web.json_response({"status": "completed", "opts": opts}, status=status)

        return run

    # ------------------------------------------------------------------ helpers
    @staticmethod
    async def _json_object(request: web.Request, *, force: bool = False) -> dict[str, Any]:
        if not force and request.content_type != "application/json":
            # Flask's request.get_json() without force answers 415
            raise Refused(415, f"Content-Type {request.content_type!r} is not JSON")
        try:
            data = json.loads(await request.read())
        except ValueError as exc:
            if force:  # get_json(force=True, silent=True) or {}
                return {}
            raise Refused(400, f"invalid JSON: {exc}") from exc
        if not isinstance(data, dict):
            # production: data.get(...) raises AttributeError -> 500; stricter: 400
            raise Refused(400, "the body is not a JSON object")
        return data

    @staticmethod
    def _keys(data: dict[str, Any], known: frozenset[str]) -> None:
        unknown = sorted(set(data) - known)
        if unknown:  # stricter: production ignores keys it does not read
            raise Refused(400, f"keys the service never reads: {unknown}")

    @staticmethod
    def _classes(data: dict[str, Any], known: frozenset[str]) -> list[str]:
        names = data.get("processors", [])
        if not names:  # stricter: production runs every processor
            raise Refused(400, "no 'processors': production would run all of them")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise Refused(400, "'processors' is a list of class names")
        unknown = sorted(set(names) - known)
        if unknown:  # stricter: production drops unknown names silently
            raise Refused(400, f"unknown processor classes {unknown}")
        return names

    @staticmethod
    def _day(value: Any, key: str, specials: tuple[str, ...]) -> str:
        if not isinstance(value, str) or not (value in specials or DAY_RE.match(value)):
            raise Refused(400, f"{key} {value!r} is not YYYY-MM-DD")  # stricter
        return value

    @staticmethod
    def _entities(data: dict[str, Any]) -> list[str] | None:
        ids = data.get("entities_changed")
        if ids is not None and not (
            isinstance(ids, list) and ids and all(isinstance(i, str) for i in ids)
        ):
            raise Refused(400, "entities_changed is a non-empty list of ids")
        return ids

    @staticmethod
    def _bool(data: dict[str, Any], key: str, default: bool) -> bool:
        v = data.get(key, default)
        if not isinstance(v, bool):
            raise Refused(400, f"{key} must be a boolean (got {v!r})")  # stricter
        return v

    # ---------------------------------------------------------------- services
    async def analytics(self, request: web.Request) -> tuple[int, dict[str, Any]]:
        """main_analytics_service.py:1159-1307 (auth :209-232)."""
        key = request.headers.get("X-API-Key")
        bearer = request.headers.get("Authorization", "")
        if key != ANALYTICS_KEY and not (bearer.startswith("Bearer ") and len(bearer) > 57):
            raise Refused(401, "Unauthorized")
        data = await self._json_object(request)
        start, end = data.get("start_date"), data.get("end_date")
        if not start or not end:  # :1188-1189
            raise Refused(400, "start_date and end_date required")
        self._keys(data, ANALYTICS_KEYS)
        specials = ("TODAY", "YESTERDAY", "TOMORROW")  # :1199-1216
        self._day(start, "start_date", specials)
        self._day(end, "end_date", specials)
        names = self._classes(data, ANALYTICS_CLASSES)
        backfill = self._bool(data, "backfill_mode", False)  # :1185
        opts = {  # :1241-1249, plus the entities_changed patch
            "start_date": start,
            "end_date": end,
            "triggered_by": "manual",
            "backfill_mode": backfill,
            "skip_downstream_trigger": data.get("skip_downstream_trigger", backfill),  # :1239
            "dataset_prefix": data.get("dataset_prefix", ""),
            "processors": names,
        }
        ids = self._entities(data)
        if ids is not None:
            opts["entities_changed"] = ids
        return 200, opts

    async def precompute(self, request: web.Request) -> tuple[int, dict[str, Any]]:
        """main_precompute_service.py:263-360 (no auth decorator)."""
        data = await self._json_object(request)
        day = data.get("analysis_date")
        if not day:  # :280-281
            raise Refused(400, "analysis_date required")
        self._keys(data, PRECOMPUTE_KEYS)
        self._day(day, "analysis_date", ("AUTO", "TODAY", "TOMORROW"))
        names = self._classes(data, PRECOMPUTE_CLASSES)
        opts = {  # :326-336, plus the entities_changed patch
            "analysis_date": day,
            "trigger_source": data.get("trigger_source", "manual"),
            "correlation_id": data.get("correlation_id"),
            "triggered_by": data.get("triggered_by", "manual"),
            "backfill_mode": self._bool(data, "backfill_mode", False),
            "strict_mode": self._bool(data, "strict_mode", True),
            "skip_dependency_check": self._bool(data, "skip_dependency_check", False),
            "dataset_prefix": data.get("dataset_prefix", ""),
            "processors": names,
        }
        ids = self._entities(data)
        if ids is not None:
            opts["entities_changed"] = ids
        return 200, opts

    async def coordinator(self, request: web.Request) -> tuple[int, dict[str, Any]]:
        """predictions/coordinator/coordinator.py:890-1576 (auth :472-497)."""
        bearer = request.headers.get("Authorization", "")
        if not bearer.startswith("Bearer "):
            given = request.headers.get("X-API-Key") or request.query.get("key")
            if given != COORDINATOR_KEY:
                raise Refused(401, "Unauthorized")
        data = await self._json_object(request, force=True)  # :919
        day = data.get("game_date")
        if not day:  # stricter: production predicts for today (:935-937)
            raise Refused(400, "no top-level game_date: production would predict for today")
        self._keys(data, COORDINATOR_KEYS)
        # production: strptime raises, the handler answers 500 (:934, :1570-1575)
        self._day(day, "game_date", ("TODAY", "TOMORROW"))
        return 202, {  # :1560-1568
            "game_date": day,
            "correlation_id": data.get("correlation_id"),
            "parent_processor": data.get("parent_processor"),
        }
