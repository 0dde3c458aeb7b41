"""CLI errors read as what they are. Invariant: an error that names no file (a state dir
without a ledger, a listen address, an environment variable) prints as ``error: [PATH: ]
MESSAGE`` and its JSON says ``"file": null`` -- never a made-up ``<string>:1:1`` position
or ``<root>`` path; an error in a file keeps ``FILE:LINE:COL: error: PATH: MESSAGE``. Two
output choices that contradict each other are a usage error (exit 2): ``graph --json
--format dot``, where ``--json`` used to win silently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scoperouter.cli import main
from scoperouter.errors import ConfigIssue

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("issue", "text"),
    [
        (ConfigIssue("no ledger"), "error: no ledger"),
        (ConfigIssue("not set", path=("server", "port")), "error: server.port: not set"),
        (ConfigIssue("bad", file="r.yaml"), "r.yaml:1:1: error: <root>: bad"),
        (
            ConfigIssue("bad", file="r.yaml", line=3, column=5, path=("a", 0)),
            "r.yaml:3:5: error: a[0]: bad",
        ),
        (ConfigIssue("bad", line=3, column=5, path=("a",)), "<string>:3:5: error: a: bad"),
    ],
)
def test_issue_text(issue: ConfigIssue, text: str) -> None:
    """An issue without a file (and line) prints without a position; one with either keeps it."""
    assert issue.format() == text


@pytest.mark.parametrize(
    "argv",
    [
        ["trace", "some-id"],
        ["deadletters", "list"],
        ["deadletters", "show", "some-id"],
        ["deadletters", "list", "--json"],
    ],
)
def test_state_dir_errors_name_no_file(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A state dir without a ledger: `error: no ledger in ...` on stderr, `"file": null` in the JSON."""
    assert main([*argv, "--state-dir", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert err.startswith(f"error: no ledger in {tmp_path} "), err
    assert "<string>" not in err and "<root>" not in err
    if "--json" in argv:
        (issue,) = json.loads(out)["issues"]
        assert issue["file"] is None and issue["message"].startswith("no ledger in")


@pytest.mark.parametrize(
    ("argv", "points_to_outbox"),
    [
        (["deadletters", "list"], True),
        (["deadletters", "show", "some-id"], True),
        (["deadletters", "redrive", "some-id"], True),
        (["trace", "some-id"], False),
    ],
)
def test_no_ledger_says_where_dispatch_dead_letters_are(
    argv: list[str], points_to_outbox: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a ledger (serve ran with the closed loop off), deadletters points to `outbox list`, where dispatch dead letters are."""
    assert main([*argv, "--state-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "closed loop" in err
    assert "run serve or demo --faults" not in err  # serve may well have run
    hint = f"scoperouter outbox list --state-dir {tmp_path}"
    assert (hint in err) is points_to_outbox, err


@pytest.mark.parametrize(
    ("options", "rc", "starts"),
    [
        (["--json", "--format", "dot"], 2, None),
        (["--json", "--format", "mermaid"], 2, None),
        (["--json", "--format", "json"], 0, "{"),
        (["--json"], 0, "{"),
        (["--format", "dot"], 0, "digraph"),
        ([], 0, "flowchart"),
    ],
)
def test_graph_json_and_format(
    options: list[str], rc: int, starts: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    """`graph --json` with another --format is a usage error (exit 2); alone, or with --format json, it prints JSON."""
    argv = ["graph", "--config", str(REPO / "routes.yaml"), *options]
    if rc == 2:
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        out, err = capsys.readouterr()
        assert out == "" and "not allowed with --json" in err
        return
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith(starts or "")
