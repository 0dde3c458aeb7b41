"""docs/migration.md runs as written: every ```python and ```bash block, in order, in a tmp dir.

Blocks preceded by ``<!-- migration-test: skip needs-cloud -->`` need a Google Cloud
project; they are reported as skipped (never as passing), and only bash blocks may be.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import doc_blocks
from doc_blocks import Block

# An explicit budget for a loaded 2-core machine: the guide's blocks start
# services and the emulator (46 s for one set-up under `stress-ng --cpu 4`).
pytestmark = pytest.mark.timeout(600)

DOC = Path(__file__).resolve().parents[2] / "docs" / "migration.md"
SKIP_MARK = "<!-- migration-test: skip needs-cloud -->"


def parse_blocks(text: str) -> list[Block]:
    """Every fenced block with a language, and whether this guide's skip mark marks it."""
    return doc_blocks.parse_blocks(text, SKIP_MARK)


BLOCKS = [b for b in parse_blocks(DOC.read_text()) if b.lang in ("python", "bash")]


@dataclass(frozen=True)
class Outcome:
    returncode: int
    output: str


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Outcome]:
    """Run every non-skipped block once, in document order, in one fresh directory."""
    work = tmp_path_factory.mktemp("migration-doc")
    env = {k: v for k, v in os.environ.items() if k not in ("PUBSUB_EMULATOR_HOST",)}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    results: dict[int, Outcome] = {}
    for block in BLOCKS:
        if block.skip:
            continue
        script = work / f"block_{block.index:02d}.{'py' if block.lang == 'python' else 'sh'}"
        script.write_text(block.code)
        cmd = (
            [sys.executable, script.name]
            if block.lang == "python"
            else ["bash", "-euo", "pipefail", script.name]
        )
        try:
            proc = subprocess.run(
                cmd, cwd=work, env=env, capture_output=True, text=True, timeout=60
            )
            results[block.index] = Outcome(proc.returncode, proc.stdout + proc.stderr)
        except subprocess.TimeoutExpired as exc:
            results[block.index] = Outcome(-1, f"timed out: {exc}")
    return results


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_block_runs_as_written(block: Block, outcomes: dict[int, Outcome]) -> None:
    """Each block of docs/migration.md exits 0 when run in order; cloud-only blocks are skipped."""
    if block.skip:
        pytest.skip(f"docs/migration.md:{block.line}: needs a Google Cloud project")
    result = outcomes[block.index]
    assert result.returncode == 0, (
        f"docs/migration.md:{block.line} failed:\n{block.code}\n--- output ---\n{result.output}"
    )


def test_only_cloud_bash_blocks_are_skipped() -> None:
    """Skip markers sit only before bash blocks that talk to a real project."""
    for block in BLOCKS:
        if block.skip:
            assert block.lang == "bash", f"line {block.line}: python blocks must run"
            assert "GOOGLE_CLOUD_PROJECT" in block.code or "gcloud" in block.code, block.line
    marks = [ln for ln in DOC.read_text().splitlines() if ln.strip() == SKIP_MARK]
    assert len(marks) == sum(b.skip for b in BLOCKS)


def test_guide_has_runnable_python_and_bash() -> None:
    """The guide is mostly runnable: several python and bash blocks are executed."""
    runnable = [b for b in BLOCKS if not b.skip]
    assert sum(b.lang == "python" for b in runnable) >= 6
    assert sum(b.lang == "bash" for b in runnable) >= 4
    assert len(runnable) > 2 * sum(b.skip for b in BLOCKS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("```python\nx = 1\n```\n", [("python", False, "x = 1\n")]),
        (f"{SKIP_MARK}\n\n```bash\ngcloud x\n```\n", [("bash", True, "gcloud x\n")]),
        ("```\nplain\n```\n```bash\necho\n```\n", [("bash", False, "echo\n")]),
    ],
)
def test_parse_blocks(text: str, expected: list[tuple[str, bool, str]]) -> None:
    """The extractor finds language, skip marker and body; unlabelled fences are not blocks."""
    assert [(b.lang, b.skip, b.code) for b in parse_blocks(text)] == expected
