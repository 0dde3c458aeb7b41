"""``demo --state-dir`` saves the ledger of the ``--faults`` run: without ``--faults`` there
is no ledger to save, so it is a usage error (exit 2, one line naming both options, before
the demo runs), as ``report --bigquery`` with ``--log`` is -- not an option silently
ignored."""

from __future__ import annotations

from pathlib import Path

import pytest

from scoperouter.cli import main


def test_state_dir_without_faults_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """demo --state-dir without --faults exits 2 with one line, runs nothing and creates nothing."""
    import scoperouter.examples.nba.demo as demo

    def ran(*_: object, **__: object) -> None:
        raise AssertionError("the demo ran")

    monkeypatch.setattr(demo, "run_demo", ran)
    state = tmp_path / "state"
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--state-dir", str(state), "--no-log"])
    assert exit_.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert (
        err
        == "scoperouter demo: error: --state-dir: only with --faults (without it no ledger is saved)\n"
    )
    assert not state.exists()
