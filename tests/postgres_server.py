"""A real PostgreSQL server for the tests, from the Debian ``postgresql`` package.

Postgres refuses to run as root, so the data folder belongs to the ``postgres`` user and
``initdb``/``pg_ctl`` run through ``su postgres -c`` when the tests run as root (as CI does). The
server listens on 127.0.0.1 on a free port, with its socket in the data folder (trust auth: the
server is reachable from this machine only, for the length of the test session).
"""

import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import sqlalchemy as db

POSTGRES_LIB = Path("/usr/lib/postgresql")
INSTALL_HINT = "apt-get install -y postgresql (.ci/run installs it)"


def postgres_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding initdb and pg_ctl, if any."""
    if not POSTGRES_LIB.is_dir():
        return None
    versions = sorted(
        (p for p in POSTGRES_LIB.iterdir() if (p / "bin" / "initdb").exists() and (p / "bin" / "pg_ctl").exists()),
        key=lambda p: int(p.name) if p.name.isdigit() else -1,
    )
    return versions[-1] / "bin" if versions else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """One server: ``start()``, ``new_database()`` per test, ``stop()``."""

    def __init__(self, bin_dir: Path, fsync: bool = False) -> None:
        """``fsync=False`` (the tests): faster, not crash-safe; benchmarks quoting figures use True."""
        self.bin_dir = bin_dir
        self.fsync = fsync
        self.port = free_port()
        self.data_dir = Path(tempfile.mkdtemp(prefix="cryptolake-pg-"))
        self.as_root = os.geteuid() == 0
        self.user = "postgres" if self.as_root else pwd.getpwuid(os.geteuid()).pw_name

    def _run(self, *args: str) -> None:
        command = " ".join(shlex.quote(a) for a in args)
        if self.as_root:
            argv = ["su", "postgres", "-s", "/bin/sh", "-c", command]
        else:
            argv = ["/bin/sh", "-c", command]
        result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{command} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")

    def start(self) -> "PostgresServer":
        if self.as_root:
            shutil.chown(self.data_dir, user="postgres", group="postgres")
        pgdata = str(self.data_dir / "data")
        self._run(str(self.bin_dir / "initdb"), "-D", pgdata, "-A", "trust", "-U", self.user, "--no-sync")
        options = (
            f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1 -c fsync={'on' if self.fsync else 'off'}"
        )
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            pgdata,
            "-o",
            options,
            "-l",
            f"{self.data_dir}/server.log",
            "-w",
            "start",
        )
        return self

    def stop(self) -> None:
        try:
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir / "data"), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        """The database's URL; ``+psycopg2``: SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3."""
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        name = f"test_{uuid.uuid4().hex[:12]}"
        engine = db.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(db.text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        return self.url(name)
