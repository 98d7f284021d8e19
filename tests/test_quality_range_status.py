"""Which partitions fail which check stays visible after range runs of more than 40 partitions:
the range's result names the failing partitions AND each failing partition gets its own evaluation
(Dagster 1.13 keeps a check status per partition), so a later, unrelated passing run does not hide
it; a range in which it passes again resolves it. Runs on the project's instance (its event log
plans one row for such a range), on SQLite and on the session's PostgreSQL server."""

import datetime as dt
from pathlib import Path

import polars as pl
import test_quality_pipeline as pipeline
from conftest import project_instance_home
from dagster import AssetCheckKey, AssetKey, DagsterInstance, materialize

from cryptolake_assets.quality.catalog import SILVER_OHLCV
from cryptolake_assets.quality.factory import build_table_checks
from resources.dagster_internals import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    AssetCheckExecutionRecordStatus,
)

PROJECT_CONFIG = Path(__file__).resolve().parents[1] / "dagster.yaml"
DAY, BAD = pipeline.DAY, pipeline.BAD
FIRST, LAST = DAY - dt.timedelta(days=40), DAY + dt.timedelta(days=1)  # 42 partitions > 40
OTHER = f"{DAY - dt.timedelta(days=3)}|BTCUSDT"
UNIQUE = AssetCheckKey(AssetKey(["silver", "ohlcv"]), "unique_symbol_open_time")
COMPLETE = AssetCheckKey(AssetKey(["silver", "ohlcv"]), "complete_bars")
FAILED, PASSED = AssetCheckExecutionRecordStatus.FAILED, AssetCheckExecutionRecordStatus.SUCCEEDED
ASSETS = [pipeline.stub_silver, build_table_checks(SILVER_OHLCV)]


def _instance(request, kind, tmp_path, monkeypatch) -> DagsterInstance:
    home = project_instance_home(request, tmp_path / "home", monkeypatch, kind)
    return DagsterInstance.from_config(str(home))


def _range(instance, path):
    tags = {ASSET_PARTITION_RANGE_START_TAG: f"{FIRST}|BTCUSDT", ASSET_PARTITION_RANGE_END_TAG: f"{LAST}|BTCUSDT"}
    return materialize(ASSETS, resources=pipeline._resources(path), tags=tags, instance=instance, raise_on_error=False)


def _status(instance, key: AssetCheckKey) -> dict[str, AssetCheckExecutionRecordStatus]:
    infos = instance.event_log_storage.get_asset_check_partition_info([key])
    return {i.partition_key: i.latest_execution_status for i in infos if i.partition_key is not None}


def test_a_failure_inside_a_large_range_stays_on_its_partition_until_that_partition_passes(
    request, instance_kind, tmp_path, monkeypatch
):
    instance, path = _instance(request, instance_kind, tmp_path, monkeypatch), tmp_path / "lake.duckdb"
    # BAD repeats a bar (ERROR); another day misses 3 bars (complete_bars, WARN).
    missing_day = f"{DAY - dt.timedelta(days=10)}|BTCUSDT"
    gappy = pipeline._bars("BTCUSDT", range(24), DAY - dt.timedelta(days=10)).filter(
        ~pl.col("open_time").dt.hour().is_in([3, 4, 5])
    )
    monkeypatch.setitem(pipeline.SILVER_BY_PARTITION, missing_day, gappy)
    result = _range(instance, path)
    assert not result.success  # the ERROR blocks
    assert _status(instance, UNIQUE) == {BAD: FAILED}
    assert _status(instance, COMPLETE) == {missing_day: FAILED}
    per_partition = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.event_specific_data.check_name == "complete_bars"
        and e.event_specific_data.partition
    ]
    assert [
        (e.partition, e.passed, e.severity.value, e.metadata["failing_rows"].value, e.metadata["rows_checked"].value)
        for e in per_partition
    ] == [(missing_day, False, "WARN", 3, 21)]

    # A later single-partition run of another partition passes: the failures stay where they are.
    assert materialize(ASSETS, partition_key=OTHER, resources=pipeline._resources(path), instance=instance).success
    assert _status(instance, UNIQUE) == {BAD: FAILED, OTHER: PASSED}
    assert _status(instance, COMPLETE) == {missing_day: FAILED, OTHER: PASSED}

    # The data is fixed and the range runs again: the failed partitions resolve, nothing else is written.
    monkeypatch.delitem(pipeline.SILVER_BY_PARTITION, missing_day)
    monkeypatch.setitem(pipeline.SILVER_BY_PARTITION, BAD, pipeline._bars("BTCUSDT", range(24)))
    again = _range(instance, path)
    assert again.success
    assert _status(instance, UNIQUE) == {BAD: PASSED, OTHER: PASSED}
    assert _status(instance, COMPLETE) == {missing_day: PASSED, OTHER: PASSED}
    partitioned = [
        e
        for e in again.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION" and e.event_specific_data.partition
    ]
    assert sorted((e.event_specific_data.check_name, e.event_specific_data.partition) for e in partitioned) == [
        ("complete_bars", missing_day),
        ("unique_symbol_open_time", BAD),
    ]
