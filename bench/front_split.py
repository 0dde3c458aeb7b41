"""An experiment, not a feature: would ``serve`` split over two processes -- an HTTP front
and the router behind it -- reach issue 16's saturation throughput (0.5x the bare server)?

Invariant: the router process is ``scoperouter serve`` itself, unchanged, plus one unix-socket
intake that hands each forwarded body to ``Router.enqueue`` exactly as the HTTP ingress does
(``fast_event`` then ``fast_inbound``) and writes back one answer line per event after its
commit; the front is the bare server's lean ``POST /events`` handler
(``bench/baseline_ingest.py``) that forwards the bodies of one event-loop pass as one frame
and answers with ``serve``'s ready bytes. Saturated as ``bench/daemon.py`` saturates (the
same 64 raw producers, the same events), interleaved with ``bare`` and ``serve`` in each
round; the split's CPU is the sum of both processes'. Prints figures only; nothing here
asserts on time, and nothing of it is in ``src/`` (the front has no auth, limits, metrics or
stop semantics of ``serve``'s).

    python bench/front_split.py [--rounds 2] [--seconds 5] [--warm 1] [--who bare,serve,split]

Measured 2026-12-05 (``--rounds 3``, load 1.1-2.0): bare 23,200-25,800 events/s at
0.042-0.045 ms per event; ``serve`` 0.33x its throughput at 2.63x its CPU; the split 0.41x
at 2.53x (medians). The router process alone cost 0.081-0.088 ms per event (state
0.036-0.039, execution log 0.022-0.024, its own event loop 0.017-0.019, outbox 0.004), the
front 0.024-0.027: bound to one CPU, the router allows at most 0.45-0.49x. The split moves
the HTTP work off the router's CPU but adds nothing to lower the CPU per event.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import struct
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # bench_support, baseline_ingest, pull_threads
FRAME = struct.Struct("<I")  # a frame's length, then its bytes
HEAD = struct.Struct("<II")  # a batch: its sequence number and count of bodies


# ------------------------------------------------------------------ the router process
def router_main(argv: list[str]) -> int:
    """``scoperouter serve`` (``argv``: its arguments) with the intake on ``$SPLIT_SOCK``."""
    from scoperouter.cli import main
    from scoperouter.messages.fast_event import fast_event
    from scoperouter.runtime import daemon as dm
    from scoperouter.runtime.http import _HTTP_INBOUND
    from scoperouter.runtime.http_ready import ok_text
    from scoperouter.runtime.outcomes import Outcome, fast_inbound

    sock = os.environ["SPLIT_SOCK"]
    run_forever = dm.Daemon.run_forever

    class Batch:
        def __init__(self, seq: int, n: int, writer: asyncio.StreamWriter) -> None:
            self.seq, self.left, self.lines, self.writer = seq, n, [b""] * n, writer

    class Answer:  # a Settle (runtime/intake.py)
        __slots__ = ("b", "d", "i")

        def __init__(self, b: Batch, i: int) -> None:
            self.b, self.i, self.d = b, i, False

        def done(self) -> bool:
            return self.d

        def set_result(self, o: Outcome, /) -> None:
            self.d, b = True, self.b
            if o.status in ("accepted", "duplicate") and isinstance(o.event_id, str):
                text = ok_text(o.status, o.event_id, int(o.triggers or 0))
                b.lines[self.i] = b"200 " + text.encode()
            else:
                b.lines[self.i] = b"503 {}"
            b.left -= 1
            if not b.left:
                data = FRAME.pack(b.seq) + b"\n".join(b.lines)
                b.writer.write(FRAME.pack(len(data)) + data)

    async def with_intake(self: Any) -> None:
        router = self.router

        async def serve_front(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                try:
                    (n,) = FRAME.unpack(await reader.readexactly(4))
                    buf = await reader.readexactly(n)
                except asyncio.IncompleteReadError:
                    return
                seq, count = HEAD.unpack_from(buf)
                off, b = HEAD.size, Batch(seq, count, writer)
                for i in range(count):
                    (ln,) = FRAME.unpack_from(buf, off)
                    body = buf[off + 4 : off + 4 + ln]
                    off += 4 + ln
                    answer = Answer(b, i)
                    ev = fast_event(body, router.registry)
                    if ev is None:  # the experiment posts canonical events only
                        answer.set_result(Outcome("rejected", None, "not_canonical", ""))
                        continue
                    refused = router.enqueue(
                        fast_inbound(_HTTP_INBOUND, data=body, event=ev), answer
                    )
                    if refused is not None:
                        answer.set_result(refused)

        self._split_intake = await asyncio.start_unix_server(serve_front, sock)  # kept alive
        await run_forever(self)

    dm.Daemon.run_forever = with_intake  # type: ignore[method-assign]
    return main(argv)


# ------------------------------------------------------------------ the front process
async def front_main(port: int, sock: str) -> None:
    """The bare server's lean ``POST /events``, forwarding to the router at ``sock``."""
    import signal

    from aiohttp import web
    from baseline_ingest import daemon_module

    ready_bytes = daemon_module("runtime/http_ready.py").Ready
    loop = asyncio.get_running_loop()
    for _ in range(1200):  # the router starts meanwhile
        try:
            reader, writer = await asyncio.open_unix_connection(sock)
            break
        except OSError:
            await asyncio.sleep(0.05)
    else:
        raise SystemExit(f"no router at {sock}")
    pending: list[tuple[bytes, asyncio.Future[Any]]] = []
    inflight: dict[int, list[asyncio.Future[Any]]] = {}
    seq = [0]

    def flush() -> None:  # the bodies of one event-loop pass, as one frame
        batch = pending[:]
        pending.clear()
        seq[0] += 1
        inflight[seq[0]] = [f for _b, f in batch]
        parts = [HEAD.pack(seq[0], len(batch))]
        for body, _f in batch:
            parts += (FRAME.pack(len(body)), body)
        data = b"".join(parts)
        writer.write(FRAME.pack(len(data)) + data)

    async def answers() -> None:
        while True:
            (n,) = FRAME.unpack(await reader.readexactly(4))
            buf = await reader.readexactly(n)
            futs = inflight.pop(FRAME.unpack_from(buf)[0])
            for f, line in zip(futs, buf[4:].split(b"\n"), strict=True):
                if line[:3] == b"200":
                    f.set_result(ready_bytes(line[4:].decode()))
                else:
                    f.set_result(web.Response(status=int(line[:3]), body=line[4:]))

    reading = loop.create_task(answers())

    async def ready(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/readyz", ready)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    assert runner.server is not None
    through = runner.server.request_handler

    def handle(request: Any) -> Any:
        if request.raw_path != "/events" or request.method != "POST":
            return through(request)
        fut = loop.create_future()
        if not pending:
            loop.call_soon(flush)
        pending.append((request.content.read_nowait(), fut))  # small bodies: all buffered
        return fut

    runner.server.request_handler = handle  # type: ignore[assignment]
    await web.TCPSite(runner, "127.0.0.1", port, backlog=2048).start()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    reading.cancel()
    await runner.cleanup()


# ------------------------------------------------------------------ the driver
async def one_round(bd: Any, who: str, tmp: Path, run: str, args: argparse.Namespace) -> str:
    """One contestant saturated: its events/s and CPU per event (and, split, per process)."""
    from bench_support import serve_cmd
    from pull_threads import python_names, split, thread_cpu

    cfg = bd.write_registry(tmp / "cfg")
    d = tmp / run
    d.mkdir(parents=True, exist_ok=True)
    if who == "split":
        sock, rport, fport = str(d / "r.sock"), bd.free_port(), bd.free_port()
        cmd = serve_cmd(cfg, d / "state", rport, bd.GAME_DAY, log=True)
        cmd[1:3] = [str(Path(__file__).resolve()), "router"]
        env = dict(os.environ, SPLIT_SOCK=sock)
        router = bd.Proc(cmd, d / "router.log", port=rport, env=env)
        front_cmd = [sys.executable, str(Path(__file__).resolve()), "front", str(fport), sock]
        procs = [router, bd.Proc(front_cmd, d / "front.log", port=fport)]
    else:
        procs = [bd.start(who, tmp, cfg, run)]
    import aiohttp

    try:
        async with aiohttp.ClientSession() as s:
            for p in procs:
                await p.ready(s)
            url = f"http://127.0.0.1:{procs[-1].port}/events"
            if args.warm > 0:
                await bd.saturate(s, url, args.warm, f"{run}-warm")
            names = [python_names(p.pid) for p in procs]
            k0 = [thread_cpu(p.pid, bd.TICK) for p in procs]
            n, elapsed = await bd.saturate(s, url, args.seconds, f"{run}-sat")
            k1 = [thread_cpu(p.pid, bd.TICK) for p in procs]
    finally:
        for p in procs:
            p.stop()
    n = max(1, n)
    per = [split(a, b, nm) for a, b, nm in zip(k0, k1, names, strict=True)]
    total = sum(sum(c.values()) for c in per)
    lines = [f"{who}: {n / elapsed:.0f} events/s, {total * 1000 / n:.4f} ms CPU per event"]
    if who == "split":
        for label, cpu in zip(("router", "front"), per, strict=True):
            parts = ", ".join(f"{k} {v * 1000 / n:.4f}" for k, v in cpu.most_common() if v > 0)
            lines.append(f"  {label}: {sum(cpu.values()) * 1000 / n:.4f} ms/event ({parts})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["router"]:
        return router_main(argv[1:])
    if argv[:1] == ["front"]:
        import uvloop

        uvloop.run(front_main(int(argv[1]), argv[2]))
        return 0
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=5.0, help="measured saturation")
    ap.add_argument("--warm", type=float, default=1.0, help="saturation before measuring")
    ap.add_argument("--who", default="bare,serve,split", help="contestants, in round order")
    args = ap.parse_args(argv)
    who = args.who.split(",")
    from bench_support import daemon_bench

    bd = daemon_bench()
    tmp = Path(tempfile.mkdtemp(prefix="scoperouter-front-split-"))
    got: dict[str, list[tuple[float, float]]] = {w: [] for w in who}
    try:
        for r in range(args.rounds):
            for w in who:
                text = asyncio.run(one_round(bd, w, tmp, f"r{r}-{w}", args))
                print(text, flush=True)
                rate, cpu = text.split(": ", 1)[1].split(" events/s, ")
                got[w].append((float(rate), float(cpu.split(" ms")[0])))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if "bare" in got:
        rate0 = statistics.median(r for r, _c in got["bare"])
        cpu0 = statistics.median(c for _r, c in got["bare"])
        for w in who:
            rate = statistics.median(r for r, _c in got[w]) / rate0
            cpu = statistics.median(c for _r, c in got[w]) / cpu0
            print(f"{w}: throughput {rate:.2f}x, CPU per event {cpu:.2f}x (medians)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
