"""Dead-run detection and repair (resources/run_health.py) on a real SQLite and a real Postgres instance.

A run is judged by its process: a live one is never failed and its pool slots are never freed; a
gone one (or a pid now used by another process) is failed with the reason and its slots freed.
"""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import project_instance_home
from dagster import DagsterEventType, DagsterInstance, DagsterRun, DagsterRunStatus

from resources import run_health
from resources.dagster_event_log import PoolWaitTimeoutError

REPO_ROOT = Path(__file__).resolve().parents[1]
POOL = "duckdb"


@pytest.fixture
def instance(request, instance_kind, tmp_path, monkeypatch):
    """The project's instance on SQLite and on the session's PostgreSQL server (tests/conftest.py)."""
    home = project_instance_home(request, tmp_path / "home", monkeypatch, instance_kind)
    monkeypatch.setenv("CRYPTOLAKE_POOL_WAIT_TIMEOUT_SECONDS", "1.0")
    with DagsterInstance.from_config(str(home)) as inst:
        inst.event_log_storage.initialize_concurrency_limit_to_default(POOL)  # as a run's executor does
        yield inst


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def add_started_run(instance, tags: dict[str, str], step_key: str = "silver_ohlcv") -> str:
    run_id = str(uuid.uuid4())
    instance.add_run(
        DagsterRun(job_name="daily_symbol_assets", run_id=run_id, tags=tags, status=DagsterRunStatus.STARTED)
    )
    status = instance.event_log_storage.claim_concurrency_slot(POOL, run_id, step_key)
    assert status.is_claimed
    return run_id


def claimed_runs(instance) -> set[str]:
    return {slot.run_id for slot in instance.event_log_storage.get_concurrency_info(POOL).claimed_slots}


def test_live_run_is_never_failed_and_keeps_its_slot(instance):
    run_id = add_started_run(instance, run_health.process_tags())

    recovery = run_health.recover_dead_runs(instance)

    assert recovery.failed_runs == [] and recovery.freed_runs == []
    assert instance.get_run_by_id(run_id).status == DagsterRunStatus.STARTED
    assert claimed_runs(instance) == {run_id}
    assert [h.verdict for h in run_health.active_run_health(instance)] == [run_health.ALIVE]


def test_dead_pid_run_is_failed_with_reason_and_its_slot_freed(instance):
    pid = dead_pid()
    dead = add_started_run(instance, {**run_health.process_tags(), run_health.PID_TAG: str(pid)}, "bronze__klines")
    live = add_started_run(instance, run_health.process_tags(), "gold__daily_features")

    recovery = run_health.recover_dead_runs(instance)

    assert [h.run_id for h in recovery.failed_runs] == [dead]
    assert recovery.freed_runs == [dead]
    assert instance.get_run_by_id(dead).status == DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(live).status == DagsterRunStatus.STARTED
    assert claimed_runs(instance) == {live}
    failure = instance.all_logs(dead, of_type=DagsterEventType.RUN_FAILURE)[0]
    assert f"pid {pid}) is gone" in failure.message
    # Idempotent: a second pass finds nothing more to do.
    assert run_health.recover_dead_runs(instance).failed_runs == []


def test_reused_pid_is_recognised_by_its_start_time(instance):
    start = run_health.process_start_time(os.getpid())
    tags = {**run_health.process_tags(), run_health.PROCESS_START_TAG: f"{start - 3600:.2f}"}
    run_id = add_started_run(instance, tags)

    recovery = run_health.recover_dead_runs(instance)

    assert [h.run_id for h in recovery.failed_runs] == [run_id]
    assert "is now another process" in recovery.failed_runs[0].reason
    assert claimed_runs(instance) == set()


def test_run_of_another_host_is_left_alone(instance):
    run_id = add_started_run(
        instance, {**run_health.process_tags(), run_health.HOST_TAG: "elsewhere", run_health.PID_TAG: str(dead_pid())}
    )

    assert run_health.recover_dead_runs(instance).failed_runs == []
    assert claimed_runs(instance) == {run_id}
    assert run_health.active_run_health(instance)[0].verdict == run_health.UNKNOWN


def test_slots_of_an_ended_run_are_freed(instance):
    run_id = add_started_run(instance, run_health.process_tags())
    instance.report_run_failed(instance.get_run_by_id(run_id), "ended without freeing")

    assert run_health.recover_dead_runs(instance).freed_runs == [run_id]
    assert claimed_runs(instance) == set()


def test_waiting_step_names_the_holder_and_gives_up_after_the_timeout(instance):
    holder_a = add_started_run(instance, run_health.process_tags(), "silver_ohlcv_quality")
    holder_b = add_started_run(instance, run_health.process_tags(), "gold__daily_features")
    waiter = str(uuid.uuid4())
    instance.add_run(
        DagsterRun(
            job_name="daily_symbol_assets",
            run_id=waiter,
            tags=run_health.process_tags(),
            status=DagsterRunStatus.STARTED,
        )
    )

    with pytest.raises(PoolWaitTimeoutError) as raised:
        for _ in range(100):  # 0.2 s per blocked claim: the 1 s timeout hits after about 5
            instance.event_log_storage.claim_concurrency_slot(POOL, waiter, "bronze__klines")
    message = str(raised.value)
    assert f"run {holder_a} step silver_ohlcv_quality" in message
    assert f"run {holder_b} step gold__daily_features" in message
    assert "CRYPTOLAKE_POOL_WAIT_TIMEOUT_SECONDS = 1 s" in message
    waits = [e.message for e in instance.all_logs(waiter) if "waits for a slot of pool 'duckdb'" in (e.message or "")]
    assert len(waits) == 1 and f"run {holder_a} step silver_ohlcv_quality (since " in waits[0]
    # Both holders are alive: waiting never freed them.
    assert claimed_runs(instance) == {holder_a, holder_b}


def add_launched_run(instance, worker_pid: int) -> str:
    """A run as the daemon's launcher leaves it: no CryptoLake tags, RUN_START logged by its worker."""
    from dagster import DagsterEvent, DagsterEventType

    run_id = str(uuid.uuid4())
    instance.add_run(DagsterRun(job_name="daily_symbol_assets", run_id=run_id, status=DagsterRunStatus.STARTING))
    instance.report_dagster_event(
        DagsterEvent(event_type_value=DagsterEventType.RUN_START.value, job_name="daily_symbol_assets", pid=worker_pid),
        run_id=run_id,
    )
    assert instance.get_run_by_id(run_id).status == DagsterRunStatus.STARTED
    assert instance.event_log_storage.claim_concurrency_slot(POOL, run_id, "silver_ohlcv").is_claimed
    return run_id


def test_launched_run_is_judged_by_its_run_worker_pid(instance):
    live = add_launched_run(instance, os.getpid())
    pid = dead_pid()
    dead = add_launched_run(instance, pid)

    recovery = run_health.recover_dead_runs(instance)

    assert [h.run_id for h in recovery.failed_runs] == [dead]
    assert f"its process (run worker, pid {pid}) is gone" in recovery.failed_runs[0].reason
    assert instance.get_run_by_id(live).status == DagsterRunStatus.STARTED
    assert claimed_runs(instance) == {live}


def test_launched_run_whose_pid_started_after_the_run_is_dead(instance):
    """A worker pid now used by a process that started after the run's RUN_START: the pid was reused."""
    newer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        run_id = str(uuid.uuid4())
        from dagster import DagsterEvent, DagsterEventType, EventLogEntry

        instance.add_run(DagsterRun(job_name="daily_symbol_assets", run_id=run_id, status=DagsterRunStatus.STARTING))
        event = DagsterEvent(
            event_type_value=DagsterEventType.RUN_START.value, job_name="daily_symbol_assets", pid=newer.pid
        )
        # The run started an hour before the process now holding that pid.
        instance.handle_new_event(
            EventLogEntry(
                error_info=None,
                level=20,
                user_message="",
                run_id=run_id,
                timestamp=run_health.process_start_time(newer.pid) - 3600,
                dagster_event=event,
                job_name="daily_symbol_assets",
            )
        )
        [health] = run_health.active_run_health(instance)
        assert (health.verdict, health.reason) == (
            run_health.DEAD,
            f"its process (run worker, pid {newer.pid}) is gone; pid {newer.pid} is now another process",
        )
    finally:
        newer.kill()
        newer.wait()


def test_slots_of_an_unknown_run_are_freed_only_when_asked(instance):
    """A run id the instance does not know (a deleted run) may be another instance's: doctor --fix only."""
    instance.event_log_storage.claim_concurrency_slot(POOL, "deleted-run", "silver_ohlcv")

    assert run_health.recover_dead_runs(instance).freed_runs == []
    assert claimed_runs(instance) == {"deleted-run"}
    assert run_health.recover_dead_runs(instance, free_deleted_runs=True).freed_runs == ["deleted-run"]
    assert claimed_runs(instance) == set()


def test_private_dagster_imports_exist(instance):
    """Contract test for the private Dagster names resources/run_health.py relies on."""
    from resources.dagster_internals import JobFailureData, RunFailureReason, SqliteRunStorage

    assert RunFailureReason.UNEXPECTED_TERMINATION.value == "UNEXPECTED_TERMINATION"
    assert (
        JobFailureData(error=None, failure_reason=RunFailureReason.UNEXPECTED_TERMINATION).failure_reason
        is RunFailureReason.UNEXPECTED_TERMINATION
    )
    assert isinstance(instance.run_storage, SqliteRunStorage) or "127.0.0.1" in instance.run_storage.postgres_url
    assert run_health._is_local_instance(instance)


def test_a_postgres_instance_on_another_host_is_not_local():
    """Run workers writing to a remote server may be on other machines: their pids are not judged here."""
    from types import SimpleNamespace

    from dagster_postgres import PostgresRunStorage

    def on(url):
        storage = PostgresRunStorage.__new__(PostgresRunStorage)  # no connection: only the URL is read
        storage.postgres_url = url
        return SimpleNamespace(run_storage=storage)

    assert run_health._is_local_instance(on("postgresql+psycopg2://u@127.0.0.1:5432/d"))
    assert run_health._is_local_instance(on("postgresql+psycopg2://u@localhost/d"))
    assert run_health._is_local_instance(on("postgresql+psycopg2://u@/d?host=/var/run/postgresql"))
    assert not run_health._is_local_instance(on("postgresql+psycopg2://u:p@db.internal:5432/d"))
