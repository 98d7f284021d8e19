"""The distributed deployment end to end (issue 21), every server a real process on 127.0.0.1.

PostgreSQL (the Dagster instance), redis-server (Celery broker and result backend, and the shared
Binance weight budget), moto's S3 server (the lake) and two Celery workers, each in its own working
directory with its own DAGSTER_HOME and name. `cryptolake backfill` of 2 weeks × 6 symbols
(simulated source) runs through the Celery executor with CRYPTOLAKE_STORAGE=lake on
s3://cryptolake/lake, while one worker is SIGKILLed (its whole process group) in the middle of a
step; the same backfill runs single-machine with the default DuckDB storage. Every table must be
equal value for value, both workers must have run steps, and the killed step must have been run
again (Celery redelivers the unacknowledged task; Dagster's run waits for it and succeeds).
"""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
from dagster import DagsterEventType, DagsterInstance, RunsFilter
from distributed_stack import (
    CELERY_DIR,
    DistributedStack,
    MotoS3Server,
    celery_config_copy,
    stop_group,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

START, END = "2024-03-01", "2024-03-14"
SYMBOLS = "BTCUSDT,ETHUSDT,SOLUSDT,AVAXUSDT,ADAUSDT,DOTUSDT"  # contiguous in the universe
LAKE = "s3://cryptolake/lake"
# Redelivery of a dead worker's task: after this many seconds (deploy/celery/celery.yaml says 3600).
VISIBILITY_TIMEOUT = 30
# Columns that record when a row was written, not what it holds.
VOLATILE_COLUMNS = {"ingested_at", "quarantined_at", "time_until_update"}
CLI = str(Path(sys.executable).with_name("cryptolake"))


@pytest.fixture(scope="module")
def redis():
    from redis_server import started_redis_server

    yield from started_redis_server()


@pytest.fixture(scope="module")
def moto():
    server = MotoS3Server().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, postgres_server, redis, moto):
    root = tmp_path_factory.mktemp("distributed")
    env = {
        **os.environ,
        **moto.env(),
        "DAGSTER_POSTGRES_URL": postgres_server.new_database(),
        "CRYPTOLAKE_CELERY_BROKER": redis.url(0),
        "CRYPTOLAKE_CELERY_BACKEND": redis.url(1),
        "CRYPTOLAKE_WEIGHT_BUDGET_URL": redis.url(2),
        "CRYPTOLAKE_SOURCE": "simulated",
        "CRYPTOLAKE_START_DATE": START,
        # The download → write hand-over of bronze steps (bronze/staging.py): a folder every worker sees.
        "CRYPTOLAKE_STAGING": str(root / "staging"),
    }
    # Every process of the deployment (workers included: each builds the resources from its own
    # environment when it loads the code location) runs with the same settings.
    env.update(
        CRYPTOLAKE_EXECUTOR="celery", CRYPTOLAKE_STORAGE="lake", CRYPTOLAKE_LAKE=LAKE, CRYPTOLAKE_INSTANCE="postgres"
    )
    celery_config = celery_config_copy(root, visibility_timeout=VISIBILITY_TIMEOUT, restore_interval=1)
    env["CRYPTOLAKE_CELERY_CONFIG"] = str(celery_config)
    distributed = DistributedStack(root, env, celery_config)
    try:
        distributed.start_workers(["w1", "w2"])
        yield distributed
    finally:
        distributed.stop_workers()


def _backfill(env: dict[str, str], cwd: Path) -> subprocess.Popen:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [CLI, "backfill", "--start", START, "--end", END, "--symbols", SYMBOLS, "--interval", "1h", "--workers", "2"],
        env=env,
        cwd=cwd,
        stdout=(cwd / "backfill.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _finished(process: subprocess.Popen, log: Path, timeout: float) -> None:
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_group(process, signal.SIGKILL)
        raise AssertionError(f"backfill did not finish in {timeout:.0f} s:\n{log.read_text()[-6000:]}") from None
    assert code == 0, log.read_text()[-8000:]


def _comparable(frame: pl.DataFrame) -> pl.DataFrame:
    frame = frame.drop([c for c in frame.columns if c in VOLATILE_COLUMNS])
    frame = frame.select(sorted(frame.columns))
    return frame.sort(frame.columns, nulls_last=True)


def _duckdb_tables(database: str) -> dict[str, pl.DataFrame]:
    with duckdb.connect(database, read_only=True) as connection:
        names = connection.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables ORDER BY 1"
        ).fetchall()
        return {name: connection.sql(f"SELECT * FROM {name}").pl() for (name,) in names}


def _lake_table(name: str, storage_options: dict[str, str]) -> pl.DataFrame | None:
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    schema, table = name.split(".")
    try:
        return pl.from_arrow(DeltaTable(f"{LAKE}/{schema}/{table}", storage_options=storage_options).to_pyarrow_table())  # type: ignore[return-value]
    except TableNotFoundError:
        return None


def _celery_step_events(instance: DagsterInstance) -> list[tuple[str, str, str]]:
    """(run id, step key, worker name) of every "Executing steps ... in celery worker" engine event
    (the worker writes it once it has loaded the step's plan, before running it)."""
    found = []
    for record in instance.get_run_records(RunsFilter()):
        run_id = record.dagster_run.run_id
        for event in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
            dagster_event = event.dagster_event
            # "[CeleryExecutor] Executing steps <key> in celery worker", from the worker itself
            if dagster_event is None or "Executing steps" not in event.message:
                continue
            metadata = dagster_event.engine_event_data.metadata
            if "Celery worker" not in metadata:
                continue
            worker = metadata["Celery worker"].value
            found.append((run_id, dagster_event.step_key or "", str(worker).split("@")[0]))
    return found


def test_celery_backfill_on_the_lake_equals_the_single_machine_run(stack, tmp_path, monkeypatch):
    # The reference: one machine, the default DuckDB storage and SQLite instance, run alongside.
    single_env = {
        **stack.env,
        "DAGSTER_HOME": str(tmp_path / "single" / "home"),
        "CRYPTOLAKE_DUCKDB": str(tmp_path / "single" / "cryptolake.duckdb"),
        "CRYPTOLAKE_LAKE": str(tmp_path / "single" / "lake"),
    }
    for key in ("CRYPTOLAKE_WEIGHT_BUDGET_URL", "CRYPTOLAKE_STAGING", "DAGSTER_POSTGRES_URL", "CRYPTOLAKE_INSTANCE"):
        single_env.pop(key)
    single_env.pop("CRYPTOLAKE_EXECUTOR")
    single_env.pop("CRYPTOLAKE_STORAGE")
    single = _backfill(single_env, tmp_path / "single")

    # The distributed run: Celery executor, lake storage on S3, the PostgreSQL instance.
    home = tmp_path / "celery" / "home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_bytes((CELERY_DIR / "dagster.yaml").read_bytes())
    celery_env = {**stack.env, "DAGSTER_HOME": str(home)}
    distributed = _backfill(celery_env, tmp_path / "celery")
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", stack.env["DAGSTER_POSTGRES_URL"])
    instance = DagsterInstance.from_config(str(home))
    w1, w2 = stack.workers
    try:
        # Kill w2 in the middle of a step (its start recorded by Dagster, its end not yet logged by
        # Celery), once it has finished a few (of about 50 in all) and w1 at least one.
        def w2_mid_step() -> bool:
            assert distributed.poll() is None, (tmp_path / "celery" / "backfill.log").read_text()[-6000:]
            if w1.tasks_done() < 1 or w2.tasks_done() < 6 or w2.tasks_received() <= w2.tasks_done():
                return False
            started_on_w2 = sum(1 for event in _celery_step_events(instance) if event[2] == "w2")
            return started_on_w2 > w2.tasks_done() and w2.tasks_received() > w2.tasks_done()

        wait_for(w2_mid_step, 300, "worker w2 to be in the middle of a step", interval=0.1)
        os.killpg(w2.process.pid, signal.SIGKILL)
        stop_group(w2.process)
        received = re.findall(r"execute_plan\[([0-9a-f-]+)\] received", w2.log_text())
        succeeded = set(re.findall(r"execute_plan\[([0-9a-f-]+)\] succeeded", w2.log_text()))
        killed = [task for task in received if task not in succeeded]
        assert len(killed) == 1, w2.log_text()[-3000:]
        _finished(distributed, tmp_path / "celery" / "backfill.log", timeout=600)
        _finished(single, tmp_path / "single" / "backfill.log", timeout=600)
    finally:  # nothing outlives the test, whatever failed
        stop_group(distributed, signal.SIGKILL)
        stop_group(single, signal.SIGKILL)

    # The killed task was delivered again and ran to the end on the surviving worker.
    assert f"execute_plan[{killed[0]}] succeeded" in w1.log_text()

    # Every table: value for value.
    reference = _duckdb_tables(single_env["CRYPTOLAKE_DUCKDB"])
    assert {"bronze.klines", "silver.ohlcv", "gold.daily_features"} <= set(reference)
    assert reference["bronze.klines"].height == 14 * 24 * 6
    compared = 0
    s3_options = {key: value for key, value in stack.env.items() if key.startswith("AWS_")}
    for name, expected in reference.items():
        got = _lake_table(name, s3_options)
        if got is None:
            assert expected.height == 0, f"{name}: {expected.height} rows single-machine, no lake table"
            continue
        expected, got = _comparable(expected), _comparable(got)
        assert got.columns == expected.columns, name
        got = got.cast(dict(expected.schema))  # type: ignore[arg-type]
        assert got.equals(expected), f"{name} differs:\n{expected}\n{got}"
        compared += expected.height > 0
    assert compared >= 10

    # Both workers ran steps (Dagster's own record of which Celery worker ran each step), and the
    # step killed on w2 was run again on w1.
    with instance:
        events = _celery_step_events(instance)
        records = instance.get_run_records(RunsFilter())
        assert len(records) == 6 and all(r.dagster_run.is_success for r in records)
        for record in records:
            assert instance.all_logs(record.dagster_run.run_id, of_type=DagsterEventType.STEP_FAILURE) == []
    assert {worker for _, _, worker in events} == {"w1", "w2"}
    by_step: dict[tuple[str, str], list[str]] = {}
    for run_id, step, worker in events:
        by_step.setdefault((run_id, step), []).append(worker)
    rerun = [workers for workers in by_step.values() if len(workers) > 1]
    assert rerun == [["w2", "w1"]], by_step
