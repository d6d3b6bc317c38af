"""Helpers for tests: the example profile, free ports, the real `amity` command."""

from __future__ import annotations

import atexit
import io
import json
import locale
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_PROFILE: dict[str, Any] = json.loads((ROOT / "examples" / "profile.json").read_text())


def free_port() -> int:
    """A port nothing listens on now. Under pytest-xdist each worker takes only ports of its
    own share, so two workers never pick the same one for their nodes (by port // 2: the
    kernel hands out odd ports for bind, so parity alone would not split them)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port // 2 % workers == worker % workers:
            return port


class ForkedProcess:
    """A `python -m amity.cli` child of the fork server (tests/forkserver.py), used like a
    `subprocess.Popen`: pid, poll, wait, signals, returncode, and `stdout` if piped."""

    def __init__(self, args: list[str], stdout: IO[str] | None = None) -> None:
        self.args = args
        self.stdout = stdout
        self.returncode: int | None = None
        self._conn: socket.socket | None = None
        self.pid = 0

    def _started(self, conn: socket.socket) -> ForkedProcess:
        self._conn = conn
        conn.settimeout(60)
        self.pid = int(json.loads(conn.recv(4096))["pid"])
        return self

    def _receive(self, timeout: float | None) -> int | None:
        if self.returncode is None:
            assert self._conn is not None
            self._conn.settimeout(timeout)
            try:
                message = self._conn.recv(4096)
            except (TimeoutError, BlockingIOError):
                return None
            if not message:
                raise AssertionError(f"the fork server lost {self.args} (pid {self.pid})")
            self.returncode = int(json.loads(message)["returncode"])
            self._conn.close()
        return self.returncode

    def poll(self) -> int | None:
        return self._receive(0)

    def wait(self, timeout: float | None = None) -> int:
        code = self._receive(timeout)
        if code is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return code

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class _ForkServer:
    """The fork server of this test process, started on first use (tests/forkserver.py)."""

    _lock = threading.Lock()
    _process: subprocess.Popen[bytes] | None = None
    _socket = ""

    @classmethod
    def enabled(cls) -> bool:
        return os.environ.get("AMITY_TEST_FORK", "1") != "0"

    @classmethod
    def _path(cls) -> str:
        with cls._lock:
            if cls._process is None or cls._process.poll() is not None:
                directory = tempfile.mkdtemp(prefix="amity-fork-")
                cls._socket = os.path.join(directory, "fork.sock")
                with open(os.path.join(directory, "server.log"), "wb") as log:
                    # No BLAS threads in the process that forks: a child gets only one thread.
                    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
                    cls._process = subprocess.Popen(
                        [sys.executable, "-m", "tests.forkserver", cls._socket],
                        cwd=ROOT,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=log,
                    )
                atexit.register(cls._stop, cls._process, directory)
                deadline = time.monotonic() + 60
                while not os.path.exists(cls._socket):
                    if cls._process.poll() is not None or time.monotonic() > deadline:
                        log_text = Path(directory, "server.log").read_text()
                        raise AssertionError(f"the fork server did not start: {log_text}")
                    time.sleep(0.02)
            return cls._socket

    @staticmethod
    def _stop(process: subprocess.Popen[bytes], directory: str) -> None:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=20)
        shutil.rmtree(directory, ignore_errors=True)

    @classmethod
    def spawn(cls, args: list[str], stdin: int, stdout: int, stderr: int) -> socket.socket:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            conn.connect(cls._path())
            request = {"args": args, "cwd": os.getcwd(), "env": dict(os.environ)}
            socket.send_fds(conn, [json.dumps(request).encode()], [stdin, stdout, stderr])
        except BaseException:
            conn.close()
            raise
        return conn


def start_amity(
    args: list[str], stdout: int, stderr: int, stdin: int | None = None
) -> ForkedProcess | None:
    """`python -m amity.cli ARGS` forked from the warm server with these standard streams
    (file descriptors, left open for the caller to close); None when AMITY_TEST_FORK=0."""
    if not _ForkServer.enabled():
        return None
    with open(os.devnull, "rb") as null:
        conn = _ForkServer.spawn(args, null.fileno() if stdin is None else stdin, stdout, stderr)
    return ForkedProcess([sys.executable, "-m", "amity.cli", *args])._started(conn)


def _decoded(raw: bytes) -> str:
    """Output as `subprocess.run(text=True)` decodes it (locale encoding, universal newlines)."""
    return io.TextIOWrapper(io.BytesIO(raw), encoding=locale.getpreferredencoding(False)).read()


def amity(
    *args: str, data: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the real `amity` command in a subprocess (forked from a process that has imported
    it already, see tests/forkserver.py; AMITY_TEST_FORK=0 starts each one from scratch)."""
    command = [sys.executable, "-m", "amity.cli", *args]
    if data is not None:
        command += ["--data", str(data)]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = start_amity(command[3:], out.fileno(), err.fileno())
        if process is None:
            result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        else:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=20)
                raise
            out.seek(0)
            err.seek(0)
            result = subprocess.CompletedProcess(
                command, process.wait(), _decoded(out.read()), _decoded(err.read())
            )
    if check and result.returncode != 0:
        raise AssertionError(f"amity {' '.join(args)} failed: {result.stderr}")
    return result


class ServedNode:
    """`amity serve` running in a subprocess on 127.0.0.1.

    It does not take part in LAN discovery unless `lan_discovery` is set: advertising and
    browsing on the loopback interface costs a second at every start, and would let the
    nodes of unrelated tests (or test runs) beside it find each other."""

    def __init__(self, data: Path, port: int, *extra: str, lan_discovery: bool = False) -> None:
        self.data = data
        self.port = port
        if not lan_discovery and "--no-lan-discovery" not in extra:
            extra = (*extra, "--no-lan-discovery")
        self.extra = extra
        self.base_url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[str] | ForkedProcess | None = None

    def start(self) -> ServedNode:
        args = ["serve", "--data", str(self.data), *self.extra]
        self.process = _start_logged(args)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"amity serve exited: {self.process.stdout.read()}")  # type: ignore[union-attr]
            try:
                self.get("/.well-known/nodeinfo")
                return self
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.05)
        raise AssertionError("amity serve did not answer within 20 s")

    def get(
        self, path: str, accept: str = "application/activity+json"
    ) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.base_url + path, headers={"Accept": accept})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def kill(self, sig: int = signal.SIGKILL) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        return self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=20)
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()


def _start_logged(args: list[str]) -> subprocess.Popen[str] | ForkedProcess:
    """`amity ARGS` with its stdout and stderr together in the returned process's `stdout`."""
    if _ForkServer.enabled():
        read, write = os.pipe()
        try:
            process = start_amity(args, write, write)
        finally:
            os.close(write)
        assert process is not None
        process.stdout = open(read, encoding=locale.getpreferredencoding(False))  # noqa: SIM115
        return process
    return subprocess.Popen(
        [sys.executable, "-m", "amity.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_until(predicate: Any, timeout: float = 15.0, interval: float = 0.1) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def query(data: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows from a node's database, read through a separate connection (as another process)."""
    connection = sqlite3.connect(f"file:{data / 'amity.db'}?mode=ro", uri=True, timeout=10)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


def make_school(tmp_path: Path, handle: str, port: int, **profile_changes: Any) -> Path:
    """`amity init` a school node on 127.0.0.1:port with the example profile (changed)."""
    data = tmp_path / handle
    profile = {**EXAMPLE_PROFILE, **profile_changes}
    profile_file = tmp_path / f"{handle}.json"
    profile_file.write_text(json.dumps(profile))
    amity(
        "init",
        "--name",
        handle,
        "--base-url",
        f"http://127.0.0.1:{port}",
        "--profile",
        str(profile_file),
        data=data,
    )
    with (data / "amity.toml").open("a") as config:
        config.write("\n[federation]\nfirst_retry_seconds = 1\n")
    return data


async def read_rsa_signed(request: Any, public_key: Any) -> bytes:
    """The body of an aiohttp request to a test inbox, once its draft-cavage RSA signature
    and Digest verify against `public_key` (raises the verifier's error otherwise)."""
    from datetime import UTC, datetime

    from amity.protocol.httpsig import check_digest, parse_signature_header, verify_request

    body: bytes = await request.read()
    headers = {name.lower(): value for name, value in request.headers.items()}
    verify_request(
        parse_signature_header(headers["signature"]),
        method="POST",
        target=request.path_qs,
        headers=headers,
        public_key=public_key,
        now=datetime.now(UTC),
        require=("(request-target)", "host", "date", "digest"),
    )
    check_digest(headers.get("digest"), body)
    return body
