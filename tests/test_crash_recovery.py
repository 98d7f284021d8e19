"""A `cryptolake backfill` killed with SIGKILL never wedges the lake (issue 22).

The same range is killed at several moments on the same Dagster instance and DuckDB file: while
bronze fetches (its download step, which holds no pool slot), once bronze has staged its download
and its write step starts, while silver writes DuckDB, while checks run. After every kill the DuckDB file
opens and holds no partial partition; the next backfill gets past the point where the last one
died (the killed runs' pool slots do not block it), and finishes within a bounded time with
exactly the rows of an uninterrupted run into a fresh instance and file.

With `dagster dev` running, the dead_run_sensor fails a killed run and frees its slots within
seconds, with no CLI command run.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus
from e2e_support import DagsterDev, _group_alive

from resources import run_health

REPO_ROOT = Path(__file__).resolve().parents[1]
RANGE = ["--start", "2024-03-01", "--end", "2024-03-03", "--symbols", "BTCUSDT,ETHUSDT"]
BACKFILL_TIMEOUT_S = 120
KILL_WAIT_TIMEOUT_S = 90
# Columns that record when a row was written, not what it says.
VOLATILE_COLUMNS = {"ingested_at", "quarantined_at", "time_until_update"}
# (step, event) after which the backfill is killed: while fetching, between bronze's download and
# its write (the download staged as Parquet), while writing DuckDB, while checks run.
KILL_MOMENTS = [
    ("bronze__klines.download_klines", DagsterEventType.STEP_START),
    ("bronze__klines.write_klines", DagsterEventType.STEP_START),
    ("silver_ohlcv", DagsterEventType.STEP_OUTPUT),
    ("silver_ohlcv_quality", DagsterEventType.STEP_START),
]


def cli_env(home: Path, database: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRYPTOLAKE_", "DAGSTER_"))}
    return env | {
        "DAGSTER_HOME": str(home),
        "CRYPTOLAKE_SOURCE": "simulated",
        "CRYPTOLAKE_DUCKDB": str(database),
        "CRYPTOLAKE_INTERVAL": "1h",
    }


def cryptolake(env: dict[str, str], *args: str, log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cryptolake_assets.cli", *args],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def finish(process: subprocess.Popen, log: Path, timeout: float = BACKFILL_TIMEOUT_S) -> None:
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)
        pytest.fail(f"backfill did not finish in {timeout} s (wedged?):\n{log.read_text()[-3000:]}")
    assert code == 0, log.read_text()[-3000:]


@contextmanager
def open_instance(home: Path):
    """The instance in ``home`` (its event log storage finds its files through DAGSTER_HOME)."""
    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with DagsterInstance.from_config(str(home)) as instance:
            yield instance
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the backfill's whole process group and wait until none of it is alive: its worker
    processes (``--workers``) are grandchildren, and a killed one holds its DuckDB lock until the
    kernel has torn it down."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 60
    while _group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def kill_at(process: subprocess.Popen, home: Path, step_key: str, event_type: DagsterEventType, log: Path) -> str:
    """SIGKILL the backfill as soon as its daily_symbol_assets run logs ``event_type`` for ``step_key``."""
    deadline = time.monotonic() + KILL_WAIT_TIMEOUT_S
    with open_instance(home) as instance:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(
                    f"backfill exited ({process.returncode}) before {step_key} {event_type.value}:\n{log.read_text()[-3000:]}"
                )
            runs = [
                r
                for r in instance.get_runs(limit=3)
                if r.job_name == "daily_symbol_assets" and r.status == DagsterRunStatus.STARTED
            ]
            for run in runs:
                if any(e.step_key == step_key for e in instance.all_logs(run.run_id, of_type=event_type)):
                    kill_group(process)
                    return run.run_id
            time.sleep(0.02)
    kill_group(process)
    pytest.fail(
        f"no {step_key} {event_type.value} within {KILL_WAIT_TIMEOUT_S} s (waiting on the pool?):\n{log.read_text()[-3000:]}"
    )


def table_contents(database: Path) -> dict[str, list[tuple]]:
    """Every table's rows (sorted, without write-time columns)."""
    connection = duckdb.connect(str(database), read_only=True)
    try:
        contents = {}
        for schema, table in connection.execute(
            "SELECT table_schema, table_name FROM information_schema.tables ORDER BY 1, 2"
        ).fetchall():
            columns = [r[0] for r in connection.execute(f'DESCRIBE "{schema}"."{table}"').fetchall()]
            kept = ", ".join(f'"{c}"' for c in columns if c not in VOLATILE_COLUMNS)
            rows = connection.execute(f'SELECT {kept} FROM "{schema}"."{table}"').fetchall()
            contents[f"{schema}.{table}"] = sorted(rows, key=repr)
            contents[f"{schema}.{table}:columns"] = [tuple(c for c in columns if c not in VOLATILE_COLUMNS)]
        return contents
    finally:
        connection.close()


def partitions(contents: dict[str, list[tuple]], table: str) -> dict[tuple, list[tuple]]:
    """Rows of a date × symbol table by (date, symbol) partition."""
    columns = contents[f"{table}:columns"][0]
    date, symbol = columns.index("date"), columns.index("symbol")
    grouped: dict[tuple, list[tuple]] = {}
    for row in contents[table]:
        grouped.setdefault((row[date], row[symbol]), []).append(row)
    return grouped


def assert_no_partial_partition(database: Path, reference: dict[str, list[tuple]]) -> None:
    """Each (date, symbol) partition present is exactly the uninterrupted run's partition."""
    if not database.exists():  # killed before the first write
        return
    contents = table_contents(database)  # the file opens after the kill
    for table in ("bronze.klines", "silver.ohlcv", "gold.daily_features"):
        if table not in contents:
            continue
        expected = partitions(reference, table)
        for key, rows in partitions(contents, table).items():
            assert rows == expected[key], f"{table} partition {key}: {len(rows)} rows, expected {len(expected[key])}"


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, list[tuple]]:
    """The tables of one uninterrupted backfill of RANGE into a fresh instance and file."""
    root = tmp_path_factory.mktemp("reference")
    log = root / "backfill.log"
    finish(cryptolake(cli_env(root / "home", root / "lake.duckdb"), "backfill", *RANGE, log=log), log)
    contents = table_contents(root / "lake.duckdb")
    assert len(contents["silver.ohlcv"]) == 3 * 2 * 24  # 3 days × 2 symbols × 24 hourly bars
    return contents


@pytest.mark.e2e
@pytest.mark.slow
def test_killed_backfills_leave_no_partial_partition_and_the_rerun_finishes(tmp_path, reference):
    home, database = tmp_path / "home", tmp_path / "lake.duckdb"
    env = cli_env(home, database)
    log = tmp_path / "backfill.log"
    killed = []
    for index, (step_key, event_type) in enumerate(KILL_MOMENTS):
        # Each backfill starts on the state the previous kill left (its runs STARTED, its slots
        # claimed): the second one must get past the first's dead runs to reach its own kill.
        killed.append(kill_at(cryptolake(env, "backfill", *RANGE, log=log), home, step_key, event_type, log))
        assert_no_partial_partition(database, reference)
        if index >= 1:
            # The next backfill finishes with exactly the rows of an uninterrupted run; the kill
            # after it interrupts a re-materialization of a complete lake (old rows must stay whole).
            finish(cryptolake(env, "backfill", *RANGE, log=log), log)
            assert table_contents(database) == reference
    with open_instance(home) as instance:
        for run_id in killed:
            run = instance.get_run_by_id(run_id)
            assert run.status == DagsterRunStatus.FAILURE
            failure = instance.all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE)[0]
            assert "is gone" in failure.message and run.tags["cryptolake/pid"] in failure.message
        assert instance.event_log_storage.get_concurrency_info("duckdb").claimed_slots == []
    doctor = subprocess.run(
        [sys.executable, "-m", "cryptolake_assets.cli", "doctor"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "ok  [runs] no run in progress" in doctor.stdout
    assert "ok  [pool] no pool slot claimed" in doctor.stdout


@pytest.mark.e2e
@pytest.mark.slow
def test_doctor_lists_a_killed_run_and_fix_repairs_it(tmp_path):
    home, database = tmp_path / "home", tmp_path / "lake.duckdb"
    env = cli_env(home, database)
    log = tmp_path / "backfill.log"
    run_id = kill_at(
        cryptolake(env, "backfill", *RANGE, log=log), home, "silver_ohlcv", DagsterEventType.STEP_START, log
    )

    def doctor(*args):
        return subprocess.run(
            [sys.executable, "-m", "cryptolake_assets.cli", "doctor", *args],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    report = doctor()
    assert report.returncode == 1, report.stdout + report.stderr
    assert (
        f"PROBLEM  [runs] run {run_id} (daily_symbol_assets, STARTED): dead: its process (cryptolake CLI, pid"
        in report.stdout
    )
    assert f"pool duckdb: run {run_id} (STARTED) step silver_ohlcv holds a slot" in report.stdout
    assert f"ok  [duckdb] {database} opens" in report.stdout

    fixed = doctor("--fix")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert (
        f"ok  [runs] fixed: run {run_id} (daily_symbol_assets, STARTED): dead: its process (cryptolake CLI, pid"
        in fixed.stdout
    )
    assert f"ok  [runs] fixed: pool slots of run {run_id} freed" in fixed.stdout
    assert "PROBLEM" not in fixed.stdout
    assert "ok  [pool] no pool slot claimed" in fixed.stdout
    assert doctor().returncode == 0


def test_doctor_names_the_process_holding_the_duckdb_lock(tmp_path):
    database = tmp_path / "lake.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys, time; c = duckdb.connect({str(database)!r}); print('ready', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        from cryptolake_assets.doctor import DoctorContext, check_duckdb_lock

        [finding] = check_duckdb_lock(DoctorContext(None, str(database), False))
        assert finding.problem
        assert f"is locked by pid {holder.pid}" in finding.message

        # The same lock held by the process of a live run is a step at work, not a problem.
        cli_env(tmp_path / "home", database)
        with open_instance(tmp_path / "home") as instance:
            from dagster import DagsterRun

            tags = {
                run_health.HOST_TAG: run_health.host_name(),
                run_health.PID_TAG: str(holder.pid),
                run_health.PROCESS_START_TAG: f"{run_health.process_start_time(holder.pid):.2f}",
            }
            instance.add_run(
                DagsterRun(
                    job_name="daily_symbol_assets", run_id="writing-run", tags=tags, status=DagsterRunStatus.STARTED
                )
            )
            [finding] = check_duckdb_lock(DoctorContext(instance, str(database), False))
            assert not finding.problem
            assert finding.message == f"{database} is held by pid {holder.pid}, the process of live run writing-run"
    finally:
        holder.kill()
        holder.wait()


LAUNCH_RUN_MUTATION = """
mutation LaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message stack }
    ... on Error { message }
  }
}
"""


def wait_until_failed_and_freed(instance, run_id: str, since: float, dev) -> float:
    """Seconds from ``since`` until the run is FAILED and holds no slot or pending claim."""
    while time.monotonic() - since < 30:
        holders = {claim.run_id for claim in run_health.pool_claims(instance)}
        if instance.get_run_by_id(run_id).status == DagsterRunStatus.FAILURE and run_id not in holders:
            return time.monotonic() - since
        time.sleep(0.25)
    pytest.fail(
        f"run {run_id} is {instance.get_run_by_id(run_id).status} 30 s after its process was killed:\n{dev.log_tail()}"
    )


@pytest.mark.e2e
@pytest.mark.slow
def test_daemon_frees_killed_runs_slots_within_seconds(tmp_path):
    """A killed CLI run and a killed run worker launched by the daemon: both failed and freed by the
    dead_run_sensor, with no CLI command run."""
    home, database = tmp_path / "home", tmp_path / "lake.duckdb"
    env = cli_env(home, database)
    dev = DagsterDev(home=home, env={k: v for k, v in env.items() if k.startswith("CRYPTOLAKE_")}).start()
    try:
        log = tmp_path / "backfill.log"
        run_id = kill_at(
            cryptolake(env, "backfill", *RANGE, log=log), home, "silver_ohlcv", DagsterEventType.STEP_START, log
        )
        killed_at = time.monotonic()
        with open_instance(home) as instance:
            assert run_id in {claim.run_id for claim in run_health.pool_claims(instance)}  # the kill left its slot
            assert wait_until_failed_and_freed(instance, run_id, killed_at, dev) < 20

            launched = dev.graphql(
                LAUNCH_RUN_MUTATION,
                {
                    "executionParams": {
                        "selector": {
                            "repositoryLocationName": "cryptolake",
                            "repositoryName": "__repository__",
                            "jobName": "daily_symbol_assets",
                        },
                        "runConfigData": {},
                        "executionMetadata": {
                            "tags": [
                                {"key": "dagster/asset_partition_range_start", "value": "2024-03-01|BTCUSDT"},
                                {"key": "dagster/asset_partition_range_end", "value": "2024-03-03|ETHUSDT"},
                            ]
                        },
                    }
                },
            )["launchRun"]
            assert launched["__typename"] == "LaunchRunSuccess", launched
            worker_run = launched["run"]["runId"]
            deadline = time.monotonic() + KILL_WAIT_TIMEOUT_S
            while not any(
                e.step_key == "silver_ohlcv" for e in instance.all_logs(worker_run, of_type=DagsterEventType.STEP_START)
            ):
                assert time.monotonic() < deadline, f"launched run did not reach silver_ohlcv:\n{dev.log_tail()}"
                time.sleep(0.05)
            [start] = instance.all_logs(worker_run, of_type=DagsterEventType.RUN_START)
            worker_pid = start.dagster_event.pid
            assert worker_pid not in (None, os.getpid())
            os.kill(worker_pid, signal.SIGKILL)
            killed_at = time.monotonic()
            assert wait_until_failed_and_freed(instance, worker_run, killed_at, dev) < 20
            # Failed by the dead_run_sensor, or by the code server that launched the worker (it
            # notices its child's exit); either way the log says the process died.
            messages = " ".join(e.message for e in instance.all_logs(worker_run))
            assert (
                f"its process (run worker, pid {worker_pid}) is gone" in messages
                or f"Run execution process for {worker_run} was terminated by signal 9" in messages
            ), messages[-2000:]
    finally:
        dev.stop()


@pytest.mark.slow  # a CLI backfill in a subprocess that waits out its pool timeout (~20 s)
def test_backfill_waiting_on_a_live_holder_says_who_and_gives_up(tmp_path):
    """Both duckdb slots held by a live run: the backfill names it, never frees it, fails after the timeout."""
    home, database = tmp_path / "home", tmp_path / "lake.duckdb"
    env = cli_env(home, database) | {"CRYPTOLAKE_POOL_WAIT_TIMEOUT_SECONDS": "3"}
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        with open_instance(home) as instance:
            from dagster import DagsterRun

            tags = {
                run_health.HOST_TAG: run_health.host_name(),
                run_health.PID_TAG: str(holder.pid),
                run_health.PROCESS_START_TAG: f"{run_health.process_start_time(holder.pid):.2f}",
            }
            holder_run = "live-holder-run"
            instance.add_run(
                DagsterRun(
                    job_name="daily_symbol_assets", run_id=holder_run, tags=tags, status=DagsterRunStatus.STARTED
                )
            )
            instance.event_log_storage.initialize_concurrency_limit_to_default("duckdb")
            for step in ("silver_ohlcv", "gold__daily_features"):
                assert instance.event_log_storage.claim_concurrency_slot("duckdb", holder_run, step).is_claimed

            result = subprocess.run(
                [sys.executable, "-m", "cryptolake_assets.cli", "backfill", *RANGE],
                cwd=REPO_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=BACKFILL_TIMEOUT_S,
            )
            output = result.stdout + result.stderr
            assert result.returncode != 0, output
            assert "waits for a slot of pool 'duckdb'" in output
            assert f"held by: run {holder_run} step silver_ohlcv (since " in output
            assert "gave up (CRYPTOLAKE_POOL_WAIT_TIMEOUT_SECONDS = 3 s)" in output
            # The CLI's one-line error names the cause, not just the run.
            assert (
                "failed:\n  resources.dagster_event_log.PoolWaitTimeoutError: step gold__dim_symbol waited"
                in result.stderr
            )
            assert instance.get_run_by_id(holder_run).status == DagsterRunStatus.STARTED
            held = {
                (s.run_id, s.step_key) for s in instance.event_log_storage.get_concurrency_info("duckdb").claimed_slots
            }
            assert held == {(holder_run, "silver_ohlcv"), (holder_run, "gold__daily_features")}
    finally:
        holder.kill()
        holder.wait()
