"""Shared helpers of the daemon tests: a test copy of the NBA registry (windows and targets
overridden, generated relation data), a seeded game-day event stream in every accepted
shape, the reference result computed by the replay code path, and an in-memory sink."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import json
import random
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

from scoperouter.commands.replay import replay_events
from scoperouter.errors import DispatchError
from scoperouter.messages.models import Trigger
from scoperouter.processor_registry.loader import LoadedConfig, load_config
from scoperouter.runtime.bounded_clock import BoundedClock

RouterFactory = Callable[..., Any]  # the make_router fixture (conftest.py)

REPO = Path(__file__).resolve().parents[2]
GAME_DAY = date(2025, 11, 19)
# How long a `scoperouter serve` subprocess may take to listen: seconds idle, but a loaded
# 2-core machine (stress-ng and other jobs) was seen at 25 s; the waits return as soon as
# it is up, so a generous budget costs nothing.
STARTUP_BUDGET_S = 120
TEAMS = [
    "ATL",
    "BOS",
    "BKN",
    "CHA",
    "CHI",
    "CLE",
    "DAL",
    "DEN",
    "DET",
    "GSW",
    "HOU",
    "IND",
    "LAC",
    "LAL",
    "MEM",
    "MIA",
    "MIL",
    "MIN",
    "NOP",
    "NYK",
    "OKC",
    "ORL",
    "PHI",
    "PHX",
    "POR",
    "SAC",
    "SAS",
    "TOR",
    "UTA",
    "WAS",
]
PLAYERS_PER_TEAM = 15


async def wait_ready(
    s: aiohttp.ClientSession, port: int, proc: subprocess.Popen[bytes], log: Path
) -> None:
    """Until ``serve`` on ``port`` answers ``/readyz`` 200 (within
    :data:`STARTUP_BUDGET_S`); AssertionError with its log's tail if it exits or never does."""
    deadline = time.monotonic() + STARTUP_BUDGET_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-2000:]
        try:
            async with s.get(f"http://127.0.0.1:{port}/readyz") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("daemon not ready:\n" + log.read_text()[-2000:])


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def players_of(team: str) -> list[str]:
    return [f"{team.lower()}player{i:02d}" for i in range(PLAYERS_PER_TEAM)]


def games_on(day: date) -> list[tuple[str, str, str]]:
    """(game id, home, away): 15 games a day, pairings rotate with the date."""
    shift = day.toordinal() % 29 + 1
    order = TEAMS[shift:] + TEAMS[:shift]
    return [
        (f"00225{day.strftime('%m%d')}{i:02d}", order[2 * i], order[2 * i + 1])
        for i in range(len(TEAMS) // 2)
    ]


def write_relations(d: Path, days: Iterable[date]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    tp = ["date,from,to"] + [f",{t},{p}" for t in TEAMS for p in players_of(t)]
    gt, opp, pg = ["date,from,to"], ["date,from,to"], ["date,from,to"]
    for day in days:
        for gid, home, away in games_on(day):
            gt += [f"{day},{gid},{home}", f"{day},{gid},{away}"]
            opp += [f"{day},{home},{away}", f"{day},{away},{home}"]
            pg += [f"{day},{p},{gid}" for t in (home, away) for p in players_of(t)]
    league = ["date,from,to"] + [f",{a},{b}" for a in TEAMS for b in TEAMS]
    for name, rows in (
        ("team_players", tp),
        ("game_teams", gt),
        ("team_opponent", opp),
        ("player_games", pg),
        ("league_teams", league),
    ):
        (d / f"{name}.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")


def write_registry(
    tmp: Path,
    *,
    quiet: str = "0s",
    max_wait: str = "0s",
    targets: Mapping[str, Mapping[str, Any]] | None = None,
    default_target: Mapping[str, Any] | None = None,
    server: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Path:
    """A copy of the repository's routes.yaml with every window set to (quiet, max_wait),
    targets replaced, ``defaults`` merged into its defaults (e.g. ``{"run_retries": 1}``:
    the closed loop), and relation data generated under ``tmp/relations``."""
    spec = copy.deepcopy(_repo_spec())
    spec["defaults"]["window"] = {"quiet": quiet, "max_wait": max_wait}
    spec["defaults"]["target"] = dict(default_target or {"outbox": {}})
    for name, p in spec["processors"].items():
        p.pop("window", None)
        p.pop("target", None)
        if targets and name in targets:
            p["target"] = dict(targets[name])
    if server is not None:
        spec["server"] = dict(server)
    spec["defaults"].update(defaults or {})
    spec["relation_data"] = {"csv": {"dir": "relations"}}
    write_relations(tmp / "relations", [GAME_DAY - timedelta(days=k) for k in range(4)])
    path = tmp / "routes.yaml"
    path.write_text(yaml.dump(spec, Dumper=_Dumper, sort_keys=False), encoding="utf-8")
    return path


# libyaml's dumper where PyYAML has it (the pure-Python one took most of a registry copy's time)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@functools.cache
def _repo_spec() -> dict[str, Any]:
    """The repository's routes.yaml as plain data, read once (copied before each change)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec: dict[str, Any] = yaml.load(
        (REPO / "routes.yaml").read_text(encoding="utf-8"), Loader=loader
    )
    return spec


def load(path: Path) -> LoadedConfig:
    return load_config(path)


# one injury update of one player on GAME_DAY, as the HTTP tests post it
INJURY_EVENT: dict[str, Any] = {
    "event_id": "e-1",
    "source": "nba_raw.nbac_injury_report",
    "game_date": "2025-11-19",
    "affected_entities": {"players": ["lalplayer01"]},
    "changed_fields": ["injury_status"],
}


RAW_SOURCES = {
    "nba_raw.nbac_gamebook_player_stats": ("players", ["points", "minutes", "rebounds"]),
    "nba_raw.bdl_player_boxscores": ("players", ["points", "assists", "fg_made"]),
    "nba_raw.nbac_injury_report": ("players", ["injury_status"]),
    "nba_raw.odds_api_player_points_props": ("players", ["points_line", "over_price"]),
    "nba_raw.nbac_team_boxscore": ("teams", []),
    "nba_raw.nbac_scoreboard_v2": ("games", ["score", "broadcast"]),
    "nba_raw.odds_api_game_lines": ("games", ["spread", "moneyline"]),
    "nba_raw.nbac_play_by_play": ("games", []),
    "nba_raw.bdl_standings": ("teams", []),
}
ANALYTICS = (
    "player_game_summary",
    "team_defense_game_summary",
    "team_offense_game_summary",
    "upcoming_player_game_context",
)


def game_day_stream(n: int = 500, seed: int = 7) -> list[dict[str, Any]]:
    """``n`` completion events of one game day (plus a few for the previous days), in the
    canonical, raw_data_loaded, analytics_complete and unified shapes; unique ids and
    strictly increasing ``produced_at``/``timestamp`` (1 s apart)."""
    rng = random.Random(seed)
    t0 = datetime(2025, 11, 19, 16, 0, tzinfo=UTC)
    out: list[dict[str, Any]] = []
    for i in range(n):
        when = (t0 + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        day = GAME_DAY if rng.random() < 0.85 else GAME_DAY - timedelta(days=rng.randint(1, 2))
        games = games_on(day)
        kind = rng.random()
        if kind < 0.45:  # canonical raw event with entities
            source = rng.choice(sorted(RAW_SOURCES))
            key, fields = RAW_SOURCES[source]
            if key == "players":
                team = rng.choice([t for _g, h, a in games for t in (h, a)])
                ids = rng.sample(players_of(team), rng.randint(1, 4))
            elif key == "teams":
                ids = rng.sample(TEAMS, rng.randint(1, 3))
            else:
                ids = [g[0] for g in rng.sample(games, rng.randint(1, 2))]
            ev: dict[str, Any] = {
                "event_id": f"e-{i:05d}",
                "source": source,
                "game_date": day.isoformat(),
                "affected_entities": {key: ids},
                "changed_fields": rng.sample(fields, rng.randint(1, len(fields))) if fields else [],
                "correlation_id": f"c-{i // 10}",
                "produced_at": when,
            }
            if rng.random() < 0.05:
                ev["priority"] = "critical"
            if rng.random() < 0.03:
                ev["status"] = rng.choice(["failed", "no_data", "partial"])
        elif kind < 0.65:  # Phase 2->3 legacy: no entities, full date
            source = rng.choice(sorted(RAW_SOURCES))
            ev = {
                "event_type": "raw_data_loaded",
                "source_table": source.split(".", 1)[1],
                "game_date": day.isoformat(),
                "record_count": rng.randint(0, 500),
                "execution_id": f"x-{i:05d}",
                "correlation_id": f"c-{i // 10}",
                "timestamp": when,
                "phase": 2,
                "success": True,
                "error_message": None,
            }
        elif kind < 0.8:  # Phase 3->4 legacy
            ev = {
                "event_type": "analytics_complete",
                "analytics_table": rng.choice(ANALYTICS),
                "game_date": day.isoformat(),
                "record_count": rng.randint(1, 450),
                "execution_id": f"x-{i:05d}",
                "correlation_id": f"c-{i // 10}",
                "timestamp": when,
                "phase": 3,
                "success": True,
                "error_message": None,
            }
        else:  # unified envelope with entities_changed
            table = rng.choice(ANALYTICS)
            team = rng.choice([t for _g, h, a in games for t in (h, a)])
            ents = (
                {"players": rng.sample(players_of(team), rng.randint(1, 3))}
                if table.startswith(("player", "upcoming_player"))
                else {"teams": [team]}
            )
            ev = {
                "processor_name": table,
                "phase": 3,
                "execution_id": f"x-{i:05d}",
                "correlation_id": f"c-{i // 10}",
                "game_date": day.isoformat(),
                "output_table": table,
                "output_dataset": "nba_analytics",
                "status": "success",
                "record_count": 12,
                "timestamp": when,
                "entities_changed": ents,
                "metadata": {"changed_fields": []},
            }
        out.append(ev)
    return out


def as_lines(events: Iterable[Mapping[str, Any]]) -> list[bytes]:
    return [json.dumps(e).encode() for e in events]


TriggerKey = tuple[str, str, str, tuple[str, ...] | None, tuple[str, ...]]


def key_of(t: Trigger | Mapping[str, Any]) -> TriggerKey:
    """(processor, game_date, scope, ids, caused_by) of a trigger or its JSON form."""
    d = t.model_dump(mode="json") if isinstance(t, Trigger) else dict(t)
    ids = d.get("entity_ids")
    return (
        d["processor"],
        d["game_date"],
        d["scope"],
        tuple(ids) if ids is not None else None,
        tuple(d.get("caused_by") or ()),
    )


def dry_run_keys(
    cfg: LoadedConfig, events: list[dict[str, Any]], as_of: date = GAME_DAY
) -> list[TriggerKey]:
    """What ``scoperouter replay --dry-run`` fires for the stream (same code path)."""
    res = replay_events(cfg.registry, cfg.relations, as_lines(events), as_of)
    assert res.rejected == 0
    return sorted(key_of(t) for t in res.triggers)


def coverage(keys: Iterable[TriggerKey]) -> dict[tuple[str, str], set[str] | None]:
    """What gets recomputed per (processor, date): ids, or None for the full date."""
    cov: dict[tuple[str, str], set[str] | None] = {}
    for proc, day, scope, ids, _caused in keys:
        k = (proc, day)
        if scope == "date" or ids is None:
            cov[k] = None
        elif k not in cov:
            cov[k] = set(ids)
        elif cov[k] is not None:
            cov[k] |= set(ids)  # type: ignore[operator]
    return cov


def covers(got: Iterable[TriggerKey], want: Iterable[TriggerKey]) -> list[str]:
    """Missing work: (processor, date) pairs/ids that ``want`` recomputes and ``got`` not."""
    g, w = coverage(got), coverage(want)
    missing: list[str] = []
    for k, ids in w.items():
        if k not in g:
            missing.append(f"{k}: nothing dispatched")
        elif g[k] is None:
            continue
        elif ids is None:
            missing.append(f"{k}: full date wanted, got ids only")
        else:
            lost = ids - g[k]  # type: ignore[operator]
            if lost:
                missing.append(f"{k}: missing ids {sorted(lost)[:5]}")
    return missing


class MemorySink:
    """A sink that records what it receives; can fail, hang, or be slow on demand."""

    def __init__(self, name: str = "memory", *, delay: float = 0.0) -> None:
        self.name = name
        self.delay = delay
        self.received: list[Trigger] = []
        self.times: list[float] = []
        self.calls = 0
        self.fail_first = 0  # number of calls that raise a retryable DispatchError
        self.hang = False

    async def send(self, trigger: Trigger, *, message_id: str, body: bytes | None = None) -> None:
        self.calls += 1
        if self.hang:
            await asyncio.sleep(3600)
        if self.calls <= self.fail_first:
            raise DispatchError(trigger.processor, self.name, "injected failure")
        if self.delay:
            await asyncio.sleep(self.delay)
        self.received.append(trigger)
        self.times.append(asyncio.get_running_loop().time())

    async def close(self) -> None:
        return None


def date_trigger(
    n: int, processor: str = "p", *, fired_at: datetime | None = None, width: int = 5
) -> Trigger:
    """Trigger number ``n``: date scope on GAME_DAY, caused by event ``e-n``; its id has a
    fixed ``width`` (every body of one processor has one size below 10**width)."""
    return Trigger(
        trigger_id=f"t-{n:0{width}d}",
        processor=processor,
        game_date=GAME_DAY,
        start_date=GAME_DAY,
        end_date=GAME_DAY,
        scope="date",
        reason="date_scope",
        caused_by=(f"e-{n}",),
        fired_at=fired_at,
    )


async def daemon_on_clock(
    make_router: RouterFactory, cfg: LoadedConfig, stream: Iterable[tuple[Mapping[str, Any], float]]
) -> list[Trigger]:
    """``stream``'s events (each with its time) through a daemon on a virtual clock: due
    windows fired before each event at their deadlines, the rest drained at the end. The
    triggers the daemon committed, in outbox order (``fired_at`` from the virtual clock)."""
    from scoperouter.runtime.outcomes import Inbound

    items = list(stream)
    now = [items[0][1]]
    r = make_router(cfg, MemorySink(), clock=lambda: now[0])
    await r.start()
    for raw, at in items:
        while (dl := r.windows.next_deadline) is not None and dl <= at:
            now[0] = dl
            await r.fire_due()
        now[0] = at
        assert (await r.submit(Inbound("test", obj=raw))).ack
    while (dl := r.windows.next_deadline) is not None:
        now[0] = dl
        await r.fire_due()
    assert await r.idle()
    rows = r.store._db.execute("SELECT body FROM triggers ORDER BY id").fetchall()
    return [Trigger.model_validate_json(b) for (b,) in rows]


async def stop_routers(made: Iterable[Any]) -> None:
    """Stop every router a test did not stop itself, then close its store: a
    ``close_intake`` alone is not a stop (its dispatcher pump still runs state-thread jobs),
    and no state-thread job may run on a closed connection (SQLite segfaults), so each
    router's state thread finishes its last job first."""
    for r in made:
        if r._started and not r._stopping:
            await r.stop(timeout=1.0)
        r._state.shutdown(wait=True)
        with contextlib.suppress(Exception):
            state = getattr(r, "state", None)
            if state is not None:  # a SharedRouter's state store
                state.close()
            else:
                r.store._db.close()


class LocalTarget:
    """An HTTP target on a free loopback port that answers ``POST /<name>`` with
    :meth:`handle` (a subclass's); :meth:`start`, then :meth:`stop`."""

    def __init__(self) -> None:
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        raise NotImplementedError

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{name}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


def seeded_clock(name: str, seed: float) -> tuple[BoundedClock, list[float]]:
    """A BoundedClock seeded at ``seed`` whose monotonic time is the returned list's one
    item (a test sets ``mono[0]``), for the clock-step tables."""
    mono = [0.0]
    clock = BoundedClock(name, monotonic=lambda: mono[0])
    clock.seed(seed)
    return clock, mono
