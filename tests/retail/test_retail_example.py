"""The non-NBA example registry (examples/retail) end to end: a date field other than
game_date (business_date) and an entity with an irregular plural (person -> people) work
through validate, explain, replay, serve and report (issue 17, acceptance 4)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from scoperouter.cli import main
from scoperouter.errors import EventError
from scoperouter.messages.normalize import normalize_event
from scoperouter.processor_registry.loader import load_config
from scoperouter.router.planner import plan
from scoperouter.sdk import parse_trigger

REPO = Path(__file__).resolve().parents[2]
RETAIL = REPO / "examples" / "retail"
ROUTES = RETAIL / "routes.yaml"
EVENTS = RETAIL / "events"
AS_OF = "2026-03-08"


def _json_out(capsys: pytest.CaptureFixture[str], argv: list[str]) -> Any:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_retail_registry_is_valid_strict(capsys: pytest.CaptureFixture[str]) -> None:
    """validate --strict passes; its three known-harmless warnings are silenced in place."""
    out = _json_out(capsys, ["validate", "--strict", "--json", str(ROUTES)])
    assert out["valid"] and out["errors"] == [] and out["warnings"] == []
    assert {i["code"] for i in out["silenced"]} == {"unmapped_input"}


def test_explain_reads_business_date_and_people(capsys: pytest.CaptureFixture[str]) -> None:
    """explain: the event's business_date is the date, 'people' names persons (and 'stores'
    stores), several entity types unite, and the occurrences lookback follows each member's
    next three visits; the output speaks business_date, never game_date."""
    argv = ["explain", str(EVENTS / "sales_correction.json"), "--config", str(ROUTES)]
    out = _json_out(capsys, [*argv, "--as-of", AS_OF, "--json"])
    assert out["event"]["business_date"] == "2026-03-02" and "game_date" not in out["event"]
    got = {d["processor"]: d for d in out["decisions"]}
    assert got["store_sales_summary"] == {
        "processor": "store_sales_summary",
        "action": "run",
        "scope": "entities",
        "entity_type": "store",
        "entity_ids": ["S01"],  # S01 itself, and m-002 visited S01 that day
        "dates": ["2026-03-02"],
        "reason": "entity_scope",
    }
    # S01's shoppers on 03-02 (m-001, m-002) and m-002 itself; m-001's next 3 visits are
    # 03-03, 03-05, 03-07 and m-002's 03-03, 03-06 (examples/retail/data/relations)
    assert got["member_profile"]["entity_ids"] == ["m-001", "m-002"]
    assert got["member_profile"]["dates"] == [
        "2026-03-02", "2026-03-03", "2026-03-05", "2026-03-06", "2026-03-07",
    ]  # fmt: skip
    assert {p for p, d in got.items() if d["action"] == "skip"} == {
        "member_offers",
        "stock_position",
        "store_rankings",
    }
    assert main([*argv, "--as-of", AS_OF]) == 0
    text = capsys.readouterr().out
    assert "member_profile       run     people  2" in text and "persons" not in text


@pytest.mark.parametrize(
    ("entities", "reason"),
    [
        ({"people": ["m-003"]}, "entity_scope"),
        ({"person": ["m-003"]}, "entity_scope"),  # the singular always works
        ({"persons": ["m-003"]}, "unmapped_entity_type"),  # no guessed plural
    ],
)
def test_only_declared_entity_keys_name_people(entities: dict[str, list[str]], reason: str) -> None:
    """The explicit plural replaces name+s: 'persons' is not a key of this registry."""
    cfg = load_config(ROUTES)
    ev = {"source": "crm.members", "business_date": "2026-03-02", "affected_entities": entities}
    event = normalize_event(ev, cfg.registry)
    decision = {d.processor: d for d in plan(cfg.registry, cfg.relations, event, date(2026, 3, 8))}
    assert decision["member_profile"].reason == reason


def test_game_date_is_not_this_registrys_date(capsys: pytest.CaptureFixture[str]) -> None:
    """An event carrying game_date but no business_date is rejected naming business_date."""
    ev = RETAIL / "events" / "sales_correction.json"
    data = json.loads(ev.read_text(encoding="utf-8"))
    data["game_date"] = data.pop("business_date")
    cfg = load_config(ROUTES)
    with pytest.raises(EventError) as exc:
        normalize_event(data, cfg.registry)
    assert exc.value.reason == "missing_date"
    assert "no business_date" in str(exc.value)


def test_replay_triggers_carry_business_date(capsys: pytest.CaptureFixture[str]) -> None:
    """replay --json: every trigger carries business_date plus start_date/end_date (and
    names its date field), never game_date; the SDK reads it back."""
    assert (
        main(
            [
                "replay",
                str(EVENTS / "day.jsonl"),
                "--config",
                str(ROUTES),
                "--as-of",
                AS_OF,
                "--dry-run",
                "--json",
            ]
        )
        == 0
    )
    triggers = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(triggers) == 23
    for t in triggers:
        assert "game_date" not in t and t["date_field"] == "business_date"
        assert t["business_date"] == t["start_date"] == t["end_date"]
        scope = parse_trigger(t)
        assert scope.game_date is not None and scope.game_date.isoformat() == t["business_date"]
    by = {(t["processor"], t["business_date"]) for t in triggers}
    assert ("store_rankings", "2026-03-08") in by  # lookback days: 6 -> 03-02..03-08
    assert ("member_offers", "2026-03-02") in by  # the cascade from mart.member_profile
    people = [t for t in triggers if t["entity_type"] == "person"]
    assert people and all(i.startswith("m-") for t in people for i in t["entity_ids"])


def _post(port: int, body: bytes) -> int:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/events", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        status: int = resp.status
        return status


def _wait(predicate: Any, proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + 60
    while not predicate():
        assert proc.poll() is None, log.read_text(errors="replace")[-2000:]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_serve_then_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """serve: POSTed events (business_date, people) become triggers in the outbox keyed by
    business_date; report then reads the daemon's execution log with the retail registry."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    state = tmp_path / "state"
    log = tmp_path / "serve.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scoperouter.cli", "serve", "--config", str(ROUTES),
             "--state-dir", str(state), "--port", str(port), "--as-of", AS_OF],
            stdout=fh, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait(lambda: b"HTTP ingress listening" in log.read_bytes(), proc, log, "the daemon")
        for line in (EVENTS / "day.jsonl").read_text(encoding="utf-8").splitlines():
            ev = json.loads(line)
            ev["priority"] = "critical"  # fire at once: no waiting for the 10 s window
            assert _post(port, json.dumps(ev).encode()) == 200
        outbox = state / "outbox.jsonl"

        def lines() -> list[dict[str, Any]]:
            if not outbox.exists():
                return []
            return [json.loads(x) for x in outbox.read_text(encoding="utf-8").splitlines() if x]

        _wait(lambda: len(lines()) >= 20, proc, log, "triggers in the outbox")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    triggers = lines()
    assert all("game_date" not in t and t["business_date"] == t["start_date"] for t in triggers)
    assert {t["processor"] for t in triggers} == {
        "member_offers", "member_profile", "stock_position", "store_rankings",
        "store_sales_summary",
    }  # fmt: skip
    assert (
        main(["report", "--log", str(state / "execution_log.sqlite"), "--config", str(ROUTES)]) == 0
    )
    text = capsys.readouterr().out
    assert "work: routed" in text and "member_profile" in text and "recommendation" in text
    rep = _json_out(
        capsys,
        ["report", "--log", str(state / "execution_log.sqlite"), "--config", str(ROUTES), "--json"],
    )
    assert {p["processor"] for p in rep["processors"]} >= {"member_profile", "store_rankings"}
    ranking = next(p for p in rep["processors"] if p["processor"] == "store_rankings")
    assert ranking["recommendation"] == "date-level" and ranking["granularity"] == "date"
