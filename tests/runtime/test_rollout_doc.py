"""docs/rollout.md runs as written against the Pub/Sub emulator (issue 19, acceptance 4):
every ```python and ```bash block, in order, in one fresh directory, with
``PUBSUB_EMULATOR_HOST``, a fresh ``GOOGLE_CLOUD_PROJECT`` and a free ``SCOPEROUTER_PORT``.

Blocks preceded by ``<!-- rollout-test: skip needs-cloud -->`` need a real Google Cloud
project (gcloud, bq); they are reported as skipped with that reason, never as passing.
The daemon the guide starts in the background is stopped by its pid file at the end."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from runtime_support import free_port

import doc_blocks
from doc_blocks import Block

DOC = Path(__file__).resolve().parents[2] / "docs" / "rollout.md"
SKIP_MARK = "<!-- rollout-test: skip needs-cloud -->"


def parse_blocks(text: str) -> list[Block]:
    """Every fenced block with a language, and whether this guide's skip mark marks it."""
    return doc_blocks.parse_blocks(text, SKIP_MARK)


BLOCKS = [b for b in parse_blocks(DOC.read_text(encoding="utf-8")) if b.lang in ("python", "bash")]


@pytest.fixture(scope="module")
def outcomes(
    pubsub_emulator: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[int, tuple[int, str]]]:
    """Run every non-skipped block once, in order; stop at the first failure (later blocks
    depend on earlier ones). Kills the guide's daemon afterwards."""
    work = tmp_path_factory.mktemp("rollout-doc")
    env = dict(os.environ)
    env.update(
        PUBSUB_EMULATOR_HOST=pubsub_emulator,
        GOOGLE_CLOUD_PROJECT=f"rollout-{uuid.uuid4().hex[:8]}",
        SCOPEROUTER_PORT=str(free_port()),
    )
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    results: dict[int, tuple[int, str]] = {}
    try:
        for block in BLOCKS:
            if block.skip:
                continue
            script = work / f"block_{block.index:02d}.{'py' if block.lang == 'python' else 'sh'}"
            script.write_text(block.code, encoding="utf-8")
            cmd = (
                [sys.executable, script.name]
                if block.lang == "python"
                else ["bash", "-euo", "pipefail", script.name]
            )
            try:
                p = subprocess.run(
                    cmd, cwd=work, env=env, capture_output=True, text=True, timeout=90
                )
                results[block.index] = (p.returncode, p.stdout + p.stderr)
            except subprocess.TimeoutExpired as exc:
                results[block.index] = (-1, f"timed out: {exc}")
            if results[block.index][0] != 0:
                log = work / "serve.log"
                if log.exists():
                    results[block.index] = (
                        results[block.index][0],
                        results[block.index][1] + "\n--- serve.log ---\n" + log.read_text()[-3000:],
                    )
                break
        yield results
    finally:
        pid_file = work / "serve.pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)


@pytest.mark.emulator
@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_block_runs_as_written(block: Block, outcomes: dict[int, tuple[int, str]]) -> None:
    """Each block of docs/rollout.md exits 0 when run in order; cloud-only blocks are skipped."""
    if block.skip:
        pytest.skip(f"docs/rollout.md:{block.line}: needs a Google Cloud project (gcloud/bq)")
    assert block.index in outcomes, f"docs/rollout.md:{block.line} not run: an earlier block failed"
    rc, output = outcomes[block.index]
    assert rc == 0, f"docs/rollout.md:{block.line} failed:\n{block.code}\n--- output ---\n{output}"


def test_only_cloud_bash_blocks_are_skipped() -> None:
    """Skip markers sit only before bash blocks that talk to a real project; most blocks run."""
    for block in BLOCKS:
        if block.skip:
            assert block.lang == "bash" and ("gcloud" in block.code or "bq " in block.code), (
                block.line
            )
    marks = [ln for ln in DOC.read_text(encoding="utf-8").splitlines() if ln.strip() == SKIP_MARK]
    assert len(marks) == sum(b.skip for b in BLOCKS)
    assert sum(not b.skip for b in BLOCKS) > 3 * sum(b.skip for b in BLOCKS)
