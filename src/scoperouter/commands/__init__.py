"""One module per CLI subcommand; each exposes ``register(subparsers)``.

Shared argparse types live here.
"""

from __future__ import annotations

import argparse
from datetime import date


def iso_date(text: str) -> date:
    """argparse type: a YYYY-MM-DD date (usage error, exit 2, otherwise)."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid date {text!r} (expected YYYY-MM-DD)") from None
