"""A warm `python -m amity.cli`: one process imports Amity once, then forks a fresh child
per command, so the tests' many `amity ...` runs do not each pay the second or more it
takes to import the command (aiohttp, scipy, ...) from scratch.

Each child is still a separate process that runs `amity/cli/__main__.py` as `__main__`
(as `python -m amity.cli` does) with the caller's arguments, working directory,
environment and standard streams (passed as file descriptors), and exits with the
command's status. The server reports each child's pid when it starts and its return code
(negative for a signal, as `subprocess.Popen` does) when it ends, so tests can signal, kill
and wait for it like any subprocess.

Run as `python -m tests.forkserver SOCKET` from the repository root (tests/helpers.py
does); `AMITY_TEST_FORK=0` makes the helpers start every command from scratch instead.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import runpy
import select
import socket
import sys
import threading
import traceback
from typing import Any

# Loaded before any fork: what the commands import, eagerly or on first use.
PRELOADED = (
    "amity.cli.main",
    "amity.federation.actors",
    "amity.federation.client",
    "amity.federation.guard",
    "amity.federation.school_profiles",
    "amity.federation.webfinger",
    "amity.node.lan",
    "amity.node.server",
)
for _module in PRELOADED:
    importlib.import_module(_module)

MAX_REQUEST = 1 << 20


def _exit_code(exc: SystemExit) -> int:
    """The status the interpreter would exit with for this SystemExit."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def _run_child(request: dict[str, Any], fds: list[int]) -> None:
    """In the forked child: become `python -m amity.cli ARGS`; never returns."""
    code = 1
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.path[0] = os.getcwd()
        sys.argv = ["-m", *request["args"]]
        try:
            runpy.run_module("amity.cli", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc)
        except BaseException:
            traceback.print_exc()
            code = 1
        # What the interpreter does on the way out: join threads, run atexit, flush.
        threading._shutdown()  # type: ignore[attr-defined]
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                code = code or 120
    finally:
        os._exit(code)


def serve(path: str) -> None:
    parent = os.getppid()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path + ".tmp")
    listener.listen(64)
    os.rename(path + ".tmp", path)  # clients connect only once it listens
    running: dict[int, socket.socket] = {}
    while os.getppid() == parent:
        ready, _, _ = select.select([listener], [], [], 0.02)
        if ready:
            conn, _ = listener.accept()
            try:
                message, fds, _, _ = socket.recv_fds(conn, MAX_REQUEST, 3)
                request = json.loads(message)
                assert len(fds) == 3, fds
            except Exception:
                traceback.print_exc()
                conn.close()
                continue
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                listener.close()
                conn.close()
                for other in running.values():
                    other.close()
                _run_child(request, fds)
            for fd in fds:
                os.close(fd)
            with contextlib.suppress(OSError):  # the caller gave up already
                conn.send(json.dumps({"pid": pid}).encode())
            running[pid] = conn
        while running:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            finished = running.pop(pid, None)
            if finished is not None:
                code = os.waitstatus_to_exitcode(status)
                with contextlib.suppress(OSError):
                    finished.send(json.dumps({"returncode": code}).encode())
                finished.close()


if __name__ == "__main__":
    serve(sys.argv[1])
