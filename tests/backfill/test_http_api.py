"""``POST /backfills`` and ``GET /backfills/ID`` on the daemon's HTTP app (authenticated
like ``/events``), and the target executor (trigger with ``reason: backfill``, completion
by trigger id)."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from backfill_support import REPO

from scoperouter.backfill.daemon_executor import TargetExecutor, backfill_trigger, log_completions
from scoperouter.backfill.executor import CallableExecutor
from scoperouter.backfill.http_api import BackfillApi
from scoperouter.backfill.store import BackfillStore
from scoperouter.execution_log.sqlite import SqliteExecutionLog
from scoperouter.messages.models import Trigger
from scoperouter.processor_registry.loader import load_config
from scoperouter.runtime.http import IngressApp, bearer_verifier
from scoperouter.runtime.metrics import Metrics

AUTH = {"Authorization": "Bearer s3cret"}
BODY = {"start": "2025-11-01", "end": "2025-11-02", "processors": ["player_game_summary",
        "league_rankings"]}  # fmt: skip


@pytest.fixture
async def client(tmp_path: Path) -> Any:
    calls: list[tuple[str, date]] = []

    def fn(p: str, d: date) -> int:
        calls.append((p, d))
        return 10

    reg = load_config(REPO / "routes.yaml", with_relations=False).registry
    router = SimpleNamespace(metrics=Metrics())  # only the rejection counter is used here
    app = IngressApp(router, verifier=bearer_verifier("s3cret"))  # type: ignore[arg-type]
    app.backfills = BackfillApi(
        reg,
        lambda: None,
        tmp_path,
        lambda _body: CallableExecutor(fn),
        as_of=lambda: date(2025, 11, 30),
    )
    c: TestClient[Any, Any] = TestClient(TestServer(app.app))
    await c.start_server()
    yield c, calls, app
    await app.backfills.close()
    await c.close()


async def _wait_done(c: TestClient[Any, Any], bid: str) -> dict[str, Any]:
    for _ in range(500):
        resp = await c.get(f"/backfills/{bid}", headers=AUTH)
        got: dict[str, Any] = await resp.json()
        if got["status"] != "running":
            return got
        await asyncio.sleep(0.01)
    raise AssertionError("backfill did not finish")


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status", "error"),
    [
        ("post", "/backfills", {}, BODY, 401, "unauthorized"),
        ("get", "/backfills/x", {}, None, 401, "unauthorized"),
        ("get", "/backfills/nope", AUTH, None, 404, "unknown_backfill"),
        ("post", "/backfills", AUTH, {"start": "2025-11-01"}, 400, "invalid_backfill"),
        ("post", "/backfills", AUTH, {**BODY, "processors": ["nope"]}, 400, "invalid_backfill"),
        ("post", "/backfills", AUTH, [1], 400, "invalid_backfill"),
        ("post", "/backfills", AUTH, {**BODY, "start": "2010-01-01"}, 400, "invalid_backfill"),
        # YYYY-MM-DD only, as an event's game_date: not an ISO week, nor the basic format
        ("post", "/backfills", AUTH, {**BODY, "start": "2025-W44"}, 400, "invalid_backfill"),
        ("post", "/backfills", AUTH, {**BODY, "end": "20251102"}, 400, "invalid_backfill"),
        ("post", "/backfills", AUTH, {**BODY, "end": 20251102}, 400, "invalid_backfill"),
        # an empty selection of the wrong type selected every processor (202, 3,551 runs)
        ("post", "/backfills", AUTH, {**BODY, "processors": {}}, 400, "invalid_backfill"),
        ("post", "/backfills", AUTH, {**BODY, "processors": ""}, 400, "invalid_backfill"),
        ("post", "/backfills", AUTH, {**BODY, "from": False}, 400, "invalid_backfill"),
        ("post", "/backfills", AUTH, {**BODY, "from": 0}, 400, "invalid_backfill"),
        ("post", "/backfills", AUTH, {**BODY, "phases": "3-"}, 400, "invalid_backfill"),
        # a typo'd year 0001: its lookback dates are before the calendar's first (was 500)
        (
            "post",
            "/backfills",
            AUTH,
            {"start": "0001-01-01", "end": "0001-01-02"},
            400,
            "invalid_backfill",
        ),
    ],
)
async def test_rejections(client: Any, method: str, path: str, headers: dict[str, str],
                          body: Any, status: int, error: str) -> None:  # fmt: skip
    """Unauthenticated, unknown or invalid requests get the documented status and reason."""
    c, calls, _app = client
    resp = await getattr(c, method)(path, headers=headers, json=body)
    assert resp.status == status
    assert (await resp.json())["error"] == error
    assert calls == []


@pytest.mark.parametrize(
    "body",
    [
        {**BODY, "completion": "event"},  # this daemon has no log to read completions from
        {**BODY, "completion": "sent"},
        {**BODY, "rerun": "false"},
        {**BODY, "processors": ["nope"]},
        {**BODY, "phases": "x"},
    ],
)
async def test_a_refused_post_stores_no_backfill(tmp_path: Path, body: dict[str, Any]) -> None:
    """A POST answered 400 plans and stores nothing: the same request later is planned anew."""
    reg = load_config(REPO / "routes.yaml", with_relations=False).registry
    api = BackfillApi(
        reg,
        lambda: None,
        tmp_path,
        lambda _body: CallableExecutor(lambda _p, _d: 1),
        as_of=lambda: date(2025, 11, 30),
        no_event_completions="this daemon writes no SQLite execution log",
    )
    try:
        code, answer = await api.start(body)
    finally:
        await api.close()
    assert (code, answer["error"]) == (400, "invalid_backfill")
    path = tmp_path / "backfills.sqlite"
    if path.exists():
        store = BackfillStore(path)
        try:
            assert store.ids() == []
        finally:
            store.close()


@pytest.mark.parametrize(
    ("end", "cut_off"),
    [
        ("2025-11-30", None),  # the as-of date
        ("2025-12-02", {"start": "2025-12-01", "end": "2025-12-02"}),
    ],
)
async def test_a_new_backfill_past_as_of_answers_the_dates_it_cut_off(
    client: Any, end: str, cut_off: dict[str, str] | None
) -> None:
    """An end after the daemon's as-of: the answer names the requested dates not planned."""
    c, _calls, _app = client
    resp = await c.post("/backfills", headers=AUTH, json={**BODY, "end": end})
    got = await resp.json()
    assert resp.status == 202 and got.get("cut_off") == cut_off
    await _wait_done(c, got["backfill_id"])


async def test_post_runs_and_get_reports_then_same_request_resumes(client: Any) -> None:
    """202 with an id; GET shows it done with its counts; the same POST again is the same
    backfill (resumed) and runs nothing more."""
    c, calls, _app = client
    resp = await c.post("/backfills", headers=AUTH, json=BODY)
    assert resp.status == 202
    got = await resp.json()
    bid = got["backfill_id"]
    assert got["resumed"] is False and got["runs"] == 4
    final = await _wait_done(c, bid)
    assert final["status"] == "done" and final["counts"] == {"done": 4} and final["rows"] == 40
    assert sorted(calls) == sorted(
        (p, date(2025, 11, d)) for p in ("player_game_summary", "league_rankings") for d in (1, 2)
    )
    again = await c.post("/backfills", headers=AUTH, json=BODY)
    assert (await again.json())["backfill_id"] == bid
    assert (await _wait_done(c, bid))["status"] == "done"
    assert len(calls) == 4


class Sink:
    def __init__(self) -> None:
        self.sent: list[Trigger] = []

    async def send(self, trigger: Trigger, *, message_id: str, body: bytes | None = None) -> None:
        self.sent.append(trigger)

    async def close(self) -> None:
        return None


async def test_target_executor_sends_backfill_trigger_and_waits_for_its_completion(
    tmp_path: Path,
) -> None:
    """The trigger is date scope with reason backfill; the run ends when the execution log
    has a completion with its trigger id, and fails when none arrives in time."""
    sink = Sink()
    log_path = tmp_path / "log.sqlite"
    log = SqliteExecutionLog(log_path)
    ex = TargetExecutor(
        {"player_game_summary": sink}, log_completions(log_path), poll_s=0.01, timeout_s=5
    )
    day = date(2025, 11, 3)
    want = backfill_trigger("b1", "player_game_summary", day, 1)

    async def complete_later() -> None:
        while not sink.sent:
            await asyncio.sleep(0.01)
        log.record_completion("player_game_summary", day, trigger_id=want.trigger_id,
                              records_processed=450, entities_changed=None, duration_s=3.0)  # fmt: skip
        log.flush()

    out, _ = await asyncio.gather(
        ex.execute("player_game_summary", day, backfill_id="b1", attempt=1), complete_later()
    )
    assert out.ok
    (sent,) = sink.sent
    assert (sent.trigger_id, sent.scope, sent.reason, sent.start_date, sent.end_date) == (
        want.trigger_id, "date", "backfill", day, day)  # fmt: skip
    ex.timeout_s = 0.05
    late = await ex.execute("player_game_summary", day, backfill_id="b1", attempt=2)
    assert not late.ok and "no completion" in (late.error or "")
    missing = await ex.execute("league_rankings", day, backfill_id="b1", attempt=1)
    assert not missing.ok
    log.close()


@pytest.mark.parametrize(
    ("status", "record_count", "ok", "error"),
    [
        pytest.param("no_data", None, True, None, id="no_data"),
        pytest.param("success", None, True, None, id="success-without-record_count"),
        pytest.param("failed", None, False, "completion state failed", id="failed"),
        pytest.param("failed", 0, False, "completion state failed", id="failed-with-record_count"),
        pytest.param("partial", 7, True, None, id="partial"),
    ],
)
async def test_target_executor_ends_the_run_with_the_status_its_completion_reports(
    tmp_path: Path, status: str, record_count: int | None, ok: bool, error: str | None
) -> None:
    """The processor's completion event for the bf- trigger, logged as the daemon logs it, ends the run at once with its status: ok unless failed, whatever its record_count."""
    from scoperouter.messages.models import Event
    from scoperouter.runtime.log_rows import record_completion

    reg = load_config(REPO / "routes.yaml", with_relations=False).registry
    sink = Sink()
    log_path = tmp_path / "log.sqlite"
    log = SqliteExecutionLog(log_path)
    ex = TargetExecutor(  # a timeout the test would notice: the answer comes at once
        {"player_game_summary": sink}, log_completions(log_path), poll_s=0.01, timeout_s=5
    )
    day = date(2025, 11, 3)

    async def report_later() -> None:
        while not sink.sent:
            await asyncio.sleep(0.01)
        ev = Event(event_id="e-1", source="nba_analytics.player_game_summary", game_date=day,
                   status=status, record_count=record_count)  # type: ignore[arg-type]  # fmt: skip
        record_completion(log, reg, ev, sink.sent[0].trigger_id)  # as runtime/log_bridge.py
        log.flush()

    t0 = asyncio.get_running_loop().time()
    out, _ = await asyncio.gather(
        ex.execute("player_game_summary", day, backfill_id="b1", attempt=1), report_later()
    )
    log.close()
    assert (out.ok, out.error) == (ok, error)
    assert asyncio.get_running_loop().time() - t0 < 5  # never the timeout


@pytest.mark.parametrize(
    ("answers", "ok", "error"),
    [
        # the store unreachable twice, then the completion: the run ends with it
        pytest.param([OSError("down"), OSError("down"), "success"], True, None, id="recovers"),
        # unreachable until the timeout: a failed attempt, naming why it saw nothing
        pytest.param([OSError("down")], False, "its lookup failing: OSError: down", id="down"),
    ],
)
async def test_a_failing_completion_lookup_is_asked_again_until_the_timeout(
    answers: list[Any], ok: bool, error: str | None
) -> None:
    """A lookup that raises (a shared store unreachable) is logged and asked again at the next poll; the run fails only at its timeout, the lookup's error in its own."""
    asked: list[str] = []

    def lookup(trigger_id: str) -> str | None:
        asked.append(trigger_id)
        answer = answers[min(len(asked), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return str(answer)

    ex = TargetExecutor({"player_game_summary": Sink()}, lookup, poll_s=0.01, timeout_s=0.5)
    out = await ex.execute("player_game_summary", date(2025, 11, 3), backfill_id="b", attempt=1)
    assert out.ok == ok and (error is None) == (out.error is None)
    assert error is None or error in (out.error or ""), out.error
    assert len(asked) >= len(answers)


async def test_ack_mode_a_delivered_trigger_is_a_finished_run(tmp_path: Path) -> None:
    """Synchronous targets (/process-date-range): delivery is completion, no log needed."""
    sink = Sink()
    ex = TargetExecutor({"player_game_summary": sink}, log_completions(tmp_path / "none.sqlite"),
                        timeout_s=0.05, ack_is_completion=True)  # fmt: skip
    out = await ex.execute("player_game_summary", date(2025, 11, 3), backfill_id="b", attempt=1)
    assert out.ok and len(sink.sent) == 1 and sink.sent[0].reason == "backfill"


async def test_a_backfill_running_elsewhere_answers_409(client: Any, tmp_path: Path) -> None:
    """Another process holds the backfill's run lock: 409, and nothing runs here."""
    from scoperouter.backfill.store import BackfillStore

    c, calls, app = client
    resp = await c.post("/backfills", headers=AUTH, json=BODY)
    bid = (await resp.json())["backfill_id"]
    await _wait_done(c, bid)
    await app.backfills.close()
    app.backfills.tasks.clear()
    store = BackfillStore(tmp_path / "backfills.sqlite")
    with store.running(bid):  # as another process would
        again = await c.post("/backfills", headers=AUTH, json=BODY)
        assert again.status == 409 and (await again.json())["error"] == "already_running"
    store.close()
    assert len(calls) == 4


async def test_shadow_processors_get_nothing(tmp_path: Path) -> None:
    """A processor in shadow mode is planned and reported (skipped: shadow), never sent."""
    sink = Sink()
    ex = TargetExecutor({"player_game_summary": sink}, log_completions(tmp_path / "none.sqlite"),
                        ack_is_completion=True, shadow=frozenset({"player_game_summary"}))  # fmt: skip
    out = await ex.execute("player_game_summary", date(2025, 11, 3), backfill_id="b", attempt=1)
    assert out.ok and out.skipped == "shadow" and sink.sent == []


async def test_identical_posts_racing_on_a_new_backfill_are_one_backfill(
    client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two identical POSTs planning at once store one backfill: the second is its resume, not a 500."""
    from scoperouter.backfill import service
    from scoperouter.backfill.plan import Request, plan_backfill

    c, calls, app = client
    other: list[str] = []

    def racing(*args: Any, **kwargs: Any) -> Any:
        # the other POST's planning thread stores the same request first (found nothing yet)
        if not other:
            other.append("")
            req = Request(date(2025, 11, 1), date(2025, 11, 2), tuple(BODY["processors"]))
            prep = service.prepare(app.backfills.registry, None, req, state_dir=tmp_path,
                                   as_of=date(2025, 11, 30))  # fmt: skip
            other[0] = prep.backfill_id
            prep.store.close()
        return plan_backfill(*args, **kwargs)

    monkeypatch.setattr("scoperouter.backfill.service.plan_backfill", racing)
    resp = await c.post("/backfills", headers=AUTH, json=BODY)
    assert resp.status == 202, await resp.text()
    got = await resp.json()
    assert got["backfill_id"] == other[0] and got["resumed"] is True
    assert (await _wait_done(c, other[0]))["counts"] == {"done": 4}
    assert len(calls) == 4


@pytest.mark.parametrize(
    ("completion", "shadow", "warned"),
    [("ack", False, True), ("event", False, False), ("ack", True, False)],
)
async def test_ack_with_queued_targets_is_answered_with_a_warning(
    tmp_path: Path, completion: str, shadow: bool, warned: bool
) -> None:
    """POST with completion ack on outbox / Pub/Sub targets warns that done means sent, not run."""
    from scoperouter.backfill.http_api import backfill_api

    reg = load_config(REPO / "routes.yaml", with_relations=False).registry
    api = backfill_api(reg, lambda: None, tmp_path, {}, date(2025, 11, 30), shadow=shadow)
    code, got = await api.start({**BODY, "completion": completion, "max_attempts": 1})
    await api.close()
    assert code == 202
    assert ("warning" in got) is warned, got
    if warned:
        assert "player_game_summary, league_rankings" in got["warning"]


async def test_shadow_runs_are_reported_skipped_not_plain_done(tmp_path: Path) -> None:
    """Runs done without work (shadow) are counted apart: summary, end line, GET, on resume."""
    import io

    from scoperouter.backfill.plan import Request, plan_backfill
    from scoperouter.backfill.progress import Progress
    from scoperouter.backfill.runner import open_backfill, run_backfill
    from scoperouter.backfill.service import status
    from scoperouter.backfill.store import BackfillStore

    reg = load_config(REPO / "routes.yaml", with_relations=False).registry
    req = Request(date(2025, 11, 1), date(2025, 11, 2), ("player_game_summary", "league_rankings"))
    store = BackfillStore(tmp_path / "backfills.sqlite")
    bid, plan, _ = open_backfill(
        store, "k", lambda: plan_backfill(reg, req, as_of=date(2025, 11, 30)), 0.0
    )
    sink = Sink()
    ex = TargetExecutor({"league_rankings": sink}, log_completions(tmp_path / "none.sqlite"),
                        ack_is_completion=True, shadow=frozenset({"player_game_summary"}))  # fmt: skip
    out = io.StringIO()
    summary = await run_backfill(store, bid, plan, ex, {}, on_event=Progress(plan, mode="plain",
                                                                             out=out))  # fmt: skip
    assert summary.ok and summary.skipped == {"shadow": 2} and len(sink.sent) == 2
    assert summary.to_json()["skipped"] == {"shadow": 2}
    assert "4 done, 2 of them shadow (sent nothing), 0 failed" in out.getvalue()
    got = status(store, bid)
    assert got is not None and got["counts"] == {"done": 4} and got["skipped"] == {"shadow": 2}
    again = await run_backfill(store, bid, plan, ex, {}, resumed=True)
    assert again.executed == 0 and again.skipped == {"shadow": 2}
    store.close()


def test_a_store_from_before_the_skipped_column_opens(tmp_path: Path) -> None:
    """A backfills.sqlite written without the skipped column gains it; its runs still read."""
    import sqlite3

    from scoperouter.backfill.store import SCHEMA, BackfillStore

    path = tmp_path / "backfills.sqlite"
    db = sqlite3.connect(path)
    old_schema = SCHEMA.replace(" skipped TEXT,", "")
    assert "skipped" not in old_schema
    db.executescript(old_schema)
    db.execute("INSERT INTO backfill_runs(backfill_id, idx, processor, day, phase, deps)"
               " VALUES ('b', 0, 'league_rankings', '2025-11-01', 4, '[]')")  # fmt: skip
    db.commit()
    db.close()
    store = BackfillStore(path)
    assert [(r.state, r.skipped) for r in store.runs("b")] == [("waiting", None)]
    store.close()


def test_the_daemon_plans_as_of_today_in_utc_like_the_router_and_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --as-of, POST /backfills plans as of today in UTC, whatever the host's zone."""
    import time
    from datetime import UTC, datetime

    from scoperouter.backfill.http_api import backfill_api

    # a zone whose date differs from UTC's right now (UTC+14 from 12:00 UTC, else UTC-12)
    zone = "Etc/GMT-14" if datetime.now(UTC).hour >= 12 else "Etc/GMT+12"
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        reg = load_config(REPO / "routes.yaml", with_relations=False).registry
        api = backfill_api(reg, lambda: None, tmp_path, {}, None)
        before = datetime.now(UTC).date()
        got = api.as_of()
        assert got in (before, datetime.now(UTC).date()), (zone, got)
    finally:
        monkeypatch.undo()
        time.tzset()
