"""JSON Lines read as values: each non-blank line one JSON value, in file order.

Invariant: a line that is not JSON is a ValueError naming ``where:line:column``; nothing
else is checked here -- each reader (a run-history, JOBS or COLUMNS export) checks its
rows' shape and names ``where:line`` itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any


def json_lines(text: str, where: str) -> Iterator[tuple[int, Any]]:
    """(line number from 1, value) of each non-blank line of ``text``; ValueError at the
    first line that is not JSON."""
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}:{n}:{exc.colno}: invalid JSON: {exc.msg}") from None
        yield n, value
