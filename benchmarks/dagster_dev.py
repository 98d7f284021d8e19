"""A ``dagster dev`` (webserver + daemons) on 127.0.0.1 for the benchmark, driven through GraphQL
exactly like the UI; started in its own process group so it can be stopped as a whole."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
LOCATION = "cryptolake"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DagsterDev:
    def __init__(self, home: Path, env: dict[str, str]):
        self.home, self.env, self.port = home, env, free_port()
        self.process: subprocess.Popen | None = None
        self.log = home / "dagster-dev.log"
        # One client for every query: a new httpx client per call builds an SSL context each time,
        # which cost the benchmark process a fifth of a core while it polled a backfill.
        self.client = httpx.Client(timeout=120)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "DagsterDev":
        self.home.mkdir(parents=True, exist_ok=True)
        # The instance the environment chooses, as `cryptolake ui` does (CRYPTOLAKE_INSTANCE=postgres:
        # deploy/postgres/dagster.yaml, server at DAGSTER_POSTGRES_URL).
        on_postgres = (self.env.get("CRYPTOLAKE_INSTANCE") or "").lower() == "postgres"
        config = REPO / "deploy" / "postgres" / "dagster.yaml" if on_postgres else REPO / "dagster.yaml"
        shutil.copyfile(config, self.home / "dagster.yaml")
        dagster = Path(sys.executable).with_name("dagster")
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(dagster), "dev", "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(self.port)],
                cwd=REPO,
                env={**os.environ, **self.env, "DAGSTER_HOME": str(self.home)},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_ready(timeout=180)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        self.client.close()

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dagster dev exited {self.process.returncode}:\n{self.log_tail()}")
            try:
                entries = self.graphql(
                    "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
                    "locationOrLoadError { __typename ... on PythonError { message } } } } } }"
                )["workspaceOrError"]["locationEntries"]
                entry = next((e for e in entries if e["name"] == LOCATION), None)
                if entry and entry["loadStatus"] == "LOADED":
                    if entry["locationOrLoadError"]["__typename"] == "PythonError":
                        raise RuntimeError(f"code location failed to load: {entry['locationOrLoadError']['message']}")
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"dagster dev not ready after {timeout}s:\n{self.log_tail()}")

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        response = self.client.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}})
        body = response.json()
        if response.status_code != 200 or body.get("errors"):
            raise RuntimeError(f"GraphQL error {response.status_code}: {body.get('errors')}")
        return body["data"]

    def stop(self) -> None:
        if self.process is None:
            return
        group = self.process.pid
        try:
            os.killpg(group, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            self.process.wait()
        deadline = time.monotonic() + 30  # code servers linger a few seconds after the webserver
        while time.monotonic() < deadline and _group_alive(group):
            time.sleep(0.2)
        if _group_alive(group):
            os.killpg(group, signal.SIGKILL)
        self.process = None


def _group_alive(group: int) -> bool:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == group and fields[0] != "Z":
                return True
    return False
