"""Example scoped processor service (aiohttp ``POST /process``) built on :mod:`scoperouter.sdk`."""

from examples.processor_service.service import (
    FIELDS,
    PROCESSOR,
    SEED_ROWS,
    SOURCE,
    PlayerGameSummary,
    RunResult,
    connect,
    create_app,
    seed,
)

__all__ = [
    "FIELDS",
    "PROCESSOR",
    "SEED_ROWS",
    "SOURCE",
    "PlayerGameSummary",
    "RunResult",
    "connect",
    "create_app",
    "seed",
]
