"""Runs whose process is gone: find them, fail them, free their pool slots.

A run killed with SIGKILL (a laptop closed, an OOM kill, a CI job cancelled) stays STARTED in the
instance for ever, and the ``duckdb`` pool slots its steps held stay claimed: every later run then
waits on the pool. Dagster's run monitoring cannot see it here: the DefaultRunLauncher has no
worker health check (``supports_check_run_worker_health`` is False) and runs started by
``execute_in_process`` (the ``cryptolake`` CLI) have no launcher at all.

Every run is judged by the process that runs it, never by a timeout, so a slow live run is never
touched:

* CLI runs carry ``cryptolake/host``, ``cryptolake/pid`` and ``cryptolake/process_start`` tags
  (``process_tags``); the run is dead when that pid on this host is gone, or is now another
  process (its start time differs: PID reuse cannot fool the check).
* Other runs (launched by the daemon or the UI) are judged by the pid their run worker recorded
  on its ``RUN_START`` event: dead when that process is gone or started after the run did. This
  only holds when the instance is local (SQLite storage on this machine, or a PostgreSQL server
  reached on this machine's loopback or socket, as deploy/postgres/dagster.yaml on one machine);
  elsewhere, and for runs of other hosts, the verdict is "unknown" and nothing is touched.

``recover_dead_runs`` marks dead runs FAILED with the reason (``report_run_failed``) and frees
their pool slots and pending claims (``free_concurrency_slots_for_run``), plus the slots still
held by runs that already ended. The CLI calls it before each run, the ``dead_run_sensor`` every
few seconds under the daemon, and ``cryptolake doctor --fix`` on demand.
"""

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

# Private: JobFailureData(failure_reason=UNEXPECTED_TERMINATION) is how Dagster's own monitoring
# tells the run-retry daemon that the process died (not a step), so a daemon-run retry policy
# applies as for any crashed run; report_run_failed takes no public reason. Contract test:
# tests/test_run_health.py::test_private_dagster_imports_exist.
from resources.dagster_internals import JobFailureData, RunFailureReason

HOST_TAG = "cryptolake/host"
PID_TAG = "cryptolake/pid"
PROCESS_START_TAG = "cryptolake/process_start"

# Statuses in which a run has (or should have) a live process.
ACTIVE_STATUSES = [
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]
TERMINAL_STATUSES = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
# A process that started up to this long after the run's RUN_START event is still its run worker
# (clock-tick rounding of /proc start times); later than that, the pid was reused.
START_TIME_SLACK_SECONDS = 2.0

ALIVE, DEAD, UNKNOWN = "alive", "dead", "unknown"


def host_name() -> str:
    return socket.gethostname()


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        return None
    return None


def process_start_time(pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds), or None if there is no such live process.

    Zombies (killed, not yet reaped) count as gone. Without /proc (not Linux) a live pid gives
    ``nan``: alive, start unknown.
    """
    if pid <= 0:
        return None
    stat_path = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():
        try:
            fields = stat_path.read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        if fields[0] in ("Z", "X"):
            return None
        boot = _boot_time()
        ticks = int(fields[19])  # field 22 of /proc/<pid>/stat: start time in clock ticks after boot
        return (boot or 0.0) + ticks / os.sysconf("SC_CLK_TCK")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return float("nan")


def process_tags() -> dict[str, str]:
    """Tags that identify this process for a run it executes in-process (host, pid, start time)."""
    pid = os.getpid()
    start = process_start_time(pid)
    return {
        HOST_TAG: host_name(),
        PID_TAG: str(pid),
        PROCESS_START_TAG: "" if start is None or start != start else f"{start:.2f}",
    }


@dataclass(frozen=True)
class RunHealth:
    run_id: str
    job_name: str
    status: str
    verdict: str  # ALIVE, DEAD or UNKNOWN
    reason: str
    pid: int | None = None  # the process the verdict is about


LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1", ""}


def _is_local_instance(instance: DagsterInstance) -> bool:
    """Whether every run worker of this instance runs on this machine (so its pid can be judged here)."""
    # Private: no public name for the default SQLite run storage, whose files (and so whose run
    # workers) are on this machine. Contract test as above.
    from dagster_postgres import PostgresRunStorage
    from sqlalchemy.engine import make_url

    from resources.dagster_internals import SqliteRunStorage

    storage = instance.run_storage
    if isinstance(storage, SqliteRunStorage):
        return True
    if isinstance(storage, PostgresRunStorage):
        # A server on this machine's loopback (or Unix socket) is reachable from this machine only.
        url = make_url(storage.postgres_url)
        host = url.host or str(url.query.get("host") or "")
        return host in LOOPBACK_HOSTS or host.startswith("/")
    return False


def _judge_pid(pid: int, started_at: float | None, recorded_start: float | None, what: str) -> tuple[str, str]:
    start = process_start_time(pid)
    if start is None:
        return DEAD, f"its process ({what}, pid {pid}) is gone"
    if start != start:  # no start time on this platform: the pid exists
        return ALIVE, f"{what} pid {pid} is running"
    if recorded_start is not None and abs(start - recorded_start) > START_TIME_SLACK_SECONDS:
        return DEAD, f"its process ({what}, pid {pid}) is gone; pid {pid} is now another process"
    if started_at is not None and start > started_at + START_TIME_SLACK_SECONDS:
        return DEAD, f"its process ({what}, pid {pid}) is gone; pid {pid} is now another process"
    return ALIVE, f"{what} pid {pid} is running"


def judge_run(instance: DagsterInstance, run) -> RunHealth:
    """Whether an active run's process is alive, dead or cannot be told from here."""
    tags = run.tags
    status = run.status.value
    if PID_TAG in tags:
        if tags.get(HOST_TAG) != host_name():
            return RunHealth(run.run_id, run.job_name, status, UNKNOWN, f"runs on host {tags.get(HOST_TAG)!r}")
        recorded = tags.get(PROCESS_START_TAG)
        pid = int(tags[PID_TAG])
        verdict, reason = _judge_pid(pid, None, float(recorded) if recorded else None, "cryptolake CLI")
        return RunHealth(run.run_id, run.job_name, status, verdict, reason, pid)
    if not _is_local_instance(instance):
        return RunHealth(run.run_id, run.job_name, status, UNKNOWN, "instance storage is not local")
    starts = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.RUN_START, limit=1).records
    if not starts:
        # Not started yet: Dagster's run monitoring fails it after its start timeout.
        return RunHealth(run.run_id, run.job_name, status, UNKNOWN, "no run worker has started yet")
    entry = starts[0].event_log_entry
    worker_pid = entry.dagster_event.pid if entry.dagster_event else None
    if not worker_pid:
        return RunHealth(run.run_id, run.job_name, status, UNKNOWN, "its run worker recorded no pid")
    verdict, reason = _judge_pid(int(worker_pid), entry.timestamp, None, "run worker")
    return RunHealth(run.run_id, run.job_name, status, verdict, reason, int(worker_pid))


def active_run_health(instance: DagsterInstance) -> list[RunHealth]:
    runs = instance.get_runs(filters=RunsFilter(statuses=ACTIVE_STATUSES))
    return [judge_run(instance, run) for run in runs]


@dataclass(frozen=True)
class SlotClaim:
    pool: str
    run_id: str
    step_key: str
    claimed: bool  # False: the step is waiting (pending) for a slot


def pool_claims(instance: DagsterInstance) -> list[SlotClaim]:
    """Every claimed slot and pending claim of every pool."""
    storage = instance.event_log_storage
    claims = []
    for pool in sorted(storage.get_concurrency_keys()):
        info = storage.get_concurrency_info(pool)
        claims += [SlotClaim(pool, slot.run_id, slot.step_key, True) for slot in info.claimed_slots]
        claims += [
            SlotClaim(pool, step.run_id, step.step_key, False)
            for step in info.pending_steps
            if step.assigned_timestamp is None
        ]
    return claims


@dataclass
class Recovery:
    failed_runs: list[RunHealth]
    freed_runs: list[str]  # runs whose slots and pending claims were freed


def recover_dead_runs(
    instance: DagsterInstance, echo: Callable[[str], None] | None = None, free_deleted_runs: bool = False
) -> Recovery:
    """Fail every active run whose process is gone and free the pool slots of dead and ended runs.

    Runs that are alive, or whose state cannot be judged from here, are left alone. Slots claimed
    under a run id the instance does not know (a deleted run) are freed only with
    ``free_deleted_runs`` (``cryptolake doctor --fix``).
    """
    failed = []
    to_free: set[str] = set()
    for health in active_run_health(instance):
        if health.verdict != DEAD:
            continue
        run = instance.get_run_by_id(health.run_id)
        if run is None or run.status.value != health.status:
            continue  # changed meanwhile (it finished, or another process repaired it)
        message = f"Marked failed by CryptoLake: {health.reason} (the run was killed or crashed)."
        instance.report_run_failed(
            run, message, JobFailureData(error=None, failure_reason=RunFailureReason.UNEXPECTED_TERMINATION)
        )
        failed.append(health)
        to_free.add(health.run_id)
        if echo:
            echo(f"run {health.run_id} ({health.job_name}, {health.status}): {health.reason}; marked FAILED")
    claim_runs = {claim.run_id for claim in pool_claims(instance)}
    for run_id in claim_runs - to_free:
        run = instance.get_run_by_id(run_id)
        if (run is None and free_deleted_runs) or (run is not None and run.status in TERMINAL_STATUSES):
            to_free.add(run_id)
    freed = []
    for run_id in sorted(to_free & (claim_runs | {h.run_id for h in failed})):
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        freed.append(run_id)
        if echo and run_id in claim_runs:
            echo(f"freed the pool slots of run {run_id}")
    return Recovery(failed, freed)


def describe_pool_holders(instance: DagsterInstance, pool: str) -> str:
    """Who holds the slots of ``pool``: ``run <id> step <key> (since <time>)`` for each claimed slot."""
    info = instance.event_log_storage.get_concurrency_info(pool)
    parts = []
    for slot in info.claimed_slots:
        since = _step_start_time(instance, slot.run_id, slot.step_key)
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(since)) if since else "unknown time"
        parts.append(f"run {slot.run_id} step {slot.step_key} (since {when})")
    return "; ".join(parts) or "no claimed slot (waiting for its turn)"


def _step_start_time(instance: DagsterInstance, run_id: str, step_key: str) -> float | None:
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_START).records
    for record in records:
        if record.event_log_entry.step_key == step_key:
            return record.event_log_entry.timestamp
    run_record = instance.get_run_record_by_id(run_id)
    return run_record.start_time if run_record else None
