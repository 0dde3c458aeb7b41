"""``explain`` takes what ``serve``'s ``/events`` takes: a Pub/Sub push envelope is
unwrapped (its messageId names an event without an id), a broken one is a one-line error."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from scoperouter.cli import main

REPO = Path(__file__).resolve().parents[2]
EVENT = {
    "source": "nbac_injury_report",
    "game_date": "2025-11-19",
    "affected_entities": {"players": ["jalen-brunson"]},
    "changed_fields": ["injury_status"],
}


SUB_M1 = "projects/p/subscriptions/s#m-1"  # message m-1's event id (push.message_key)


def _explain(
    tmp_path: Path, body: object, capsys: pytest.CaptureFixture[str], *flags: str
) -> tuple[int, str, str]:
    """Run ``explain`` on ``body`` written to a file: (exit code, stdout, stderr)."""
    f = tmp_path / "event.json"
    f.write_text(json.dumps(body))
    cfg = str(REPO / "routes.yaml")
    rc = main(["explain", str(f), "--config", cfg, "--as-of", "2025-11-19", *flags])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _envelope(event: dict[str, object], **message: object) -> dict[str, object]:
    data = base64.b64encode(json.dumps(event).encode()).decode()
    return {"message": {"data": data, **message}, "subscription": "projects/p/subscriptions/s"}


def test_a_push_envelope_explains_as_its_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An envelope's decisions are its payload's, with the messageId (qualified by the
    subscription, as serve reads it) as the event id."""
    rc, plain, _ = _explain(tmp_path, {**EVENT, "event_id": SUB_M1}, capsys, "--json")
    assert rc == 0
    rc, wrapped, err = _explain(tmp_path, _envelope(EVENT, messageId="m-1"), capsys, "--json")
    assert (rc, err) == (0, "")
    assert json.loads(wrapped) == json.loads(plain)


@pytest.mark.parametrize(
    ("message", "says"),
    [
        ({"messageId": "m-2"}, "push message without data"),
        ({"data": "%%%", "messageId": "m-3"}, "push message.data is not valid base64"),
    ],
)
def test_a_broken_push_envelope_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], message: dict[str, object], says: str
) -> None:
    """A push envelope serve would dead-letter is refused with the problem, exit 1."""
    rc, out, err = _explain(tmp_path, {"message": message, "subscription": "s"}, capsys)
    assert rc == 1 and out == ""
    assert says in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_push_envelope_behind_a_byte_order_mark_explains_as_its_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An envelope file with a UTF-8 BOM is unwrapped as serve's /events reads that body."""
    rc, plain, _ = _explain(tmp_path, {**EVENT, "event_id": SUB_M1}, capsys, "--json")
    f = tmp_path / "bom.json"
    f.write_bytes(b"\xef\xbb\xbf" + json.dumps(_envelope(EVENT, messageId="m-1")).encode())
    cfg = str(REPO / "routes.yaml")
    rc = main(["explain", str(f), "--config", cfg, "--as-of", "2025-11-19", "--json"])
    out = capsys.readouterr()
    assert (rc, out.err) == (0, "")
    assert json.loads(out.out) == json.loads(plain)
