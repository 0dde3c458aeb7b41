"""``scoperouter.cli.main`` in a process of its own, forked from a server that imported the
CLI once (multiprocessing's ``forkserver`` with this module preloaded): for tests that need
a separate process per run -- its own memory limit, an exit code, a crash that cannot take
pytest with it -- without paying an interpreter's start and the CLI's imports each time
(about a second a run on a loaded 2-core machine, most of a small command's cost).

Invariant: every run is a new process, forked from a server in which nothing but imports
ran; it runs ``main(argv)`` in ``cwd`` under the given address-space limit and reports its
exit code, stdout and stderr -- with the traceback in stderr when ``main`` raised, as
``python -m scoperouter.cli`` would print it -- or is killed once its budget is spent."""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import resource
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from pathlib import Path

# what the server imports once, before it forks a run: this module, the CLI's entry and the
# commands the fork-run tests call (a command not listed is imported by its run)
PRELOAD = (
    "cli_fork",
    "scoperouter.cli",
    "scoperouter.commands.validate",
    "scoperouter.commands.explain",
    "scoperouter.commands.replay",
    "scoperouter.commands.report",
)


@dataclass(frozen=True)
class CliRun:
    """What one run printed and returned (``returncode`` < 0: killed by that signal)."""

    returncode: int
    stdout: str
    stderr: str


def _child(
    argv: list[str],
    cwd: str,
    env: dict[str, str],
    stdin: bytes,
    address_space: int | None,
    conn: Connection,
) -> None:
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
    os.environ.clear()  # the caller's, not the server's (started by an earlier run)
    os.environ.update(env)
    if address_space is not None:
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    os.chdir(cwd)
    out, err = io.StringIO(), io.StringIO()
    from scoperouter.cli import main

    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse's usage errors (2), an explicit exit
            if isinstance(exc.code, int) or exc.code is None:
                rc = exc.code or 0
            else:  # sys.exit("message"): printed, exit code 1, as the interpreter does
                print(exc.code, file=sys.stderr)
                rc = 1
        except BaseException:  # what the interpreter would print, and its exit code
            traceback.print_exc()
            rc = 1
    conn.send(CliRun(rc, out.getvalue(), err.getvalue()))
    conn.close()


_context: ForkServerContext | None = None


def _server() -> ForkServerContext:
    global _context
    if _context is None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(list(PRELOAD))
        _context = ctx
    return _context


def run_cli(
    argv: Sequence[str],
    *,
    cwd: Path,
    budget_s: float,
    address_space: int | None = None,
    env: dict[str, str] | None = None,
    stdin: str = "",
) -> CliRun:
    """``scoperouter ARGV`` run in ``cwd`` in a forked process with ``env`` (default: this
    process's environment now), ``stdin`` and ``address_space`` (its RLIMIT_AS in bytes, if
    given); raises TimeoutError, the process killed, past ``budget_s``."""
    ctx = _server()
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_child,
        args=(
            list(argv),
            str(cwd),
            dict(os.environ if env is None else env),
            stdin.encode(),
            address_space,
            send,
        ),
    )
    proc.start()
    send.close()  # the child's end: EOF here once the child is gone
    try:
        if not recv.poll(budget_s):
            raise TimeoutError(f"scoperouter {' '.join(argv)}: no result within {budget_s:g}s")
        try:
            result: CliRun = recv.recv()
        except EOFError:  # died before it could report (a signal, the memory limit)
            proc.join(budget_s)
            code = proc.exitcode if proc.exitcode is not None else -9
            return CliRun(code, "", f"the run's process ended with exit code {code}")
        proc.join(budget_s)
        return result
    finally:
        recv.close()
        if proc.is_alive():
            proc.kill()
            proc.join()
