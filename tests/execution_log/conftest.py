"""Fixtures of the execution-log tests: the NBA registry, synthetic relations, and logs
recorded from a synthetic game day (with and without processors' completion reports)."""

from __future__ import annotations

from pathlib import Path

import pytest
from logsupport import DAY, completion, game_day_events, relations_for

from scoperouter.execution_log import SqliteExecutionLog
from scoperouter.execution_log.simulate import record_stream
from scoperouter.processor_registry.compiled import CompiledRegistry
from scoperouter.processor_registry.loader import load_config
from scoperouter.processor_registry.relations import InMemoryRelations


@pytest.fixture(scope="session")
def registry(routes_path: Path) -> CompiledRegistry:
    """The repository's NBA registry (relation data comes from logsupport)."""
    return load_config(routes_path, with_relations=False).registry


@pytest.fixture(scope="session")
def relations(registry: CompiledRegistry) -> InMemoryRelations:
    return relations_for(registry)


def _record(
    path: Path, registry: CompiledRegistry, relations: InMemoryRelations, with_completions: bool
) -> Path:
    with SqliteExecutionLog(path) as log:
        record_stream(
            log,
            registry,
            relations,
            game_day_events(),
            as_of=DAY,
            completion=completion if with_completions else None,
        )
    return path


@pytest.fixture(scope="session")
def game_day_log(
    tmp_path_factory: pytest.TempPathFactory,
    registry: CompiledRegistry,
    relations: InMemoryRelations,
) -> Path:
    """A log of the synthetic game day, dispatched, with completion reports."""
    return _record(
        tmp_path_factory.mktemp("log") / "execution_log.sqlite", registry, relations, True
    )


@pytest.fixture(scope="session")
def bare_log(
    tmp_path_factory: pytest.TempPathFactory,
    registry: CompiledRegistry,
    relations: InMemoryRelations,
) -> Path:
    """The same day without completion reports (waste from the decisions alone)."""
    return _record(
        tmp_path_factory.mktemp("log") / "execution_log.sqlite", registry, relations, False
    )


@pytest.fixture(scope="session")
def config_path(tmp_path_factory: pytest.TempPathFactory, routes_path: Path) -> Path:
    """routes.yaml plus the synthetic relation CSVs (for report --config / --what-if)."""
    from logsupport import write_config

    return write_config(routes_path, tmp_path_factory.mktemp("cfg"))
