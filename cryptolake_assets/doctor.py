"""``cryptolake doctor``: what can keep the lake from making progress, and the safe repairs.

Each check is a function ``(DoctorContext) -> list[Finding]`` in ``DOCTOR_CHECKS``; with ``--fix``
a check repairs what is safe (``context.fix``) and says so in its findings. Other parts of the
lake add their own checks to ``DOCTOR_CHECKS`` (e.g. stale versions of the published lake).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

from resources import run_health


@dataclass(frozen=True)
class DoctorContext:
    instance: object  # DagsterInstance
    database: str  # the pipeline's DuckDB file
    fix: bool


@dataclass(frozen=True)
class Finding:
    check: str
    problem: bool  # False: informational (all is well, or already repaired)
    message: str


def check_runs(context: DoctorContext) -> list[Finding]:
    """Active runs and whether their process is alive; with fix, dead ones are failed and freed."""
    healths = run_health.active_run_health(context.instance)
    fixed: set[str] = set()
    freed: list[str] = []
    if context.fix:
        recovery = run_health.recover_dead_runs(context.instance, free_deleted_runs=True)
        fixed = {health.run_id for health in recovery.failed_runs}
        freed = recovery.freed_runs
    findings = []
    for health in healths:
        line = f"run {health.run_id} ({health.job_name}, {health.status}): {health.verdict}: {health.reason}"
        if health.run_id in fixed:
            findings.append(Finding("runs", False, f"fixed: {line}; marked FAILED"))
        else:
            findings.append(Finding("runs", health.verdict == run_health.DEAD, line))
    findings += [Finding("runs", False, f"fixed: pool slots of run {run_id} freed") for run_id in freed]
    if not healths:
        findings.append(Finding("runs", False, "no run in progress"))
    return findings


def check_pool_slots(context: DoctorContext) -> list[Finding]:
    """Claimed pool slots and pending claims, with the run and step holding each."""
    findings = []
    for claim in run_health.pool_claims(context.instance):
        run = context.instance.get_run_by_id(claim.run_id)
        status = run.status.value if run else "deleted run"
        orphan = run is None or run.status in run_health.TERMINAL_STATUSES
        state = "holds a slot" if claim.claimed else "waits for a slot"
        findings.append(
            Finding(
                "pool",
                orphan,
                f"pool {claim.pool}: run {claim.run_id} ({status}) step {claim.step_key} {state}"
                + (" although the run has ended" if orphan else ""),
            )
        )
    return findings or [Finding("pool", False, "no pool slot claimed")]


_PID = re.compile(r"PID (\d+)")


def check_duckdb_lock(context: DoctorContext) -> list[Finding]:
    """Whether another process holds the DuckDB file's lock (and which pid, as DuckDB reports it)."""
    import duckdb

    if context.database == ":memory:" or context.database.startswith("md:"):
        return []
    try:
        duckdb.connect(context.database, read_only=True).close()
    except duckdb.IOException as exc:
        match = _PID.search(str(exc))
        holder = f"pid {match.group(1)}" if match else "another process"
        live_runs = {
            health.pid: health.run_id
            for health in (run_health.active_run_health(context.instance) if context.instance else [])
            if health.verdict == run_health.ALIVE
        }
        if match and int(match.group(1)) in live_runs:  # a pipeline step at work: expected
            return [Finding("duckdb", False, f"{context.database} is held by {holder}, the process of live run {live_runs[int(match.group(1))]}")]
        return [Finding("duckdb", True, f"{context.database} is locked by {holder}: {str(exc).splitlines()[0]}")]
    except duckdb.Error as exc:
        return [Finding("duckdb", True, f"{context.database} does not open: {exc}")]
    return [Finding("duckdb", False, f"{context.database} opens (no other process holds its lock)")]


DoctorCheck = Callable[[DoctorContext], list[Finding]]
# Extension point: append checks here (a stale-lake-versions check belongs to the lake's module).
DOCTOR_CHECKS: list[DoctorCheck] = [check_runs, check_pool_slots, check_duckdb_lock]


def run_doctor(context: DoctorContext) -> list[Finding]:
    findings = []
    for check in DOCTOR_CHECKS:
        findings += check(context)
    return findings
