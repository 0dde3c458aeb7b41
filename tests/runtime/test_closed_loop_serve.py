"""Issue 14 acceptance 3: through ``scoperouter serve`` (a subprocess, as a user runs it) and
the Pub/Sub emulator, a failed completion
re-dispatches the same trigger id; after ``run_retries`` it is a dead letter;
``scoperouter deadletters redrive`` sends it again, and its completion closes it. And a
completion naming only the Pub/Sub message id its processor received
(``trigger_message_id``, production's field) closes the trigger that message carried."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from runtime_support import GAME_DAY, free_port, load, write_registry

from scoperouter.cli import main
from scoperouter.runtime.loop_store import FileLoopState

PROJECT = "scoperouter-loop"
PGS = "player_game_summary"
INJURY = {
    "event_id": "inj-1",
    "source": "nba_raw.nbac_injury_report",
    "game_date": GAME_DAY.isoformat(),
    "affected_entities": {"players": ["lalplayer01"]},
    "changed_fields": ["injury_status"],
}


def _topic(client: Any, name: str, sub: str) -> None:
    from google.cloud import pubsub_v1

    client.create_topic(name=name)
    s = pubsub_v1.SubscriberClient()
    s.create_subscription(request={"name": sub, "topic": name, "ack_deadline_seconds": 10})
    s.close()


def _topics(tag: str) -> tuple[str, str, str, str]:
    """The trigger topic and subscription ``pgs-<tag>`` and the input pair ``in-<tag>``,
    created on the emulator: (trigger topic, trigger sub, input topic, input sub)."""
    from google.cloud import pubsub_v1

    names = [
        f"projects/{PROJECT}/{kind}/{p}-{tag}"
        for p in ("pgs", "in")
        for kind in ("topics", "subscriptions")
    ]
    pub = pubsub_v1.PublisherClient()
    _topic(pub, names[0], names[1])
    _topic(pub, names[2], names[3])
    pub.stop()
    return names[0], names[1], names[2], names[3]


def _serve(path: Path, state: Path, port: int, sub: str, log: Any) -> subprocess.Popen[bytes]:
    """``scoperouter serve`` on ``path`` pulling ``sub``, its output to ``log``."""
    return subprocess.Popen(
        [sys.executable, "-m", "scoperouter.cli", "serve", "--config", str(path),
         "--state-dir", str(state), "--port", str(port), "--subscription", sub,
         "--as-of", GAME_DAY.isoformat(), "--sync", "normal", "--shutdown-timeout", "5"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ},
    )  # fmt: skip


def _publish(topic: str, body: dict[str, Any]) -> None:
    from google.cloud import pubsub_v1

    pub = pubsub_v1.PublisherClient()
    pub.publish(topic, json.dumps(body).encode()).result(timeout=30)
    pub.stop()


def _pull_message(sub: str, timeout: float = 60.0) -> tuple[dict[str, Any], str]:
    """The next message on ``sub`` (acked): its JSON body and its Pub/Sub message id."""
    from google.cloud import pubsub_v1

    client = pubsub_v1.SubscriberClient()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            resp = client.pull(request={"subscription": sub, "max_messages": 1}, timeout=10)
            if resp.received_messages:
                m = resp.received_messages[0]
                client.acknowledge(request={"subscription": sub, "ack_ids": [m.ack_id]})
                body: dict[str, Any] = json.loads(m.message.data)
                return body, str(m.message.message_id)
        raise AssertionError(f"no message on {sub}")
    finally:
        client.close()


def _pull_one(sub: str, timeout: float = 60.0) -> dict[str, Any]:
    return _pull_message(sub, timeout)[0]


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text: str = r.read().decode()
        return text


async def _until(pred: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached")


@pytest.mark.emulator
@pytest.mark.timeout(300)
async def test_failed_completion_redispatch_dead_letter_redrive(
    pubsub_emulator: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """fail -> same trigger id again -> fail -> dead letter -> redrive -> success closes it."""
    tag = uuid.uuid4().hex[:6]
    _, trig_sub, in_topic, in_sub = await asyncio.to_thread(_topics, tag)
    path = write_registry(
        tmp_path,
        targets={PGS: {"pubsub": {"topic": f"pgs-{tag}", "project": PROJECT}}},
        defaults={"run_retries": 1, "retry_backoff": "200ms"},
    )
    load(path)  # the registry is valid before serve reads it
    state, port, log_path = tmp_path / "state", free_port(), tmp_path / "serve.log"
    with log_path.open("wb") as log:
        proc = _serve(path, state, port, in_sub, log)
    try:
        await asyncio.to_thread(_publish, in_topic, INJURY)
        first = await asyncio.to_thread(_pull_one, trig_sub)
        tid = first["trigger_id"]

        def report(status: str) -> dict[str, Any]:
            return {
                "trigger_id": tid,
                "processor": PGS,
                "game_date": GAME_DAY.isoformat(),
                "status": status,
                "execution_id": uuid.uuid4().hex,
                "error_message": "boom" if status == "failed" else None,
            }

        await asyncio.to_thread(_publish, in_topic, report("failed"))
        again = await asyncio.to_thread(_pull_one, trig_sub)
        assert again["trigger_id"] == tid  # re-dispatched with the same trigger id
        await asyncio.to_thread(_publish, in_topic, report("failed"))

        def dead() -> list[str]:
            snap = FileLoopState(state).load() or {}
            return [
                e["trigger"]["trigger_id"]
                for e in snap.get("ledger", {}).get("entries", [])
                if e["phase"] == "dead"
            ]

        await _until(lambda: dead() == [tid])
        assert main(["deadletters", "list", "--state-dir", str(state), "--json"]) == 0
        (row,) = json.loads(capsys.readouterr().out)
        assert (row["trigger_id"], row["outcome"], row["error"], row["attempts"]) == (
            tid,
            "failed",
            "boom",
            2,
        )
        assert main(["deadletters", "redrive", tid, "--state-dir", str(state)]) == 0
        redriven = await asyncio.to_thread(_pull_one, trig_sub)
        assert redriven["trigger_id"] == tid
        await asyncio.to_thread(_publish, in_topic, report("success"))

        def entry() -> dict[str, Any]:
            snap = FileLoopState(state).load() or {}
            (e,) = [e for e in snap["ledger"]["entries"] if e["trigger"]["trigger_id"] == tid]
            return e

        await _until(lambda: entry()["phase"] == "succeeded")
        assert dead() == [] and entry()["attempt"] == 3
        whats = [h[1] for h in entry()["history"]]
        assert whats == [
            "dispatched",
            "failed",
            "dispatched",
            "failed",
            "dead_letter",
            "redrive",
            "dispatched",
            "success",
        ]
        text = await asyncio.to_thread(_metrics, port)
        for line in (
            'scoperouter_trigger_outcomes_total{outcome="dead_letter"} 1.0',
            'scoperouter_trigger_outcomes_total{outcome="redrive"} 1.0',
            'scoperouter_trigger_outcomes_total{outcome="failed"} 1.0',
        ):
            assert line in text, text
        assert "scoperouter_triggers_open " in text
    finally:
        proc.terminate()
        proc.wait(30)
    assert proc.returncode == 0, log_path.read_text()[-3000:]


@pytest.mark.emulator
@pytest.mark.timeout(300)
async def test_completion_naming_the_pubsub_message_id_closes_its_trigger(
    pubsub_emulator: str, tmp_path: Path
) -> None:
    """A completion naming only the trigger message's Pub/Sub id closes that trigger: no timeout, no re-dispatch."""
    tag = uuid.uuid4().hex[:6]
    _, trig_sub, in_topic, in_sub = await asyncio.to_thread(_topics, tag)
    path = write_registry(
        tmp_path,
        targets={PGS: {"pubsub": {"topic": f"pgs-{tag}", "project": PROJECT}}},
        # a lost match would time out within the test and be re-dispatched
        defaults={"run_retries": 1, "retry_backoff": "200ms", "completion_timeout": "5s"},
    )
    load(path)
    state, port, log_path = tmp_path / "state", free_port(), tmp_path / "serve.log"
    with log_path.open("wb") as log:
        proc = _serve(path, state, port, in_sub, log)
    try:
        await asyncio.to_thread(_publish, in_topic, INJURY)
        trigger, message_id = await asyncio.to_thread(_pull_message, trig_sub)
        tid = trigger["trigger_id"]
        assert message_id and tid not in message_id  # the emulator's own id, not ours
        await asyncio.to_thread(
            _publish,
            in_topic,
            {  # production's report: the message id it ran on, no trigger id
                "trigger_message_id": message_id,
                "processor_name": "PlayerGameSummaryProcessor",
                "processor": PGS,
                "game_date": GAME_DAY.isoformat(),
                "status": "success",
                "execution_id": uuid.uuid4().hex,
            },
        )

        def entry() -> dict[str, Any]:
            snap = FileLoopState(state).load() or {}
            entries = snap.get("ledger", {}).get("entries", [])
            got = [e for e in entries if e["trigger"]["trigger_id"] == tid]
            return got[0] if got else {}

        await _until(lambda: entry().get("phase") == "succeeded")
        await asyncio.sleep(6.0)  # past completion_timeout: a closed trigger stays closed
        e = entry()
        assert (e["phase"], e["attempt"], e["timeouts"]) == ("succeeded", 1, 0)
        assert [h[1] for h in e["history"]] == ["dispatched", "success"]
    finally:
        proc.terminate()
        proc.wait(30)
    assert proc.returncode == 0, log_path.read_text()[-3000:]
