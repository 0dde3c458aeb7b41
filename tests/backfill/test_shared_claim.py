"""Backfill claims on one PostgreSQL state store shared by processes with different state
dirs (replicas, the CLI): the second overlapping claim is refused with the first's id, a
non-overlapping one starts, and a claim whose holder died (its lease ran out) or ended
blocks nothing; a holder whose claim is lost stops its backfill."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest
from backfill_support import REPO
from backfill_support import repo_reach as reach
from backfill_support import repo_registry as reg

from scoperouter.backfill.claim import Claimed, ClaimLost, Overlap, claim
from scoperouter.backfill.executor import RunOutcome
from scoperouter.backfill.http_api import BackfillApi
from scoperouter.backfill.overlap import Reach
from scoperouter.backfill.plan import Request
from scoperouter.backfill.service import Prepared, prepare
from scoperouter.backfill.shared_claim import LEASE_LOST, LEASE_UNCONFIRMED, SharedClaims
from scoperouter.backfill.store import AlreadyRunning
from scoperouter.cli import main

AS_OF = date(2025, 11, 22)
PGS = Request(date(2025, 11, 1), date(2025, 11, 2), ("player_game_summary",))
T0 = 1_000_000.0  # the claimers' wall clock (leases are compared with it)
Claimers = Callable[..., SharedClaims]


def prep(state_dir: Path, req: Request) -> Prepared:
    return prepare(reg(), None, req, state_dir=state_dir, as_of=AS_OF)


def take(p: Prepared, shared: SharedClaims) -> Claimed | Overlap:
    return claim(p.store, reach(), p.plan, p.backfill_id, T0, shared=shared)


@pytest.fixture
def claimers(pg_schema_dsn: str) -> Iterator[Claimers]:
    """``claimers(owner, lease_s=30, at=T0)``: a process's claims on the one store, its wall
    clock reading ``at``; closed after the test."""
    made: list[SharedClaims] = []

    def open_(owner: str, lease_s: float = 30.0, at: float = T0) -> SharedClaims:
        c = SharedClaims(pg_schema_dsn, owner, lease_s, clock=lambda: at)
        made.append(c)
        return c

    yield open_
    for c in made:
        c.close()


REQUESTS = [
    # reads player_game_summary on the dates the first rewrites
    (Request(date(2025, 11, 2), date(2025, 11, 3), ("league_rankings",)), True),
    # the same processor on overlapping dates
    (Request(date(2025, 11, 2), date(2025, 11, 2), ("player_game_summary",)), True),
    # unrelated processors, the same dates
    (Request(date(2025, 11, 1), date(2025, 11, 2), ("team_defense_game_summary",)), False),
    # a reader of it, far later dates
    (Request(date(2025, 11, 10), date(2025, 11, 11), ("league_rankings",)), False),
]


@pytest.mark.parametrize(("req", "refused"), REQUESTS)
def test_a_claim_overlapping_another_state_dirs_is_refused(
    tmp_path: Path, claimers: Claimers, req: Request, refused: bool
) -> None:
    """The second process's overlapping claim is refused with the first's id; others start."""
    a, b = prep(tmp_path / "a", PGS), prep(tmp_path / "b", req)
    first = take(a, claimers("a"))
    assert isinstance(first, Claimed)
    second = take(b, claimers("b"))
    if refused:
        assert isinstance(second, Overlap), second
        assert second.backfill_id == a.backfill_id and second.where == "a"
        assert second.processors == ("player_game_summary",)
        assert (second.start, second.last) == ("2025-11-01", "2025-11-02")
        assert "replica a" in second.detail("retry")
        assert b.store.status(b.backfill_id) == "planned"  # nothing of it started
    else:
        assert isinstance(second, Claimed), second
        second.release()
    first.release()
    a.store.close()
    b.store.close()


@pytest.mark.parametrize(
    ("elapsed", "refused"),
    [(29.0, True), (31.0, False)],  # lease_s 30: blocking while its lease lasts, then nothing
)
def test_a_claim_whose_holder_died_blocks_nothing_once_its_lease_ran_out(
    tmp_path: Path, claimers: Claimers, elapsed: float, refused: bool
) -> None:
    """A holder that died (no renewal, no release, session gone) blocks until its lease ends."""
    a, b = prep(tmp_path / "a", PGS), prep(tmp_path / "b", REQUESTS[0][0])
    dead = claimers("a")
    assert isinstance(take(a, dead), Claimed)
    dead.close()  # its process died: the session is gone, the claim was never released
    got = claim(b.store, reach(), b.plan, b.backfill_id, T0, shared=claimers("b", at=T0 + elapsed))
    assert isinstance(got, Overlap) is refused, got
    if isinstance(got, Claimed):
        got.release()
    a.store.close()
    b.store.close()


def test_an_ended_backfill_blocks_nothing(tmp_path: Path, claimers: Claimers) -> None:
    """A released claim (its backfill ended) no longer blocks an overlapping one."""
    a, b = prep(tmp_path / "a", PGS), prep(tmp_path / "b", REQUESTS[0][0])
    first = take(a, claimers("a"))
    assert isinstance(first, Claimed)
    first.release()
    second = take(b, claimers("b"))
    assert isinstance(second, Claimed), second
    second.release()
    a.store.close()
    b.store.close()


def test_the_same_backfill_claimed_live_elsewhere_is_already_running(
    tmp_path: Path, claimers: Claimers
) -> None:
    """A live claim of the same backfill id by another process: AlreadyRunning, not a second run."""
    a = prep(tmp_path / "a", PGS)
    held = claimers("a").claim(reach(), a.plan, a.backfill_id)
    assert not isinstance(held, Overlap)
    with pytest.raises(AlreadyRunning, match="replica a"):
        claimers("b").claim(reach(), a.plan, a.backfill_id)
    held.release()
    a.store.close()


def test_a_renewed_claim_outlives_its_first_lease(
    tmp_path: Path, pg_schema_dsn: str, claimers: Claimers
) -> None:
    """Renewed at T0 + 20 (lease 30), the claim still blocks at T0 + 45; released, it blocks nothing."""
    a, b = prep(tmp_path / "a", PGS), prep(tmp_path / "b", REQUESTS[0][0])
    now = [T0]
    holder = SharedClaims(pg_schema_dsn, "a", 30.0, clock=lambda: now[0])
    try:
        lease = holder.claim(reach(), a.plan, a.backfill_id)
        assert not isinstance(lease, Overlap)
        now[0] = T0 + 20
        assert lease.renew()
        later = claimers("b", at=T0 + 45)
        assert isinstance(later.claim(reach(), b.plan, b.backfill_id), Overlap)
        lease.release()
        got = later.claim(reach(), b.plan, b.backfill_id)
        assert not isinstance(got, Overlap)
        got.release()
    finally:
        holder.close()
    a.store.close()
    b.store.close()


def _end_claim_sessions(dsn: str) -> int:
    """End every backfill-claims session on the server (a failover, a restart)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as c:
        return len(
            c.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'scoperouter-backfill'"
            ).fetchall()
        )


def test_a_failover_while_idle_fails_no_claim_call(
    tmp_path: Path, pg_schema_dsn: str, claimers: Claimers, caplog: pytest.LogCaptureFixture
) -> None:
    """The claims' connection ended while idle before each call: a renewal, a read of the
    running backfills, a new claim and a release each run on a new connection -- none
    fails, each logged once."""
    a, b = prep(tmp_path / "a", PGS), prep(tmp_path / "b", REQUESTS[2][0])
    holder = claimers("a")
    lease = holder.claim(reach(), a.plan, a.backfill_id)
    assert not isinstance(lease, Overlap)
    caplog.set_level(logging.WARNING, logger="scoperouter")
    assert _end_claim_sessions(pg_schema_dsn) == 1
    assert lease.renew()
    assert _end_claim_sessions(pg_schema_dsn) == 1
    running = holder.running(a.backfill_id)
    assert running is not None and running.owner == "a"
    assert _end_claim_sessions(pg_schema_dsn) == 1
    other = holder.claim(reach(), b.plan, b.backfill_id)  # unrelated: not refused
    assert not isinstance(other, Overlap)
    assert _end_claim_sessions(pg_schema_dsn) == 1
    lease.release()
    other.release()
    assert claimers("c").running(a.backfill_id) is None  # released: nothing left
    lost = [r for r in caplog.records if "new connection" in r.getMessage()]
    assert len(lost) == 4, [r.getMessage() for r in caplog.records]
    assert not [r for r in caplog.records if "could not release" in r.getMessage()]
    a.store.close()
    b.store.close()


class Gated:
    """Runs wait for ``release`` (cancelled when the backfill is stopped)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = asyncio.Event()

    async def execute(
        self, processor: str, day: date, *, backfill_id: str, attempt: int
    ) -> RunOutcome:
        self.started.set()
        await self.release.wait()
        return RunOutcome(True, rows=1)


def _api(
    state_dir: Path, ex: Gated, shared: SharedClaims, lost: list[str] | None = None
) -> BackfillApi:
    return BackfillApi(
        reg(),
        lambda: None,
        state_dir,
        lambda _b: ex,
        as_of=lambda: AS_OF,
        shared=shared,
        on_claim_lost=None if lost is None else lost.append,
    )


BODY = {"start": "2025-11-01", "end": "2025-11-02", "processors": ["player_game_summary"]}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"start": "2025-11-02", "end": "2025-11-03", "processors": ["league_rankings"]}, 409),
        ({"start": "2025-11-10", "end": "2025-11-11", "processors": ["league_rankings"]}, 202),
    ],
)
async def test_post_to_another_replica_overlapping_a_running_backfill(
    tmp_path: Path, claimers: Claimers, body: dict[str, object], code: int
) -> None:
    """POST /backfills to replica b: 409 overlapping_backfill with replica a's id, or 202."""
    gate = Gated()
    a = _api(tmp_path / "a", gate, claimers("a"))
    b = _api(tmp_path / "b", gate, claimers("b"))
    got_code, first = await a.start(BODY)
    assert got_code == 202, first
    got_code, got = await b.start(body)
    assert got_code == code, got
    if code == 409:
        assert got["error"] == "overlapping_backfill"
        assert got["backfill_id"] == first["backfill_id"]
        assert "replica a" in got["detail"]
    gate.release.set()
    for api in (a, b):
        await asyncio.gather(*api.tasks.values())
        await api.close()
    assert a.get(first["backfill_id"])[1]["status"] == "done"


def _lose(dsn: str, bid: str, why: str) -> None:
    """Make ``bid``'s claim lost: gone from the store (ran out, and another process's claim
    deleted it), or unrenewable (every renewal fails: the table is not where it was)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as c:
        if why == LEASE_LOST:
            c.execute("DELETE FROM sr_backfill_claims WHERE backfill_id = %s", (bid,))
        else:
            c.execute("ALTER TABLE sr_backfill_claims RENAME TO sr_backfill_claims_away")


@pytest.mark.parametrize("why", [LEASE_LOST, LEASE_UNCONFIRMED])
async def test_a_backfill_whose_claim_is_lost_is_stopped(
    tmp_path: Path, pg_schema_dsn: str, caplog: pytest.LogCaptureFixture, why: str
) -> None:
    """Its claim gone from the store, or not renewed within its lease: the backfill is stopped,
    and counted (on_claim_lost, the daemon's metrics) by why."""
    gate = Gated()
    holder = SharedClaims(pg_schema_dsn, "a", 0.3)  # renewed every 0.1 s
    lost: list[str] = []
    api = _api(tmp_path / "a", gate, holder, lost)
    code, got = await api.start(BODY)
    assert code == 202, got
    bid = got["backfill_id"]
    await gate.started.wait()
    _lose(pg_schema_dsn, bid, why)
    with caplog.at_level(logging.WARNING, "scoperouter.backfill"):
        await asyncio.gather(*api.tasks.values())
    assert api.get(bid)[1]["status"] == "stopped"
    assert any(bid in r.getMessage() and why in r.getMessage() for r in caplog.records)
    assert lost == [why]
    await api.close()


@pytest.mark.parametrize("why", [LEASE_LOST, LEASE_UNCONFIRMED])
async def test_claimed_run_raises_claim_lost(
    tmp_path: Path, pg_schema_dsn: str, claimers: Claimers, why: str
) -> None:
    """Claimed.run cancels the work and raises ClaimLost naming why when its claim is lost."""
    a = prep(tmp_path / "a", PGS)
    got = claim(a.store, reach(), a.plan, a.backfill_id, T0, shared=claimers("a", lease_s=0.3))
    assert isinstance(got, Claimed)
    cancelled = asyncio.Event()
    started = asyncio.Event()

    async def work() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    run = asyncio.ensure_future(got.run(work()))
    await started.wait()
    _lose(pg_schema_dsn, a.backfill_id, why)
    with pytest.raises(ClaimLost, match=why):
        await run
    assert cancelled.is_set()
    got.release()
    a.store.close()


def test_cli_with_state_is_refused_a_backfill_overlapping_a_replicas(
    tmp_path: Path, claimers: Claimers, pg_schema_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``scoperouter backfill --state postgresql://...`` exits 1 naming the replica's backfill."""
    a = prep(tmp_path / "a", PGS)
    held = take(a, claimers("a", at=time.time()))
    assert isinstance(held, Claimed)
    argv = ["backfill", "--config", str(REPO / "routes.yaml"), "--as-of", AS_OF.isoformat(),
            "--state-dir", str(tmp_path / "cli"), "--state", pg_schema_dsn,
            "--start", "2025-11-02", "--end", "2025-11-03", "--processors", "league_rankings",
            "--json"]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"backfill {a.backfill_id} is running on replica a" in err
    held.release()
    a.store.close()


UNREACHABLE = "postgresql://u:s3cretpw@127.0.0.1:1/db"  # nothing listens on port 1


def test_cli_refuses_to_run_unchecked_when_the_shared_store_is_unreachable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A shared store the CLI cannot ask: exit 1, one line without the password, nothing run."""
    argv = ["backfill", "--config", str(REPO / "routes.yaml"), "--as-of", AS_OF.isoformat(),
            "--state-dir", str(tmp_path), "--state", UNREACHABLE,
            "--start", "2025-11-02", "--end", "2025-11-03", "--processors", "league_rankings",
            "--json"]  # fmt: skip
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "is not usable" in captured.err and "s3cretpw" not in captured.err
    assert '"event": "run"' not in captured.out


async def test_post_answers_503_when_the_shared_store_is_unreachable(tmp_path: Path) -> None:
    """POST /backfills on a replica that cannot ask the shared store: 503, nothing started."""
    api = _api(tmp_path, Gated(), SharedClaims(UNREACHABLE, "a"))
    code, got = await api.start(BODY)
    assert code == 503 and got["error"] == "state_store_unavailable", got
    assert "s3cretpw" not in got["detail"] and api.tasks == {}
    await api.close()


class SlowClaims:
    """Shared claims whose claim waits for ``go`` (a slow database round trip); records
    whether the lease it gave was released."""

    def __init__(self) -> None:
        self.entered, self.go, self.released = (
            threading.Event(),
            threading.Event(),
            threading.Event(),
        )

    def claim(self, reach: Reach, plan: object, bid: str) -> SlowLease:
        self.entered.set()
        self.go.wait(30)
        return SlowLease(self, bid)

    def close(self) -> None:
        pass


class SlowLease:
    def __init__(self, claims: SlowClaims, bid: str) -> None:
        self.claims, self.backfill_id = claims, bid

    def release(self) -> None:
        self.claims.released.set()

    async def keep(self) -> str:
        await asyncio.Event().wait()
        return LEASE_LOST


async def test_a_post_cancelled_while_claiming_gives_the_claim_back(tmp_path: Path) -> None:
    """A POST cancelled while its shared claim is in flight: the claim, once made, is released
    (shared and state-dir lock), so the same POST starts the backfill afterwards."""
    slow = SlowClaims()
    api = _api(tmp_path, Gated(), slow)  # type: ignore[arg-type]
    post = asyncio.ensure_future(api.start(BODY))
    assert await asyncio.to_thread(slow.entered.wait, 30)
    post.cancel()
    slow.go.set()
    with pytest.raises(asyncio.CancelledError):
        await post
    assert await asyncio.to_thread(slow.released.wait, 30)
    again = SlowClaims()
    again.go.set()
    api.shared = again  # type: ignore[assignment]
    code, got = await api.start(BODY)
    assert code == 202, got
    await api.close()
