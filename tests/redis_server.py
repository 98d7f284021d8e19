"""A real Redis server for the tests, from the Debian ``redis-server`` package.

Started on a free 127.0.0.1 port with its own folder (no persistence, no system service), polled
with PING until it answers, stopped with SIGTERM. Without the binary the tests skip with the
reason, and fail under ``CI=true`` (``.ci/run`` installs the package), as the Postgres tests do.
"""

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from server_binaries import in_ci, require_binary

INSTALL_HINT = "apt-get install -y redis-server (.ci/run installs it)"


def redis_server_binary() -> str | None:
    """``redis-server`` on PATH or in /usr/bin (the Debian package), if installed."""
    return shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)


def require_redis_binary(binary: str | None, in_ci: bool) -> str:
    """The binary; without one, skip the test (with the reason), or fail it under CI."""
    return require_binary(binary, f"redis-server not found: {INSTALL_HINT}", in_ci)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """One server: ``start()``, ``url(db)``, ``stop()``."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = _free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="cryptolake-redis-"))
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> "RedisServer":
        self.process = subprocess.Popen(
            [
                self.binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.folder),
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ],
            stdout=(self.folder / "server.log").open("w"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self.process.poll() is not None:
                    log = (self.folder / "server.log").read_text()
                    raise RuntimeError(f"redis-server exited with {self.process.returncode}:\n{log}")
                try:
                    if client.ping():
                        return self
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                time.sleep(0.05)
        finally:
            client.close()

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def started_redis_server() -> Iterator[RedisServer]:
    """Body of a fixture: a started server, stopped afterwards (skips or fails without the binary)."""
    server = RedisServer(require_redis_binary(redis_server_binary(), in_ci())).start()
    try:
        yield server
    finally:
        server.stop()
