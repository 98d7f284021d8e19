"""Run-log retention: old runs lose their step and log events and compute logs, never their asset history."""

import datetime as dt
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckSpec,
    AssetKey,
    BackfillPolicy,
    DagsterEventType,
    DagsterInstance,
    DailyPartitionsDefinition,
    SkipReason,
    asset,
    build_sensor_context,
    materialize,
    multi_asset_check,
)

from cryptolake_assets.cli import main
from cryptolake_assets.definitions import defs
from cryptolake_assets.sensors.housekeeping import RUN_LOG_RETENTION_SENSOR_NAME, run_log_retention_sensor
from resources.dagster_event_log import BatchedSqliteEventLogStorage
from resources.dagster_internals import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from resources.run_log_retention import (
    FINISHED_STATUSES,
    KEPT_EVENT_TYPES,
    RUN_LOGS_PURGED_TAG,
    purge_all,
    purge_run_logs,
    run_log_retention_days,
)

PROJECT_CONFIG = Path(__file__).resolve().parents[1] / "dagster.yaml"
DAYS = DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-11")
KEY = AssetKey(["demo", "bars"])
CHECK = AssetCheckKey(KEY, "even_days_only")


@asset(key=KEY, partitions_def=DAYS, backfill_policy=BackfillPolicy.single_run())
def bars(context) -> None:
    """Writes nothing; logs one line and prints one (a compute-log file) per run."""
    context.log.info(f"bars for {len(context.partition_keys)} days")
    print("bars stdout line")
    context.add_output_metadata({"days": len(context.partition_keys)})


@multi_asset_check(specs=[AssetCheckSpec("even_days_only", asset=KEY, partitions_def=DAYS)], can_subset=True)
def even_days_only(context):
    """Passes on even days of the month."""
    for key in context.partition_keys:
        yield AssetCheckEvaluation(
            asset_key=KEY, check_name="even_days_only", passed=int(key[-2:]) % 2 == 0, partition=key
        )


# What a run of these two assets writes (counted by hand from Dagster's run of one step per node),
# and what the purge must leave of it, in order. Log lines have no event type (None).
STEP_AND_LOG_EVENTS = Counter(
    {
        "ENGINE_EVENT": 2,  # executing / finished steps in process
        "RESOURCE_INIT_STARTED": 1,
        "RESOURCE_INIT_SUCCESS": 1,
        "LOGS_CAPTURED": 1,
        "STEP_START": 2,
        "STEP_OUTPUT": 1,
        "STEP_SUCCESS": 2,
        None: 2,  # context.log.info in bars; the "did not yield expected outputs" line of the check
    }
)
OLD_RUN_KEPT = [
    "ASSET_MATERIALIZATION_PLANNED",  # the project's storage: one per range run (resources/dagster_event_log.py)
    "ASSET_CHECK_EVALUATION_PLANNED",
    "PIPELINE_START",  # DagsterEventType.RUN_START's stored value
    "ASSET_MATERIALIZATION",
    "ASSET_MATERIALIZATION",
    "ASSET_MATERIALIZATION",
    "ASSET_CHECK_EVALUATION",
    "ASSET_CHECK_EVALUATION",
    "ASSET_CHECK_EVALUATION",
    "PIPELINE_SUCCESS",
]


def _instance(home: Path, monkeypatch, storage: str = "project", days: int | None = None) -> DagsterInstance:
    home.mkdir()
    config = yaml.safe_load(PROJECT_CONFIG.read_text())
    if storage == "consolidated":  # one event table for every run, as on Postgres
        config["event_log_storage"] = {
            "module": "dagster._core.storage.event_log",
            "class": "ConsolidatedSqliteEventLogStorage",
            "config": {"base_dir": str(home / "history")},
        }
    if days is not None:
        config["event_log_storage"]["config"]["run_log_retention_days"] = days
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return DagsterInstance.from_config(str(home))


def _old_and_recent_run(instance: DagsterInstance) -> tuple[str, str]:
    old = materialize(
        [bars, even_days_only],
        instance=instance,
        tags={ASSET_PARTITION_RANGE_START_TAG: "2024-01-01", ASSET_PARTITION_RANGE_END_TAG: "2024-01-03"},
    )
    recent = materialize([bars, even_days_only], instance=instance, partition_key="2024-01-04")
    assert old.success and recent.success
    return old.run_id, recent.run_id


def _types(instance: DagsterInstance, run_id: str) -> list[str | None]:
    return [e.dagster_event_type.value if e.dagster_event_type else None for e in instance.all_logs(run_id)]


def _created(instance: DagsterInstance, run_id: str) -> dt.datetime:
    return instance.get_run_record_by_id(run_id).create_timestamp


def _files(directory: Path) -> dict[str, int]:
    return {str(p.relative_to(directory)): p.stat().st_size for p in directory.rglob("*") if p.is_file()}


def _asset_state(instance: DagsterInstance, run_ids: list[str]) -> dict:
    """Everything the asset page, partition bar, data versions and checks read."""
    entry = instance.get_asset_records([KEY])[0].asset_entry
    return {
        "materialized": instance.get_materialized_partitions(KEY),
        "status": instance.get_status_by_partition(KEY, DAYS.get_partition_keys(), DAYS),
        "materializations": [
            (r.storage_id, r.run_id, r.partition_key, r.asset_materialization.metadata["days"].value)
            for r in instance.fetch_materializations(KEY, limit=100).records
        ],
        "latest_by_partition": instance.event_log_storage.get_latest_storage_id_by_partition(
            KEY, DagsterEventType.ASSET_MATERIALIZATION
        ),
        "data_versions": {
            p: instance.get_latest_data_version_record(KEY, partition_key=p).storage_id
            for p in ("2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04")
        },
        "last_run": entry.last_run_id,
        "last_materialization": entry.last_materialization_record.storage_id,
        "checks": sorted(
            (r.run_id, r.partition, r.status.value, r.id, r.event.timestamp if r.event else None)
            for r in instance.event_log_storage.get_asset_check_execution_history(CHECK, limit=100)
        ),
        "runs": {
            run_id: (instance.get_run_by_id(run_id).status.value, instance.get_run_by_id(run_id).tags)
            for run_id in run_ids
        },
    }


@pytest.mark.parametrize("storage", ["project", "consolidated"])
def test_purge_drops_old_step_logs_and_keeps_asset_history(tmp_path, monkeypatch, storage):
    instance = _instance(tmp_path / "home", monkeypatch, storage)
    old, recent = _old_and_recent_run(instance)
    # Dagster's own storages plan a range run's asset once per partition
    kept = OLD_RUN_KEPT if storage == "project" else ["ASSET_MATERIALIZATION_PLANNED"] * 2 + OLD_RUN_KEPT
    assert Counter(_types(instance, old)) == STEP_AND_LOG_EVENTS + Counter(kept)
    recent_logs = [(e.message, e.dagster_event_type) for e in instance.all_logs(recent)]
    assert len(recent_logs) == 18
    # The retention line falls between the two runs' creation: 30 days after it is "now".
    cutoff = _created(instance, old) + (_created(instance, recent) - _created(instance, old)) / 2
    now = cutoff + dt.timedelta(days=30)
    before = _asset_state(instance, [old, recent])
    compute_logs = tmp_path / "home" / "storage"
    old_files = _files(compute_logs / old)
    assert sorted(Path(name).suffix for name in old_files) == [".complete", ".err", ".out"]
    recent_files = _files(compute_logs / recent)
    shard = tmp_path / "home" / "history" / "runs" / f"{old}.db"
    shard_bytes = shard.stat().st_size if storage == "project" else None

    purge = purge_run_logs(instance, now=now)

    assert purge.runs == [old]
    assert purge.events_deleted == sum(STEP_AND_LOG_EVENTS.values()) == 12
    assert _types(instance, old) == kept
    assert not (compute_logs / old).exists()
    assert (purge.compute_log_files_deleted, purge.compute_log_bytes_freed) == (3, sum(old_files.values()))
    if storage == "project":  # the run's shard is vacuumed: what it lost is measured on disk
        assert purge.event_log_bytes_freed == shard_bytes - shard.stat().st_size
        assert purge.event_log_bytes_freed > 0
        with sqlite3.connect(shard) as conn:  # rewritten in 1 kB pages, back in WAL mode
            assert conn.execute("PRAGMA page_size").fetchone()[0] == 1024
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert (tmp_path / "home" / "history" / "runs" / f"{recent}.db").stat().st_size % 4096 == 0
    else:  # one shared table: not measured
        assert purge.event_log_bytes_freed is None
    # The recent run is untouched; the asset pages read the same records as before.
    assert [(e.message, e.dagster_event_type) for e in instance.all_logs(recent)] == recent_logs
    assert _files(compute_logs / recent) == recent_files
    after = _asset_state(instance, [old, recent])
    # the same, but for the old run's new tag
    assert after["runs"][old][1] == {**before["runs"][old][1], RUN_LOGS_PURGED_TAG: now.date().isoformat()}
    assert {**after, "runs": {**after["runs"], old: before["runs"][old]}} == before
    assert before["materialized"] == {"2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"}
    assert [c[:3] for c in before["checks"]] == sorted(
        [(old, f"2024-01-0{d}", "SUCCEEDED" if d % 2 == 0 else "FAILED") for d in (1, 2, 3)]
        + [(recent, "2024-01-04", "SUCCEEDED")]
    )

    again = purge_run_logs(instance, now=now)
    assert (again.runs, again.events_deleted, again.compute_log_files_deleted) == ([], 0, 0)
    assert again.event_log_bytes_freed == 0
    assert _types(instance, old) == kept
    assert _asset_state(instance, [old, recent]) == after


def test_purge_goes_in_bounded_batches_and_resumes(tmp_path, monkeypatch):
    instance = _instance(tmp_path / "home", monkeypatch)
    runs = [
        materialize([bars], instance=instance, partition_key=f"2024-01-0{d}", selection=[KEY]).run_id for d in (1, 2, 3)
    ]
    now = _created(instance, runs[-1]) + dt.timedelta(days=30, seconds=1)

    first = purge_run_logs(instance, now=now, max_runs=2)
    assert (first.runs, first.more) == (runs[:2], True)
    assert first.last_created == _created(instance, runs[1]).timestamp()
    rest = purge_run_logs(instance, now=now, max_runs=2, created_after=first.last_created - 1.0)
    assert (rest.runs, rest.more) == (runs[2:], False)
    # A run of one asset step: the two engine events, two resource-init events, logs captured,
    # step start, output and success, and the log line go (9); four events stay.
    assert [_types(instance, r) for r in runs] == [
        ["ASSET_MATERIALIZATION_PLANNED", "PIPELINE_START", "ASSET_MATERIALIZATION", "PIPELINE_SUCCESS"]
    ] * 3
    assert (first.events_deleted, rest.events_deleted) == (2 * 9, 9)

    echoed: list[str] = []
    total = purge_all(instance, 30, echo=echoed.append)  # by today's clock all three runs are recent
    assert (total.runs, echoed) == ([], [])


def test_retention_days_come_from_dagster_yaml(tmp_path, monkeypatch):
    project = _instance(tmp_path / "project", monkeypatch)
    assert isinstance(project.event_log_storage, BatchedSqliteEventLogStorage)
    assert yaml.safe_load(PROJECT_CONFIG.read_text())["event_log_storage"]["config"]["run_log_retention_days"] == 30
    assert run_log_retention_days(project) == 30
    assert run_log_retention_days(_instance(tmp_path / "seven", monkeypatch, days=7)) == 7

    disabled = _instance(tmp_path / "disabled", monkeypatch, days=-1)
    old, _ = _old_and_recent_run(disabled)
    purge = purge_run_logs(disabled, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=3650))
    assert (purge.runs, purge.events_deleted) == ([], 0)
    assert len(_types(disabled, old)) == 22


def test_project_dagster_yaml_keeps_ticks_for_a_bounded_time(tmp_path, monkeypatch):
    from resources.dagster_internals import InstigatorType, TickStatus

    instance = _instance(tmp_path / "home", monkeypatch)
    assert instance.get_tick_retention_settings(InstigatorType.SENSOR) == {
        TickStatus.STARTED: 90,
        TickStatus.SKIPPED: 3,
        TickStatus.SUCCESS: 90,
        TickStatus.FAILURE: 90,
    }
    assert instance.get_tick_retention_settings(InstigatorType.SCHEDULE) == {
        TickStatus.STARTED: 90,
        TickStatus.SKIPPED: 30,
        TickStatus.SUCCESS: 90,
        TickStatus.FAILURE: 90,
    }


def _backdate(instance: DagsterInstance, run_id: str, days: int) -> float:
    """Move a run's creation time ``days`` back (a test cannot wait a month); the new timestamp."""
    from resources.dagster_internals import RunsTable

    created = _created(instance, run_id) - dt.timedelta(days=days)
    with instance.run_storage.connect() as conn:
        conn.execute(
            RunsTable.update()
            .where(RunsTable.c.run_id == run_id)
            .values(create_timestamp=created.astimezone(dt.UTC).replace(tzinfo=None))
        )
    assert _created(instance, run_id) == created
    return created.timestamp()


def test_sensor_purges_old_runs_and_reports_in_its_tick(tmp_path, monkeypatch):
    instance = _instance(tmp_path / "home", monkeypatch)
    old, recent = _old_and_recent_run(instance)
    created = _backdate(instance, old, days=31)
    old_log_bytes = sum(_files(tmp_path / "home" / "storage" / old).values())
    shard = tmp_path / "home" / "history" / "runs" / f"{old}.db"
    shard_bytes = shard.stat().st_size

    registered = {s.name: s for s in defs.sensors}
    assert registered[RUN_LOG_RETENTION_SENSOR_NAME] is run_log_retention_sensor
    assert run_log_retention_sensor.minimum_interval_seconds == 3600
    context = build_sensor_context(instance=instance, sensor_name=RUN_LOG_RETENTION_SENSOR_NAME)
    result = run_log_retention_sensor(context)
    assert isinstance(result, SkipReason)
    assert result.skip_message.startswith("purged 1 run(s) created before ")
    freed = shard_bytes - shard.stat().st_size
    assert result.skip_message.endswith(
        f": 12 events ({freed:,} bytes of event log freed), 3 compute-log files ({old_log_bytes:,} bytes)"
    )
    assert context.cursor == repr(created - 1.0)
    assert _types(instance, old) == OLD_RUN_KEPT
    assert len(_types(instance, recent)) == 18

    again = run_log_retention_sensor(build_sensor_context(instance=instance, cursor=context.cursor))
    assert again.skip_message.startswith("purged 0 run(s) created before ")
    assert again.skip_message.endswith(": 0 events (0 bytes of event log freed), 0 compute-log files (0 bytes)")


def test_cli_prune(tmp_path, monkeypatch):
    instance = _instance(tmp_path / "home", monkeypatch)
    old, recent = _old_and_recent_run(instance)
    _backdate(instance, old, days=8)

    result = CliRunner().invoke(main, ["prune", "--older-than-days", "10"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("total: purged 0 run(s)")
    result = CliRunner().invoke(main, ["prune", "--older-than-days", "7"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 2 and lines[1] == "total: " + lines[0]
    assert ": 12 events (" in lines[0]
    assert _types(instance, old) == OLD_RUN_KEPT
    assert len(_types(instance, recent)) == 18


def test_dagster_internals_the_purge_relies_on(tmp_path, monkeypatch):
    """Contract test for resources/run_log_retention.py's private imports."""
    from resources.dagster_internals import (
        ASSET_CHECK_EVENTS,
        ASSET_EVENTS,
        EVENT_TYPE_TO_PIPELINE_RUN_STATUS,
        LocalComputeLogManager,
        SqlEventLogStorage,
        SqlEventLogStorageTable,
        SqliteEventLogStorage,
    )
    from resources.dagster_internals import FINISHED_STATUSES as DAGSTER_FINISHED_STATUSES

    # Every event type Dagster mirrors to its cross-run index (asset, check, run status) is kept.
    assert set(ASSET_EVENTS) | set(ASSET_CHECK_EVENTS) | set(EVENT_TYPE_TO_PIPELINE_RUN_STATUS) == KEPT_EVENT_TYPES
    assert FINISHED_STATUSES == DAGSTER_FINISHED_STATUSES  # a run in any other status is never purged
    assert {"id", "run_id", "dagster_event_type"} <= set(SqlEventLogStorageTable.c.keys())
    instance = _instance(tmp_path / "home", monkeypatch)
    storage = instance.event_log_storage
    assert isinstance(storage, SqliteEventLogStorage) and isinstance(storage, SqlEventLogStorage)
    assert storage.is_run_sharded
    assert storage.path_for_shard("abc") == str(tmp_path / "home" / "history" / "runs" / "abc.db")
    manager = instance.compute_log_manager
    assert isinstance(manager, LocalComputeLogManager)
    assert list(manager.build_log_key_for_run("abc", "step")) == ["abc", "compute_logs", "step"]
    assert manager.get_captured_local_path(["abc", "compute_logs", "x"], "out") == str(
        (tmp_path / "home" / "storage" / "abc" / "compute_logs" / "x.out").resolve()
    )
