"""``cryptolake doctor``: what can keep the lake from making progress, and the safe repairs.

Each check is a function ``(DoctorContext) -> list[Finding]`` in ``DOCTOR_CHECKS``; with ``--fix``
a check repairs what is safe (``context.fix``) and says so in its findings. Other parts of the
lake add their own checks to ``DOCTOR_CHECKS`` (e.g. stale versions of the published lake).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dagster import DagsterInstance

from resources import run_health


@dataclass(frozen=True)
class DoctorContext:
    instance: DagsterInstance
    database: str  # the pipeline's DuckDB file
    fix: bool
    storage: str = "duckdb"  # CRYPTOLAKE_STORAGE: with "lake" there is no DuckDB file to check


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

    if context.storage == "lake":
        return [Finding("duckdb", False, "CRYPTOLAKE_STORAGE=lake: the pipeline uses no DuckDB file")]
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
            return [
                Finding(
                    "duckdb",
                    False,
                    f"{context.database} is held by {holder}, the process of live run {live_runs[int(match.group(1))]}",
                )
            ]
        return [Finding("duckdb", True, f"{context.database} is locked by {holder}: {str(exc).splitlines()[0]}")]
    except duckdb.Error as exc:
        return [Finding("duckdb", True, f"{context.database} does not open: {exc}")]
    return [Finding("duckdb", False, f"{context.database} opens (no other process holds its lock)")]


def check_lake(context: DoctorContext) -> list[Finding]:
    """Each published table of the lake against its DuckDB table: a run killed between its DuckDB
    commit and its lake publish leaves the lake behind (stale). With fix, such a table is
    republished from DuckDB in one Delta commit (readers see the old version or the new one)."""
    import duckdb

    from resources.duckdb_io import as_utc
    from resources.lake import PUBLISHED_LAYERS, DeltaLake, publish
    from resources.settings import default_lake_root

    if context.storage == "lake":
        # The lake is the working store: each write is its own Delta commit, nothing to republish.
        return [Finding("lake", False, "CRYPTOLAKE_STORAGE=lake: the lake is the working store (nothing to republish)")]
    if context.database == ":memory:" or context.database.startswith("md:") or not Path(context.database).exists():
        return []
    lake = DeltaLake.from_env(default_lake_root())
    try:
        connection = duckdb.connect(context.database, read_only=True)
    except duckdb.Error:
        return []  # the lock check reports why the file does not open
    findings = []
    try:
        tables = connection.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema IN "
            f"({', '.join(repr(layer) for layer in PUBLISHED_LAYERS)}) ORDER BY 1, 2"
        ).fetchall()
        for layer, name in tables:
            in_duckdb = connection.execute(f'SELECT count(*) FROM "{layer}"."{name}"').fetchall()[0][0]
            in_lake, version = _lake_rows(lake, layer, name)
            label = f"lake table {layer}/{name}"
            if in_lake == in_duckdb:
                findings.append(Finding("lake", False, f"{label}: version {version}, {in_lake} rows, as in DuckDB"))
                continue
            state = "missing" if in_lake is None else f"version {version} holds {in_lake} rows"
            line = f"{label}: {state}, DuckDB holds {in_duckdb} (a run stopped between its DuckDB commit and its lake publish)"
            if context.fix:
                frame = as_utc(connection.sql(f'SELECT * FROM "{layer}"."{name}"').pl())
                new_version = publish(
                    lake.uri(layer, name),
                    frame,
                    predicate=None,
                    storage_options=lake.options(),
                    retention_days=lake.retention_days,
                    vacuum_every_commits=0,
                )
                findings.append(Finding("lake", False, f"fixed: {line}; republished as version {new_version}"))
            else:
                findings.append(Finding("lake", True, line + "; `cryptolake doctor --fix` republishes it"))
    finally:
        connection.close()
    return findings


def _lake_rows(lake, layer: str, name: str) -> tuple[int | None, int | None]:
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        table = DeltaTable(lake.uri(layer, name), storage_options=lake.options())
    except TableNotFoundError:
        return None, None
    return table.to_pyarrow_dataset().count_rows(), table.version()


DoctorCheck = Callable[[DoctorContext], list[Finding]]
# Extension point: append checks here.
DOCTOR_CHECKS: list[DoctorCheck] = [check_runs, check_pool_slots, check_duckdb_lock, check_lake]


def run_doctor(context: DoctorContext) -> list[Finding]:
    findings = []
    for check in DOCTOR_CHECKS:
        findings += check(context)
    return findings
