"""The batched event log keeps exactly what Dagster's stock event log keeps, on SQLite and on Postgres.

Tests taking ``instance_kind`` run twice: on the project's dagster.yaml (``BatchedSqliteEventLogStorage``)
and on deploy/postgres/dagster.yaml (``BatchedPostgresEventLogStorage``) against the session's real
PostgreSQL server (tests/conftest.py), each compared with Dagster's stock storage of the same kind.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import project_instance_home
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckSpec,
    AssetKey,
    BackfillPolicy,
    DagsterEventType,
    DagsterInstance,
    DailyPartitionsDefinition,
    EventRecordsFilter,
    MetadataValue,
    MultiPartitionsDefinition,
    StaticPartitionsDefinition,
    asset,
    materialize,
    multi_asset_check,
    serialize_value,
)
from dagster_postgres import PostgresEventLogStorage

from resources.dagster_event_log import BatchedPostgresEventLogStorage, BatchedSqliteEventLogStorage
from resources.dagster_internals import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    AssetCheckExecutionRecordStatus,
    SqliteEventLogStorage,
)

PROJECT_CONFIG = Path(__file__).resolve().parents[1] / "dagster.yaml"
DAYS = DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-11")
KEY = AssetKey(["demo", "bars"])


@asset(key=KEY, partitions_def=DAYS, backfill_policy=BackfillPolicy.single_run())
def bars(context) -> None:
    """One row per day (nothing stored: the test is about the event log)."""
    context.add_output_metadata({"days": len(context.partition_keys)})


@multi_asset_check(specs=[AssetCheckSpec("even_days_only", asset=KEY, partitions_def=DAYS)], can_subset=True)
def even_days_only(context):
    """Passes on even days of the month: one result per partition of the run."""
    for key in context.partition_keys:
        yield AssetCheckEvaluation(
            asset_key=KEY, check_name="even_days_only", passed=int(key[-2:]) % 2 == 0, partition=key
        )


CHECK = AssetCheckKey(KEY, "even_days_only")
PASSED, FAILED = AssetCheckExecutionRecordStatus.SUCCEEDED, AssetCheckExecutionRecordStatus.FAILED


def _project_instance(home: Path, monkeypatch, request=None, kind: str = "sqlite") -> DagsterInstance:
    if kind == "sqlite":
        home.mkdir()
        shutil.copyfile(PROJECT_CONFIG, home / "dagster.yaml")
        monkeypatch.setenv("DAGSTER_HOME", str(home))
    else:
        project_instance_home(request, home, monkeypatch, kind)
    return DagsterInstance.from_config(str(home))


BATCHED_CLASSES = {"sqlite": BatchedSqliteEventLogStorage, "postgres": BatchedPostgresEventLogStorage}


def _stock_instance(home: Path, request=None, kind: str = "sqlite") -> DagsterInstance:
    home.mkdir()
    if kind == "postgres":  # Dagster's own Postgres storage, on a database of its own
        url = request.getfixturevalue("postgres_server").new_database()
        (home / "dagster.yaml").write_text(f"storage:\n  postgres:\n    postgres_url: {url}\n")
    return DagsterInstance.from_config(str(home))  # SQLite: no dagster.yaml, Dagster's defaults


def _range_run(instance: DagsterInstance, start: str, end: str) -> str:
    result = materialize(
        [bars, even_days_only],
        instance=instance,
        tags={ASSET_PARTITION_RANGE_START_TAG: start, ASSET_PARTITION_RANGE_END_TAG: end},
    )
    assert result.success  # the check is not blocking
    return result.run_id


def _records(instance: DagsterInstance, event_type: DagsterEventType):
    """Every event of ``event_type`` for KEY, newest first. The storage's reader: DagsterInstance's
    get_event_records and fetch_planned_materializations are deprecated (Dagster 2.0)."""
    return instance.event_log_storage.get_event_records(EventRecordsFilter(event_type=event_type, asset_key=KEY))


def test_project_instance_uses_the_batched_event_log(tmp_path, monkeypatch):
    instance = _project_instance(tmp_path / "home", monkeypatch)
    assert isinstance(instance.event_log_storage, BatchedSqliteEventLogStorage)
    # Same files as Dagster's default SQLite storage: an existing DAGSTER_HOME keeps its history.
    assert Path(instance.event_log_storage._base_dir) == tmp_path / "home" / "history" / "runs"


def test_range_runs_leave_the_same_asset_state_as_the_stock_storage(tmp_path, monkeypatch, request, instance_kind):
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")
    batched = _project_instance(tmp_path / "batched", monkeypatch, request, instance_kind)
    stock = _stock_instance(tmp_path / "stock", request, instance_kind)
    assert (
        type(stock.event_log_storage)
        is {"sqlite": SqliteEventLogStorage, "postgres": PostgresEventLogStorage}[instance_kind]
    )

    batches = []
    original = BATCHED_CLASSES[instance_kind].store_event_batch

    def spy(self, events):
        if events[0].dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION:
            batches.append([e.dagster_event.partition for e in events])
        original(self, events)

    monkeypatch.setattr(BATCHED_CLASSES[instance_kind], "store_event_batch", spy)
    runs = {}
    for name, instance in (("batched", batched), ("stock", stock)):
        first = _range_run(instance, "2024-01-01", "2024-01-06")
        second = _range_run(instance, "2024-01-04", "2024-01-08")  # overlaps: re-materializes 3 days
        runs[name] = (first, second)

    for name, instance in (("batched", batched), ("stock", stock)):
        first, second = runs[name]
        materializations = _records(instance, DagsterEventType.ASSET_MATERIALIZATION)
        assert len(materializations) == 6 + 5
        assert instance.get_materialized_partitions(KEY) == {f"2024-01-0{d}" for d in range(1, 9)}
        latest = instance.get_latest_materialization_event(KEY)
        assert (latest.run_id, latest.dagster_event.partition) == (second, "2024-01-08")
        record = instance.get_asset_records([KEY])[0].asset_entry
        assert record.last_run_id == second
        assert record.last_materialization_record.storage_id == materializations[0].storage_id
        # Every partition's latest materialization comes from the run that wrote it last.
        by_partition = instance.event_log_storage.get_latest_storage_id_by_partition(
            KEY, DagsterEventType.ASSET_MATERIALIZATION
        )
        run_of = {r.storage_id: r.run_id for r in materializations}
        assert {p: run_of[i] for p, i in by_partition.items()} == {
            **{f"2024-01-0{d}": first for d in (1, 2, 3)},
            **{f"2024-01-0{d}": second for d in (4, 5, 6, 7, 8)},
        }
        # The run's own event log holds every partition's materialization, in order.
        in_run = [
            e.dagster_event.partition for e in instance.all_logs(second, of_type=DagsterEventType.ASSET_MATERIALIZATION)
        ]
        assert in_run == ["2024-01-04", "2024-01-05", "2024-01-06", "2024-01-07", "2024-01-08"]
        # Check executions: one row per partition and run, resolved by the per-partition results.
        history = instance.event_log_storage.get_asset_check_execution_history(CHECK, limit=100)
        assert sorted((r.run_id, r.partition, r.status) for r in history) == sorted(
            (run, f"2024-01-0{d}", PASSED if d % 2 == 0 else FAILED)
            for run, days in ((first, range(1, 7)), (second, range(4, 9)))
            for d in days
        )
        assert all(r.event is not None and r.evaluation.partition == r.partition for r in history)

    # The batched storage got each run's materializations as one batch.
    assert batches == [
        ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-06"],
        ["2024-01-04", "2024-01-05", "2024-01-06", "2024-01-07", "2024-01-08"],
    ]
    # Planned events: one per asset and range run (with the partition subset) instead of one per
    # partition; the UI's "materializing" state reads either form.
    assert len(_records(batched, DagsterEventType.ASSET_MATERIALIZATION_PLANNED)) == 2
    assert len(_records(stock, DagsterEventType.ASSET_MATERIALIZATION_PLANNED)) == 6 + 5


def test_planned_check_rows_do_not_copy_the_runs_partition_subset(tmp_path, monkeypatch, request, instance_kind):
    instance = _project_instance(tmp_path / "home", monkeypatch, request, instance_kind)
    run_id = instance.create_run_for_job(
        _job_of_bars_and_check(),
        tags={ASSET_PARTITION_RANGE_START_TAG: "2024-01-01", ASSET_PARTITION_RANGE_END_TAG: "2024-01-10"},
    ).run_id
    planned = instance.event_log_storage.get_asset_check_execution_history(CHECK, limit=100)
    assert sorted(r.partition for r in planned) == [f"2024-01-{d:02d}" for d in range(1, 11)]
    assert {r.run_id for r in planned} == {run_id}
    assert {r.status for r in planned} == {AssetCheckExecutionRecordStatus.PLANNED}
    # Each row holds the planned event without the subset; the event log keeps the full event.
    assert {r.event.dagster_event.event_specific_data.partitions_subset for r in planned} == {None}
    (logged,) = instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED)
    assert sorted(logged.dagster_event.event_specific_data.partitions_subset.get_partition_keys()) == [
        f"2024-01-{d:02d}" for d in range(1, 11)
    ]


QUARTER = DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-04-01")  # 91 days
QUARTER_KEY = AssetKey(["demo", "quarter"])


@asset(key=QUARTER_KEY, partitions_def=QUARTER, backfill_policy=BackfillPolicy.single_run())
def quarter_bars() -> None:
    """One row per day (nothing stored)."""


@multi_asset_check(specs=[AssetCheckSpec("rows_ok", asset=QUARTER_KEY, partitions_def=QUARTER)], can_subset=True)
def rows_ok(context):
    """Like the project's checks on a range run of more than 40 partitions: one result for the range."""
    from dagster import AssetCheckResult

    yield AssetCheckResult(asset_key=QUARTER_KEY, check_name="rows_ok", passed=len(context.partition_keys) == 91)


def test_a_range_longer_than_per_partition_results_plans_one_row_that_its_result_resolves(
    tmp_path, monkeypatch, request, instance_kind
):
    from resources.dagster_event_log import PER_PARTITION_CHECK_RESULTS_MAX

    instance = _project_instance(tmp_path / "home", monkeypatch, request, instance_kind)
    assert PER_PARTITION_CHECK_RESULTS_MAX == 40
    result = materialize(
        [quarter_bars, rows_ok],
        instance=instance,
        tags={ASSET_PARTITION_RANGE_START_TAG: "2024-01-01", ASSET_PARTITION_RANGE_END_TAG: "2024-03-31"},
    )
    assert result.success
    history = instance.event_log_storage.get_asset_check_execution_history(
        AssetCheckKey(QUARTER_KEY, "rows_ok"), limit=200
    )
    assert [(r.run_id, r.partition, r.status) for r in history] == [(result.run_id, None, PASSED)]
    assert len(instance.get_materialized_partitions(QUARTER_KEY)) == 91  # materializations stay per partition


def _job_of_bars_and_check():
    from dagster import Definitions, define_asset_job

    job = define_asset_job("bars_job", selection=[KEY])  # partitioned like its assets
    return Definitions(assets=[bars], asset_checks=[even_days_only], jobs=[job]).resolve_job_def("bars_job")


def test_a_batch_with_events_of_two_runs_falls_back_to_one_by_one(tmp_path, monkeypatch, request, instance_kind):
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")
    instance = _project_instance(tmp_path / "home", monkeypatch, request, instance_kind)
    first = _range_run(instance, "2024-01-01", "2024-01-02")
    second = _range_run(instance, "2024-01-03", "2024-01-03")
    events = [
        *instance.all_logs(first, of_type=DagsterEventType.ASSET_MATERIALIZATION),
        *instance.all_logs(second, of_type=DagsterEventType.ASSET_MATERIALIZATION),
    ]
    instance.event_log_storage.store_event_batch(events)
    assert [r.run_id for r in _records(instance, DagsterEventType.ASSET_MATERIALIZATION)] == [
        second,
        first,
        first,
        second,
        first,
        first,
    ]
    assert len(instance.all_logs(first, of_type=DagsterEventType.ASSET_MATERIALIZATION)) == 4
    assert len(instance.all_logs(second, of_type=DagsterEventType.ASSET_MATERIALIZATION)) == 2


def test_without_dagster_home_or_base_dir_it_says_what_is_missing(monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with pytest.raises(RuntimeError, match="DAGSTER_HOME is not set"):
        BatchedSqliteEventLogStorage()


@asset(key=AssetKey(["demo", "pooled"]), pool="duckdb")
def pooled() -> None:
    """A step in the project's duckdb pool (the tests below set its limit to 1)."""


def test_a_blocked_pool_claim_waits_in_storage_and_asks_to_be_asked_again_at_once(
    tmp_path, monkeypatch, request, instance_kind
):
    """Blocked: one wait of BLOCKED_CLAIM_WAIT_SECONDS, sleep_interval 0; free slot: no wait."""
    import resources.dagster_event_log as event_log

    instance = _project_instance(tmp_path / "home", monkeypatch, request, instance_kind)
    storage = instance.event_log_storage
    storage.set_concurrency_slots("duckdb", 1)
    waits: list[float] = []
    monkeypatch.setattr(event_log.time, "sleep", waits.append)

    first = storage.claim_concurrency_slot("duckdb", "run-a", "step-a")
    assert first.is_claimed and waits == []
    second = storage.claim_concurrency_slot("duckdb", "run-b", "step-b")
    assert not second.is_claimed
    assert second.sleep_interval == 0.0
    assert waits == [event_log.BLOCKED_CLAIM_WAIT_SECONDS]

    storage.free_concurrency_slot_for_step("run-a", "step-a")
    third = storage.claim_concurrency_slot("duckdb", "run-b", "step-b")
    assert third.is_claimed and waits == [event_log.BLOCKED_CLAIM_WAIT_SECONDS]


def test_a_run_waiting_for_the_duckdb_slot_sleeps_and_runs_once_the_slot_is_free(
    tmp_path, monkeypatch, request, instance_kind
):
    """Dagster 1.13's executor would spin a core while it waits (~1 CPU-second per second)."""
    import threading
    import time

    from dagster import Definitions, define_asset_job, in_process_executor

    instance = _project_instance(tmp_path / "home", monkeypatch, request, instance_kind)
    storage = instance.event_log_storage
    storage.set_concurrency_slots("duckdb", 1)
    assert storage.claim_concurrency_slot("duckdb", "other-run", "other-step").is_claimed
    job = Definitions(
        assets=[pooled], jobs=[define_asset_job("pooled_job")], executor=in_process_executor
    ).resolve_job_def("pooled_job")
    outcome = {}
    waiting = threading.Thread(target=lambda: outcome.update(success=job.execute_in_process(instance=instance).success))

    cpu_before = time.process_time()
    waiting.start()
    time.sleep(3.0)
    cpu_while_waiting = time.process_time() - cpu_before
    assert waiting.is_alive() and "success" not in outcome  # still waiting: the slot is taken
    storage.free_concurrency_slot_for_step("other-run", "other-step")
    waiting.join(timeout=60)

    assert outcome == {"success": True}
    # Start-up of the run takes a fraction of a second of CPU; a spinning wait takes ~3 s.
    assert cpu_while_waiting < 1.5, f"the waiting run used {cpu_while_waiting:.2f} CPU-seconds in 3 s"


GRID = MultiPartitionsDefinition(
    {
        "date": DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-11"),
        "symbol": StaticPartitionsDefinition(["BTCUSDT", "ETHUSDT"]),
    }
)
GRID_KEY = AssetKey(["demo", "grid"])


@asset(key=GRID_KEY, partitions_def=GRID, backfill_policy=BackfillPolicy.single_run())
def grid(context) -> None:
    """Range-level metadata of several kinds (Dagster copies it onto every partition's event)."""
    context.add_output_metadata(
        {"rows": 240, "share": 0.125, "by_rule": {"b": 2, "a": [1, None]}, "note": "läuft — ok", "flag": True}
    )


def _grid_batch(tmp_path, monkeypatch, request, kind: str, start: str, end: str):
    """The materialization batch Dagster hands to the storage for one range run of ``grid``."""
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")
    instance = _project_instance(tmp_path / "home", monkeypatch, request, kind)
    batches = []
    original = BATCHED_CLASSES[kind].store_event_batch

    def spy(self, events):
        if events[0].dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION:
            batches.append(list(events))
        original(self, events)

    monkeypatch.setattr(BATCHED_CLASSES[kind], "store_event_batch", spy)
    result = materialize(
        [grid], instance=instance, tags={ASSET_PARTITION_RANGE_START_TAG: start, ASSET_PARTITION_RANGE_END_TAG: end}
    )
    assert result.success
    (batch,) = batches
    return instance, result.run_id, batch


def test_a_batch_of_partition_materializations_is_stored_exactly_as_dagster_serializes_it(
    tmp_path, monkeypatch, request, instance_kind
):
    import resources.dagster_event_log as event_log

    instance, run_id, batch = _grid_batch(
        tmp_path, monkeypatch, request, instance_kind, "2024-01-01|BTCUSDT", "2024-01-10|ETHUSDT"
    )
    storage = instance.event_log_storage
    assert len(batch) == 20  # 10 days × 2 symbols, each its own event
    assert {e.dagster_event.event_specific_data.materialization.tags["dagster/partition/symbol"] for e in batch} == {
        "BTCUSDT",
        "ETHUSDT",
    }
    calls = []
    monkeypatch.setattr(event_log, "serialize_value", lambda value: calls.append(value) or serialize_value(value))

    fast = storage._event_rows(batch)

    # Dagster's own rows: the same dicts, the same JSON text byte for byte.
    assert fast == [SqliteEventLogStorage._event_to_row(storage, event) for event in batch]
    # Two serializations (the first event, then the template) instead of twenty.
    assert len(calls) == 2
    # What was stored reads back as the events Dagster produced.
    stored = instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
    assert [serialize_value(e) for e in stored] == [serialize_value(e) for e in batch]


def test_events_of_another_shape_are_serialized_one_by_one(tmp_path, monkeypatch, request):
    import resources.dagster_event_log as event_log

    instance, run_id, batch = _grid_batch(
        tmp_path, monkeypatch, request, "sqlite", "2024-01-01|BTCUSDT", "2024-01-03|BTCUSDT"
    )
    storage = instance.event_log_storage
    first, second, third = batch
    # A different metadata value, tag, or a failure-looking event each breaks the shape.
    other_metadata = first._replace(
        dagster_event=first.dagster_event._replace(
            event_specific_data=first.dagster_event.event_specific_data._replace(
                materialization=first.dagster_event.event_specific_data.materialization._replace(
                    metadata={
                        **first.dagster_event.event_specific_data.materialization.metadata,
                        "rows": MetadataValue.int(7),
                    }
                )
            )
        )
    )
    other_tag = second._replace(
        dagster_event=second.dagster_event._replace(
            event_specific_data=second.dagster_event.event_specific_data._replace(
                materialization=second.dagster_event.event_specific_data.materialization._replace(
                    tags={**second.dagster_event.event_specific_data.materialization.tags, "team": "quant"}
                )
            )
        )
    )
    mixed = [first, second, other_metadata, third, other_tag, third, second]
    assert storage._event_rows(mixed) == [SqliteEventLogStorage._event_to_row(storage, e) for e in mixed]
    # A stand-in that collides with a real value turns templating off for that shape.
    colliding = third._replace(user_message=event_log._PARTITION_STANDIN)
    calls = []
    monkeypatch.setattr(event_log, "serialize_value", lambda value: calls.append(value) or serialize_value(value))
    later = [colliding._replace(timestamp=colliding.timestamp + seconds) for seconds in (1.0, 2.0, 3.0)]
    rows = storage._event_rows([colliding, *later])
    assert [r["event"] for r in rows] == [serialize_value(e) for e in (colliding, *later)]
    # The shape is tried as a template once (the failed attempt), not again for every later event.
    assert len(calls) == 4 + 1


def test_each_shard_gets_one_engine_and_a_wiped_storage_recreates_its_tables(tmp_path, monkeypatch):
    import resources.dagster_event_log as event_log

    made = []
    real_create_engine = event_log.create_engine
    monkeypatch.setattr(event_log, "create_engine", lambda *a, **k: made.append(a[0]) or real_create_engine(*a, **k))
    instance = _project_instance(tmp_path / "home", monkeypatch)
    first = _range_run(instance, "2024-01-01", "2024-01-03")
    second = _range_run(instance, "2024-01-04", "2024-01-05")
    # One engine per shard touched (the index, each run's file), however many events were written.
    assert sorted(made) == sorted(set(made))
    assert len(made) <= 3
    instance.wipe()
    assert instance.all_logs(first) == [] and instance.get_materialized_partitions(KEY) == set()
    third = _range_run(instance, "2024-01-06", "2024-01-06")
    assert instance.get_materialized_partitions(KEY) == {"2024-01-06"}
    assert len(instance.all_logs(third, of_type=DagsterEventType.ASSET_MATERIALIZATION)) == 1
    assert second != third


@asset(key=AssetKey(["demo", "per_partition"]), partitions_def=GRID, backfill_policy=BackfillPolicy.single_run())
def per_partition(context) -> None:
    """Per-partition figures (as the I/O manager records them) next to range-level ones."""
    context.add_output_metadata({"share": 0.125, "note": "läuft — ok", "rows": 999})
    for index, key in enumerate(context.partition_keys):
        context.add_asset_metadata(
            {"rows": index * 7, "dagster/partition_row_count": index * 7, "first_open_time": f'{key} 00:00:00 "ü"'},
            partition_key=key,
        )


def test_per_partition_figures_keep_the_template_and_serialize_exactly(tmp_path, monkeypatch, request, instance_kind):
    """Partitions that differ only in int/text figures share one template; each event keeps its own."""
    import resources.dagster_event_log as event_log

    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")
    instance = _project_instance(tmp_path / "home", monkeypatch, request, instance_kind)
    batches = []
    original = BATCHED_CLASSES[instance_kind].store_event_batch

    def spy(self, events):
        if events[0].dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION:
            batches.append(list(events))
        original(self, events)

    monkeypatch.setattr(BATCHED_CLASSES[instance_kind], "store_event_batch", spy)
    tags = {ASSET_PARTITION_RANGE_START_TAG: "2024-01-01|BTCUSDT", ASSET_PARTITION_RANGE_END_TAG: "2024-01-05|ETHUSDT"}
    result = materialize([per_partition], instance=instance, tags=tags)
    assert result.success
    (batch,) = batches
    rows_by_partition = {
        e.dagster_event.event_specific_data.materialization.partition: e.dagster_event.event_specific_data.materialization.metadata[
            "rows"
        ].value
        for e in batch
    }
    assert sorted(rows_by_partition.values()) == [7 * i for i in range(10)]
    storage = instance.event_log_storage
    calls = []
    monkeypatch.setattr(event_log, "serialize_value", lambda value: calls.append(value) or serialize_value(value))
    fast = storage._event_rows(batch)
    assert fast == [SqliteEventLogStorage._event_to_row(storage, event) for event in batch]
    assert len(calls) == 2  # the first event, then the template: not one per partition
    stored = instance.all_logs(result.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
    assert {
        e.dagster_event.event_specific_data.materialization.partition: e.dagster_event.event_specific_data.materialization.metadata[
            "rows"
        ].value
        for e in stored
    } == rows_by_partition


def test_private_dagster_names_the_event_log_relies_on():
    """Contract test: the private Dagster names the mixin builds on still mean what it assumes."""
    from resources.dagster_internals import SqlEventLogStorage

    for storage in (SqliteEventLogStorage, PostgresEventLogStorage):
        assert issubclass(storage, SqlEventLogStorage)
    for name in ("_store_asset_check_evaluation_planned", "_has_asset_key_col_on_connection", "_event_to_row"):
        assert callable(getattr(SqlEventLogStorage, name)), name
    # The mixin comes first: its overrides win and super() reaches the concrete storage.
    assert BatchedPostgresEventLogStorage.__mro__[1:3] == (
        BatchedPostgresEventLogStorage.__mro__[1],
        PostgresEventLogStorage,
    )
    assert BatchedSqliteEventLogStorage.__mro__[2] is SqliteEventLogStorage
    # dagster-postgres helpers BatchedPostgresEventLogStorage.from_config_value uses (not in its __all__).
    from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

    assert pg_url_from_config({"postgres_url": "postgresql+psycopg2://u@h/d"}) == "postgresql+psycopg2://u@h/d"
    assert get_token_provider_from_config({}) is None
    assert set(BatchedPostgresEventLogStorage.config_type()) >= {
        "postgres_url",
        "postgres_db",
        "pool_wait_timeout_seconds",
    }


def test_two_processes_claiming_at_the_same_moment_never_hold_the_one_slot_together(tmp_path):
    """The SQLite claim is one conditional UPDATE. Dagster's select-then-update let both processes
    hold the slot: 14 overlapping holds out of 60 when this test ran it (mode ``dagster`` of
    tests/slot_claimer.py, 2026-12-07), and two runs' DuckDB writes inside a pool of one."""
    storage = BatchedSqliteEventLogStorage(base_dir=str(tmp_path))
    storage.set_concurrency_slots("duckdb", 1)
    storage.dispose()
    start_at = time.time() + 8  # both interpreters have imported Dagster by then
    claimer = Path(__file__).with_name("slot_claimer.py")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    processes = [
        subprocess.Popen(
            [sys.executable, str(claimer), str(tmp_path), f"run-{name}", "project", str(start_at)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name in "ab"
    ]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0]
    holds = sorted(tuple(hold) for output in outputs for hold in json.loads(output))
    assert len(holds) == 60
    overlapping = [(a, b) for a, b in zip(holds, holds[1:]) if a[1] > b[0]]
    assert overlapping == []
