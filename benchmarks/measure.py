"""Run a measured step in a fresh subprocess and read its wall time and peak RSS."""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class StepFailed(RuntimeError):
    pass


@dataclass
class ProcessOutcome:
    wall_seconds: float
    # ru_maxrss from wait4. Linux carries the parent's RSS at fork() into it, so it is an upper bound
    # only; steps report their own VmHWM instead.
    peak_rss_mb: float
    tree_peak_rss_mb: float  # the largest sampled sum of RSS over the child and its descendants
    stdout: str
    stderr: str
    returncode: int = 0
    timed_out: bool = False


def _tree_rss_kb(root: int) -> int:
    """Sum of VmRSS over ``root`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        pid = int(entry.name)
        children.setdefault(int(fields.get("PPid", "0").strip() or 0), []).append(pid)
        rss[pid] = int(fields["VmRSS"].split()[0]) if "VmRSS" in fields else 0
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def run_process(
    command: list[str],
    env: dict[str, str] | None = None,
    cwd: Path = REPO,
    sample_tree: bool = False,
    timeout: float | None = None,
    check: bool = True,
) -> ProcessOutcome:
    """Run ``command``; wall time from spawn to exit, peak RSS from wait4 (and optionally the tree)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, env={**os.environ, **(env or {})}, cwd=cwd, stdout=out, stderr=err, text=True
        )
        tree_peak = [0]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.5):
                tree_peak[0] = max(tree_peak[0], _tree_rss_kb(process.pid))

        sampler = threading.Thread(target=sample, daemon=True) if sample_tree else None
        if sampler:
            sampler.start()
        deadline = None if timeout is None else started + timeout
        timed_out = False
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if deadline and not timed_out and time.perf_counter() > deadline:
                timed_out = True
                process.kill()
            time.sleep(0.05)
        wall = time.perf_counter() - started
        done.set()
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if check and process.returncode != 0:
        raise StepFailed(f"{' '.join(command[:6])} exited {process.returncode}:\n{stderr[-6000:]}")
    return ProcessOutcome(
        wall, usage.ru_maxrss / 1024, tree_peak[0] / 1024, stdout, stderr, process.returncode, timed_out
    )


def run_step(name: str, params: dict, env: dict[str, str] | None = None) -> dict:
    """Run ``benchmarks.steps NAME`` in a fresh interpreter; its JSON result plus process wall time."""
    outcome = run_process([sys.executable, "-m", "benchmarks.steps", name, json.dumps(params)], env=env)
    result = json.loads(outcome.stdout.strip().splitlines()[-1])
    result["process_seconds"] = round(outcome.wall_seconds, 3)
    return result
