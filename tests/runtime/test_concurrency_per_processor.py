"""``target.concurrency`` caps the deliveries of each processor using a target, not the
target itself: processors sharing one target (``defaults.target``, or the same URL) have
a lane each, with its own slots and circuit breaker (runtime/lanes.py), and the schema,
docs/registry.md and README say so."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from runtime_support import RouterFactory, date_trigger, load, write_registry

from scoperouter.messages.models import Trigger
from scoperouter.processor_registry.model_targets import TargetSpec

REPO = Path(__file__).resolve().parents[2]


class Held:
    """A target that holds every delivery until released."""

    name = "held"

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.inflight = 0
        self.most = 0

    async def send(self, trigger: Trigger, **kw: Any) -> None:
        self.inflight += 1
        self.most = max(self.most, self.inflight)
        try:
            await self.release.wait()
        finally:
            self.inflight -= 1


async def test_concurrency_caps_each_processor_not_the_shared_target(
    tmp_path: Path, make_router: RouterFactory
) -> None:
    """Three processors sharing defaults.target with concurrency 1 have a delivery each in flight; the docs say per processor."""
    cfg = load(write_registry(tmp_path, default_target={"outbox": {}, "concurrency": 1}))
    target = Held()
    r = make_router(cfg, target)
    d = r.dispatcher
    names = list(cfg.registry.processors)[:3]
    lanes = [d.lane(p) for p in names]
    assert all(ln.target.concurrency == 1 for ln in lanes)
    for n, ln in enumerate(lanes):
        ln.batch = 1
        d._start_rows(ln, [(n, date_trigger(n, ln.name), None, 0, r.clock())], "live")
    await asyncio.sleep(0)
    assert [ln.free for ln in lanes] == [0, 0, 0]  # each processor's one slot is taken
    assert target.most == 3  # three in flight to the one shared target
    target.release.set()
    await asyncio.gather(*d.tasks)

    # what users read says so
    description = TargetSpec.model_fields["concurrency"].description or ""
    assert "per processor" in description
    row = re.search(r"^\| `concurrency` \|.*$", (REPO / "docs" / "registry.md").read_text(), re.M)
    assert row is not None and "per processor" in row.group(0)
    assert "Each target has its own concurrency limit" not in (REPO / "README.md").read_text()
