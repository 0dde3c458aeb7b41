"""Shared fixtures. The Pub/Sub emulator fixture starts the official emulator once per
session on a free loopback port; tests that need it skip with a visible reason when it is
absent, unless SCOPEROUTER_REQUIRE_EMULATOR=1 (CI), where absence fails."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import cast
from urllib.parse import quote

import pytest
from hypothesis import settings

import bytecode_cache  # noqa: F401  (first: the modules imported after it are cached)
import xdist_order
from demo_support import (
    DemoRun,
    RecordedDay,
    run_demo,
    short_demo_day,
    with_registry,
    without_registry,
)
from hypothesis_support import HYPOTHESIS_SCALE, hypothesis_scale, scale_examples, scale_timeouts
from run_once import computed_once

# No wall clock in the default suite: Hypothesis' per-example deadline (200 ms by default)
# is one, so it is off for every property test, whatever the machine's load.
settings.register_profile("scoperouter", deadline=None)
settings.load_profile("scoperouter")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):  # every worker alike: the costliest files first
        items[:] = xdist_order.order(items)
    scale = hypothesis_scale()
    if scale > 1:
        n = scale_examples(items, scale)
        scale_timeouts(items, scale, float(config.getini("timeout") or 0))
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"{HYPOTHESIS_SCALE}={scale}: {n} properties, {scale}x examples and timeouts"
            )


REPO = Path(__file__).resolve().parent.parent
ROUTES = REPO / "routes.yaml"
EMULATOR = Path(
    os.environ.get(
        "SCOPEROUTER_PUBSUB_EMULATOR",
        "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator",
    )
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


@pytest.fixture(autouse=True)
def _logging_left_as_found() -> Iterator[None]:
    """Each test leaves the worker's logging as it found it: ``serve`` run in-process
    (``logs.configure``: a JSON handler, no propagation) would hide every later test's
    records from ``caplog`` on the same xdist worker."""
    from scoperouter.runtime.logs import THIRD_PARTY_LOGGERS

    loggers = [logging.getLogger(n) for n in ("scoperouter", *THIRD_PARTY_LOGGERS)]
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    yield
    for lg, handlers, level, propagate in saved:
        lg.handlers[:] = handlers
        lg.setLevel(level)
        lg.propagate = propagate


@pytest.fixture(scope="session")
def pubsub_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Host:port of a running Pub/Sub emulator; sets PUBSUB_EMULATOR_HOST for the session."""
    required = os.environ.get("SCOPEROUTER_REQUIRE_EMULATOR") == "1"
    if not EMULATOR.exists() or shutil.which("java") is None:
        msg = f"Pub/Sub emulator not found at {EMULATOR} (or no java)"
        if required:
            pytest.fail(msg + " and SCOPEROUTER_REQUIRE_EMULATOR=1")
        pytest.skip(msg)
    port = free_port()
    data_dir = tmp_path_factory.mktemp("pubsub-emulator")
    log = (data_dir / "emulator.log").open("wb")
    proc = subprocess.Popen(
        [str(EMULATOR), "--host=127.0.0.1", f"--port={port}", f"--data-dir={data_dir}"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        if not _wait_port(port, 180):  # java under load
            proc.kill()
            pytest.fail(f"Pub/Sub emulator did not start; see {data_dir / 'emulator.log'}")
        host = f"127.0.0.1:{port}"
        old = os.environ.get("PUBSUB_EMULATOR_HOST")
        os.environ["PUBSUB_EMULATOR_HOST"] = host
        yield host
        if old is None:
            os.environ.pop("PUBSUB_EMULATOR_HOST", None)
        else:
            os.environ["PUBSUB_EMULATOR_HOST"] = old
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
        log.close()


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """One real ``scoperouter demo`` run for the session (tests/demo_support.py)."""
    return run_demo(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="session")
def short_day_2025(tmp_path_factory: pytest.TempPathFactory) -> RecordedDay:
    """The demo's season with a short history, run date level once per run
    (tests/demo_support.py; shared by the xdist workers: tests/run_once.py)."""
    return computed_once(
        tmp_path_factory,
        "short-day-2025",
        lambda: short_demo_day(ROUTES),
        pack=without_registry,
        unpack=lambda packed: with_registry(cast(RecordedDay, packed), ROUTES),
    )


@pytest.fixture(scope="session")
def routes_path() -> Path:
    """The repository's NBA registry."""
    return ROUTES


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """DSN of a throwaway PostgreSQL cluster for the session (superuser, trust auth on
    127.0.0.1); skipped with the reason when PostgreSQL or psycopg is absent, unless
    SCOPEROUTER_REQUIRE_POSTGRES=1 (CI), where absence fails."""
    required = os.environ.get("SCOPEROUTER_REQUIRE_POSTGRES") == "1"
    try:
        import pg_cluster
    except ImportError as exc:  # psycopg missing
        msg = f"psycopg 3 is not installed ({exc}); pip install 'scoperouter[postgres]'"
        if required:
            pytest.fail(msg + " and SCOPEROUTER_REQUIRE_POSTGRES=1")
        pytest.skip(msg)
    bindir = pg_cluster.find_bindir()
    if bindir is None:
        msg = "PostgreSQL binaries (initdb, postgres) not found (apt-get install postgresql)"
        if required:
            pytest.fail(msg + " and SCOPEROUTER_REQUIRE_POSTGRES=1")
        pytest.skip(msg)
    cluster = pg_cluster.PgCluster(bindir)
    try:
        cluster.start()
    except Exception as exc:
        cluster.stop()
        pytest.fail(f"could not start PostgreSQL from {bindir}: {exc}")
    try:
        yield cluster.dsn
    finally:
        cluster.stop()


@pytest.fixture
def pg_schema_dsn(postgres_dsn: str) -> Iterator[str]:
    """A DSN whose search_path is a fresh, empty schema (dropped afterwards)."""
    import psycopg

    schema = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_dsn, autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {schema}")
    yield f"{postgres_dsn}?options={quote(f'-csearch_path={schema}')}"
    with psycopg.connect(postgres_dsn, autocommit=True) as c:
        c.execute(f"DROP SCHEMA {schema} CASCADE")
