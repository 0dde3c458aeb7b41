"""What saturation costs per ingest batch: ``bench/daemon.py``'s closed loop at several
producer counts, and the CPU per event split into a part per event and a part per batch.

Invariant: each point is measured exactly as ``bench/daemon.py``'s saturation figure (the
same events, the same ``serve`` defaults, CPU of the server process over the run), only
the number of concurrent producers changes; the mean ingest batch comes from the daemon's
own ``scoperouter_ingest_batch_size`` histogram over the same run. The split is a least
squares fit of ``cpu_per_event = per_event + per_batch / mean_batch`` over the points
(:func:`fit`): more producers, bigger batches, less CPU per event -- and the bare ingest
measured at the same counts shows how much of that its own stack shares.

    python bench/producers.py [--producers 16,64,128] [--seconds 5] [--rounds 2]
        [--who serve,bare] [--json] [--out FILE] [--summary FILE]

``--out``: also save the JSON report; ``--summary FILE``: print the README's sentence for a
saved report (``bench/results/producers.json``; a test keeps the README equal to it).

Prints figures only; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # bench_support, also when loaded by file path
from bench_support import daemon_bench  # noqa: E402


def histogram(text: str, name: str) -> tuple[float, float]:
    """(sum, count) of a Prometheus histogram in an exposition ``text`` ((0, 0): absent)."""
    got = {f"{name}_sum": 0.0, f"{name}_count": 0.0}
    for family in text_string_to_metric_families(text):  # typed or not, by sample name
        for sample in family.samples:
            if sample.name in got and not sample.labels:
                got[sample.name] = sample.value
    return got[f"{name}_sum"], got[f"{name}_count"]


def _span(values: list[float], fmt: str) -> str:
    """``min-max`` of ``values`` formatted (one value when both read the same)."""
    lo, hi = fmt.format(min(values)), fmt.format(max(values))
    return lo if lo == hi else f"{lo}-{hi}"


def summary(report: dict[str, Any]) -> str:
    """The README's sentence for a saved report: per contestant and producer count, the
    range of CPU ms per event (and of the mean batch) over the rounds, then the fit."""
    parts = []
    for who in dict.fromkeys(p["who"] for p in report["points"]):
        counts = []
        for n in dict.fromkeys(p["producers"] for p in report["points"] if p["who"] == who):
            got = [p for p in report["points"] if p["who"] == who and p["producers"] == n]
            text = _span([p["cpu_ms_per_event"] for p in got], "{:.2f}") + f" at {n}"
            batches = [p["mean_batch"] for p in got if p.get("mean_batch")]
            if batches:
                text += " (batches of " + _span(batches, "{:.0f}") + ")"
            counts.append(text)
        parts.append(f"`{who}` " + ", ".join(counts))
    out = "CPU ms per event by producers: " + "; ".join(parts) + "."
    for who, f in report["fit"].items():
        out += (f" Fit for `{who}`: {f['ms_per_event']:.3f} ms per event plus"
                f" {f['ms_per_batch']:.2f} ms per batch.")  # fmt: skip
    return out


def fit(points: list[tuple[float, float]]) -> tuple[float, float] | None:
    """Least squares ``y = a + b * x`` over ``(x, y)`` points: ``(a, b)``, or None when the
    x values do not differ (here x = 1 / mean batch, y = CPU ms per event: ``a`` is the
    CPU per event, ``b`` the CPU per batch)."""
    try:
        b, a = statistics.linear_regression([x for x, _ in points], [y for _, y in points])
    except statistics.StatisticsError:  # fewer than two points, or one x only
        return None
    return a, b


async def point(
    bd: Any, who: str, tmp: Path, cfg: Path, producers: int, secs: float, tag: str
) -> dict[str, Any]:
    """One saturation run of ``who`` with ``producers``: events/s, CPU ms per event and
    (``serve``) the mean ingest batch."""
    p = bd.start(who, tmp, cfg, tag)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as s:
            await p.ready(s)
            url = f"http://127.0.0.1:{p.port}/events"
            metrics = f"http://127.0.0.1:{p.port}/metrics"
            await bd.saturate(s, url, 1.0, f"w{tag}", producers=producers)  # warm-up
            m0 = await (await s.get(metrics)).text() if who != "bare" else ""
            c0 = bd.cpu_s(p.pid)
            n, elapsed = await bd.saturate(s, url, secs, f"s{tag}", producers=producers)
            c1 = bd.cpu_s(p.pid)
            m1 = await (await s.get(metrics)).text() if who != "bare" else ""
    finally:
        p.stop()
    out: dict[str, Any] = {
        "who": who,
        "producers": producers,
        "events_per_s": round(n / elapsed, 1),
        "cpu_ms_per_event": round((c1 - c0) * 1000 / max(1, n), 4),
    }
    if who != "bare":
        (s0, k0), (s1, k1) = (histogram(m, "scoperouter_ingest_batch_size") for m in (m0, m1))
        out["mean_batch"] = round((s1 - s0) / (k1 - k0), 1) if k1 > k0 else None
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    bd = daemon_bench()
    tmp = Path(tempfile.mkdtemp(prefix="scoperouter-producers-"))
    try:
        cfg = bd.write_registry(tmp / "cfg")
        points = []
        for r in range(args.rounds):
            for producers in args.producers:  # interleaved: every contestant each count
                for who in args.who:
                    tag = f"r{r}-{who}-{producers}"
                    points.append(await point(bd, who, tmp, cfg, producers, args.seconds, tag))
                    print(json.dumps(points[-1]), file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "points": points,
        "loadavg_1min": bd.loadavg(),
        "fit": {},
    }
    for who in args.who:
        xy = [(1 / p["mean_batch"], p["cpu_ms_per_event"]) for p in points
              if p["who"] == who and p.get("mean_batch")]  # fmt: skip
        got = fit(xy)
        if got is not None:
            report["fit"][who] = {
                "ms_per_event": round(got[0], 4),
                "ms_per_batch": round(got[1], 4),
            }
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--producers", default="16,64,128")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--who", default="serve,bare")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", type=Path, help="also write the JSON report to this file")
    ap.add_argument("--summary", type=Path, help="print the README sentence of a saved report")
    args = ap.parse_args(argv)
    if args.summary:
        print(summary(json.loads(args.summary.read_text(encoding="utf-8"))))
        return 0
    args.producers = [int(x) for x in args.producers.split(",")]
    args.who = [w for w in args.who.split(",") if w]
    bad = set(args.who) - {"bare", "serve", "serve_no_log"}
    if bad:
        ap.error(f"unknown contestant(s): {sorted(bad)}")
    report = asyncio.run(run(args))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for p in report["points"]:
        batch = f"  mean batch {p['mean_batch']}" if p.get("mean_batch") else ""
        print(f"{p['who']:13s} {p['producers']:4d} producers: {p['events_per_s']:8.0f} events/s "
              f"{p['cpu_ms_per_event']:.4f} ms CPU/event{batch}")  # fmt: skip
    for who, f in report["fit"].items():
        print(f"{who}: {f['ms_per_event']:.4f} ms per event + {f['ms_per_batch']:.4f} ms per batch")
    print(f"load {report['loadavg_1min']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
