"""The distributed deployment on one machine, all real processes on 127.0.0.1: PostgreSQL (the
Dagster instance), redis-server (Celery broker, result backend, weight budget), moto's S3 server
(the lake) and Celery workers, each in its own working directory. Used by
tests/test_distributed_e2e.py and benchmarks/distributed_bench.py.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
CELERY_DIR = REPO_ROOT / "deploy" / "celery"
S3_KEY_ID, S3_SECRET, S3_REGION, BUCKET = "testing-key", "testing-secret", "us-east-1", "cryptolake"
VENV_BIN = Path(sys.executable).parent


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    """Poll ``predicate`` until it returns something truthy (returned), or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def stop_group(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    """Signal ``process``'s whole process group (it was started in a session of its own) and wait
    until no member is left."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def group_gone() -> bool:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return True
        return False

    try:
        wait_for(group_gone, timeout, f"process group {process.pid} to exit", interval=0.1)
    except TimeoutError:
        os.killpg(process.pid, signal.SIGKILL)
        wait_for(group_gone, 10, f"process group {process.pid} to die", interval=0.1)


class MotoS3Server:
    """moto's server mode: an S3-compatible endpoint with one bucket."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> "MotoS3Server":
        moto = shutil.which("moto_server") or str(VENV_BIN / "moto_server")
        self.process = subprocess.Popen(
            [moto, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

        def answers() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError("moto_server exited")
            try:
                httpx.get(self.endpoint, timeout=1)
                return True
            except httpx.TransportError:
                return False

        wait_for(answers, 60, "moto_server")
        import boto3

        boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=S3_KEY_ID,
            aws_secret_access_key=S3_SECRET,
            region_name=S3_REGION,
        ).create_bucket(Bucket=BUCKET)
        return self

    def env(self) -> dict[str, str]:
        """What a process needs to reach the bucket (delta-rs and boto3 read these)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": S3_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET,
            "AWS_REGION": S3_REGION,
            "AWS_DEFAULT_REGION": S3_REGION,
            "AWS_ALLOW_HTTP": "true",
            # moto has no DynamoDB lock: one writer per table partition (the pipeline's pools) keeps it safe.
            "AWS_S3_ALLOW_UNSAFE_RENAME": "true",
        }

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process)


def celery_config_copy(folder: Path, visibility_timeout: int, restore_interval: int) -> Path:
    """deploy/celery/celery.yaml with a shorter redelivery delay (a test cannot wait an hour)."""
    config = yaml.safe_load((CELERY_DIR / "celery.yaml").read_text())
    options = config["execution"]["config"]["config_source"]["broker_transport_options"]
    options["visibility_timeout"] = visibility_timeout
    options["unacked_restore_interval"] = restore_interval
    path = folder / "celery.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@dataclass
class CeleryWorker:
    """One ``dagster-celery worker start`` process (its own session, cwd and DAGSTER_HOME)."""

    name: str
    folder: Path
    process: subprocess.Popen
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tasks_received(self) -> int:
        return self.log_text().count("] received")

    def tasks_done(self) -> int:
        text = self.log_text()
        return text.count("] succeeded in") + text.count("] raised")


@dataclass
class DistributedStack:
    """The servers' URLs and the environment every process of the deployment shares."""

    root: Path
    env: dict[str, str]
    celery_config: Path
    workers: list[CeleryWorker] = field(default_factory=list)

    def start_worker(self, name: str, timeout: float = 120) -> CeleryWorker:
        """A worker with one process (``--concurrency=1``) named ``name``, ready when this returns."""
        folder = self.root / name
        home = folder / "dagster_home"
        home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(CELERY_DIR / "dagster.yaml", home / "dagster.yaml")
        log = folder / "worker.log"
        command = [
            str(VENV_BIN / "dagster-celery"),
            "worker",
            "start",
            "-A",
            "dagster_celery.app",
            "-y",
            str(self.celery_config),
            "-n",
            name,
            "--",
            "--concurrency=1",
            f"--logfile={log}",
        ]
        process = subprocess.Popen(
            command,
            cwd=folder,
            # dagster-celery starts `celery` from PATH: the virtualenv's, as an activated venv would.
            env={**self.env, "DAGSTER_HOME": str(home), "PATH": f"{VENV_BIN}{os.pathsep}{self.env.get('PATH', '')}"},
            stdout=(folder / "worker.out").open("w"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        worker = CeleryWorker(name, folder, process, log)

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"worker {name} exited:\n{(folder / 'worker.out').read_text()}\n{worker.log_text()}")
            return " ready." in worker.log_text()

        wait_for(ready, timeout, f"celery worker {name}")
        self.workers.append(worker)
        return worker

    def stop_workers(self) -> None:
        for worker in self.workers:
            stop_group(worker.process)
