"""The container arguments the deploy docs give parse as ``serve``'s under the image's
ENTRYPOINT (``scoperouter serve``), and name a writable ``--state-dir``: a Cloud Run
``--args`` replaces the image's CMD whole (docs/rollout.md once passed ``serve`` twice, and
the service exited at start with a usage error)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from scoperouter.cli import build_parser

REPO = Path(__file__).resolve().parents[1]


def _entrypoint() -> list[str]:
    text = (REPO / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    (line,) = [ln for ln in text.splitlines() if ln.startswith("ENTRYPOINT ")]
    return list(json.loads(line.removeprefix("ENTRYPOINT ")))


def _doc_args() -> list[tuple[str, list[str]]]:
    """(doc:line, the arguments) of every gcloud ``--args=`` and YAML ``args:`` list."""
    out: list[tuple[str, list[str]]] = []
    for doc in (
        "docs/rollout.md",
        "docs/deploy-replicas.md",
        "deploy/README.md",
        "deploy/cloudrun-service.yaml",
    ):
        lines = (REPO / doc).read_text(encoding="utf-8").splitlines()
        for i, ln in enumerate(lines, start=1):
            m = re.search(r"--args=(\S+)", ln)
            if m:
                out.append((f"{doc}:{i}", m.group(1).split(",")))
            if re.fullmatch(r"\s*(- )?args:\s*", ln):
                indent = len(ln) - len(ln.lstrip(" -"))
                items = []
                for nxt in lines[i:]:
                    s = nxt.strip()
                    if not s.startswith("- ") or len(nxt) - len(nxt.lstrip()) < indent:
                        break
                    items.append(str(yaml.safe_load(s[2:].split(" #")[0])))
                out.append((f"{doc}:{i}", items))
    return out


ARGS = _doc_args()


def test_the_docs_give_container_arguments() -> None:
    """The rollout and replicas guides both hold some (the test below checks something)."""
    assert {w.split(":")[0] for w, _ in ARGS} >= {"docs/rollout.md", "docs/deploy-replicas.md"}


@pytest.mark.parametrize(("where", "args"), ARGS, ids=[w for w, _ in ARGS])
def test_container_arguments_parse_under_the_entrypoint(where: str, args: list[str]) -> None:
    """ENTRYPOINT + the doc's arguments parse as one serve command naming a --state-dir."""
    argv = [*_entrypoint()[1:], *args]
    assert argv[0] == "serve"
    build_parser().parse_args(argv)  # a usage error exits 2 (SystemExit)
    assert any(a.startswith("--state-dir") for a in args), f"{where}: no --state-dir in {args}"
