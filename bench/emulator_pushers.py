"""Does the Pub/Sub emulator stop pushing to a streaming pull whose subscriber is gone?
(No scoperouter involved: plain google-cloud-pubsub subscribers.)

Counts the emulator's ``StreamingPullPusher`` threads (``jstack``) while subscribers open a
streaming pull and then die by SIGKILL, by SIGTERM, or close it gracefully
(``future.cancel()`` + ``client.close()``); then publishes a batch of messages that only one
live subscriber acks and reports how long they take to reach it, against a fresh emulator
where no subscriber ever died. A pusher that outlives its subscriber keeps pulling from
the subscription (up to 100 messages every 50 ms, flow control ignored) and sends them
into the dead stream: they come back only after that stream's ack deadline (10 s), when
they are raced for again by every pusher alive. Usage::

    python bench/emulator_pushers.py [--dead 5] [--messages 500]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_support import start_emulator

SUBSCRIBER = """
import sys, time
from google.cloud import pubsub_v1
sc = pubsub_v1.SubscriberClient()
flow = pubsub_v1.types.FlowControl(max_messages=1000, max_duration_per_lease_extension=10)
def cb(m):
    sys.stdout.write(f"{time.time():.3f} {m.message_id}\\n"); sys.stdout.flush()
    if sys.argv[2] == "ack":
        m.ack()
f = sc.subscribe(sys.argv[1], callback=cb, flow_control=flow)
if sys.argv[2] == "close":  # a graceful stop
    time.sleep(3); f.cancel(); f.result(); sc.close()
time.sleep(3600)
"""


def pushers(pid: int) -> int:
    out = subprocess.run(["jstack", str(pid)], capture_output=True, text=True, timeout=60).stdout
    return out.count("FakePubsubServer$StreamingPullPusher.run")


def run(dead: int, messages: int) -> dict[str, Any]:
    from google.cloud import pubsub_v1

    tmp = Path(tempfile.mkdtemp(prefix="emulator-pushers-"))
    emu = start_emulator(tmp, wait_s=180)
    if emu is None:
        raise SystemExit("the Pub/Sub emulator (and java) are needed")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        topic, sub = "projects/emu-pushers/topics/topic1", "projects/emu-pushers/subscriptions/sub1"
        pub = pubsub_v1.PublisherClient()
        pub.create_topic(name=topic)
        sc = pubsub_v1.SubscriberClient()
        sc.create_subscription(request={"name": sub, "topic": topic, "ack_deadline_seconds": 10})

        def spawn(mode: str, out: Path | None = None) -> subprocess.Popen[bytes]:
            p = subprocess.Popen(
                [sys.executable, "-c", SUBSCRIBER, sub, mode],
                stdout=out.open("wb") if out else subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            procs.append(p)
            return p

        res: dict[str, Any] = {"dead_subscribers": dead}
        how = ["kill", "term", "close"]
        for i in range(dead):
            mode = how[i % 3]
            p = spawn("close" if mode == "close" else "hold")
            time.sleep(4)
            if mode != "close":
                p.send_signal(signal.SIGKILL if mode == "kill" else signal.SIGTERM)
                p.wait(30)
        time.sleep(2)
        res["pushers_with_no_subscriber"] = pushers(emu.pid)
        log = tmp / "live.log"
        spawn("ack", log)
        time.sleep(4)
        res["pushers_with_one_live_subscriber"] = pushers(emu.pid)
        t0 = time.time()
        for f in [pub.publish(topic, f"m{i}".encode()) for i in range(messages)]:
            f.result()
        got: dict[str, float] = {}
        while time.time() - t0 < 300 and len(got) < messages:
            time.sleep(1)
            for line in log.read_text().splitlines():
                at, _, mid = line.partition(" ")
                got.setdefault(mid, float(at) - t0)
        times = sorted(got.values())
        res["messages"] = messages
        res["received_by_the_live_subscriber"] = len(got)
        for q in (0.5, 0.9, 1.0):
            res[f"arrival_s_p{int(q * 100)}"] = (
                round(times[min(len(times) - 1, int(len(times) * q))], 1) if times else None
            )
        return res
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        os.killpg(emu.pid, signal.SIGKILL)
        emu.wait(10)
        os.environ.pop("PUBSUB_EMULATOR_HOST", None)  # the next run starts its own


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dead", type=int, default=6, help="subscribers that die (kill/term/close)")
    p.add_argument("--messages", type=int, default=500)
    args = p.parse_args()
    if shutil.which("jstack") is None:
        raise SystemExit("jstack (a JDK) is needed to count the emulator's threads")
    out = {
        "no_dead_subscriber": run(0, args.messages),
        "after_deaths": run(args.dead, args.messages),
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
