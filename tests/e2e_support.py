"""Helpers for the UI end-to-end tests: a real `dagster dev` on 127.0.0.1 and its GraphQL API, the
real Streamlit dashboards, and the headless Chromium that drives both.

`dagster dev` starts a webserver, a daemon and a code server as child processes; they are started
in their own process group so teardown can SIGTERM all of them and wait until every one is gone
(the code servers linger a few seconds after the webserver exits).
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCATION_NAME = "cryptolake"
REPOSITORY_NAME = "__repository__"
STARTUP_TIMEOUT_S = 120
SHUTDOWN_TIMEOUT_S = 30
# Debian's Chromium (`apt-get install chromium`; .ci/run installs it), driven by Playwright.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class E2EError(AssertionError):
    """The webserver, a run or a backfill did not do what the test needs (with the evidence)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _dagster_executable() -> str:
    candidate = Path(sys.executable).with_name("dagster")
    return str(candidate) if candidate.exists() else (shutil.which("dagster") or "dagster")


@dataclass
class DagsterDev:
    """One `dagster dev` process group serving the project's workspace.yaml."""

    home: Path
    env: dict[str, str]
    workspace: Path = REPO_ROOT / "workspace.yaml"
    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "DagsterDev":
        self.home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO_ROOT / "dagster.yaml", self.home / "dagster.yaml")
        self.log_path = self.home / "dagster-dev.log"
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                _dagster_executable(),
                "dev",
                "-w",
                str(self.workspace),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
            ],
            cwd=self.workspace.parent,  # workspace.yaml says working_directory: . (the cwd)
            # The project's settings come only from self.env, never from the caller's shell.
            env={k: v for k, v in os.environ.items() if not k.startswith("CRYPTOLAKE_")}
            | self.env
            | {"DAGSTER_HOME": str(self.home)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: teardown signals every child
        )
        log.close()
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def log_tail(self, chars: int = 6000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]

    def _wait_until_ready(self) -> None:
        """Wait for /server_info, then for the code location to be loaded without error."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise E2EError(f"dagster dev exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/server_info", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        else:
            raise E2EError(f"dagster dev did not answer /server_info in {STARTUP_TIMEOUT_S}s:\n{self.log_tail()}")
        while time.monotonic() < deadline:
            entries = self.graphql(LOCATION_STATUS_QUERY)["workspaceOrError"]["locationEntries"]
            entry = next((e for e in entries if e["name"] == LOCATION_NAME), None)
            if entry and entry["loadStatus"] == "LOADED":
                location = entry["locationOrLoadError"]
                if location["__typename"] == "PythonError":
                    raise E2EError(
                        f"code location {LOCATION_NAME} failed to load:\n{location['message']}\n{location['stack']}"
                    )
                return
            time.sleep(0.5)
        raise E2EError(f"code location {LOCATION_NAME} did not load in {STARTUP_TIMEOUT_S}s:\n{self.log_tail()}")

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        response = httpx.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60)
        body = response.json()
        if response.status_code != 200 or body.get("errors"):
            raise E2EError(f"GraphQL error ({response.status_code}): {body.get('errors')}")
        return body["data"]

    def stop(self) -> None:
        """SIGTERM the whole process group and wait until no member is left (SIGKILL after a timeout)."""
        if self.process is None:
            return
        pgid = self.process.pid
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + SHUTDOWN_TIMEOUT_S
        while time.monotonic() < deadline and _group_alive(pgid):
            self.process.poll()
            time.sleep(0.2)
        if _group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)
            while _group_alive(pgid):
                self.process.poll()
                time.sleep(0.1)
        self.process.wait()


@dataclass
class Dashboard:
    """`cryptolake dashboard` (Streamlit) on a free 127.0.0.1 port over ``lake``, runs from ``home``."""

    lake: Path
    home: Path
    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Dashboard":
        self.log_path = self.lake.parent / f"dashboard-{self.port}.log"
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cryptolake_assets.cli",
                "dashboard",
                "--port",
                str(self.port),
                "--lake",
                str(self.lake),
            ],
            env={k: v for k, v in os.environ.items() if not k.startswith("CRYPTOLAKE_")}
            | {"DAGSTER_HOME": str(self.home)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise E2EError(f"cryptolake dashboard exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/_stcore/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        self.stop()
        raise E2EError(f"the dashboard did not answer /_stcore/health in {STARTUP_TIMEOUT_S}s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 6000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path and self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is None:
            return
        pgid = self.process.pid
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.process.wait()


def open_dashboard_page(page, url: str, plots: int, timeout_ms: int = 60_000) -> None:
    """Load a dashboard page and wait until its script has finished and ``plots`` Plotly charts are drawn."""
    page.goto(url)
    page.wait_for_function(
        "n => document.querySelectorAll('.js-plotly-plot').length >= n"
        " && document.querySelector('[data-testid=stApp][data-test-script-state=notRunning]') !== null",
        arg=plots,
        timeout=timeout_ms,
    )


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # Zombies still count as group members until reaped; our direct child is reaped by poll().
    return any(_is_live_member(pid, pgid) for pid in _pids())


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _is_live_member(pid: int, pgid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # Fields after the parenthesised command: state ppid pgrp ...
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[2]) == pgid and fields[0] != "Z"


LOCATION_STATUS_QUERY = """
query LocationStatus {
  workspaceOrError {
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on PythonError { message stack }
        }
      }
    }
    ... on PythonError { message stack }
  }
}
"""
