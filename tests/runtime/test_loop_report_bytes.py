"""A completion report's bytes are read as every event's are (UTF-8, a leading byte order
mark ignored): a body the router dead-letters as ``not_json`` reports no completion, one it
routes is heard by the closed loop too."""

from __future__ import annotations

import json

import pytest

from scoperouter.runtime.loop_runtime import raw_of
from scoperouter.runtime.outcomes import Inbound

REPORT = {"trigger_id": "t-1", "processor": "p", "status": "success", "game_date": "2025-11-19"}
TEXT = json.dumps(REPORT)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (TEXT.encode("utf-8"), REPORT),
        (b"\xef\xbb\xbf" + TEXT.encode("utf-8"), REPORT),  # a BOM: routed, so heard
        (TEXT.encode("utf-16"), None),  # not_json at ingest: no completion either
        (TEXT.encode("utf-32"), None),
        (b"[1, 2]", None),
        (b"{", None),
    ],
    ids=["utf-8", "bom", "utf-16", "utf-32", "not-an-object", "broken"],
)
def test_report_bytes_read_as_events_are(data: bytes, expected: object) -> None:
    """raw_of agrees with the event decoder on every encoding."""
    assert raw_of(Inbound(origin="pubsub", data=data)) == expected
