"""Schedules: what gets requested for a new day, and nothing outside a symbol's listing window.

universe.csv: BUSDUSDT traded until 2023-12-15, AGIXUSDT and OCEANUSDT until 2024-07-01 (merged
into FET), TAOUSDT from 2024-04-11. Symbol order is the file order, so listed neighbours form
partition-key ranges that a single run materializes.
"""

import datetime as dt
import os
import subprocess
import sys

from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    DagsterInstance,
    Definitions,
    PartitionKeyRange,
    asset,
    build_schedule_context,
)

from cryptolake_assets.retries import TRANSIENT_RETRY_POLICY
from cryptolake_assets.schedules import (
    DAILY_JOB_NAME,
    DAILY_SYMBOL_JOB_NAME,
    JOBS,
    REFERENCE_JOB_NAME,
    SCHEDULES,
    daily_assets_close_schedule,
    daily_close_schedule,
    intraday_refresh_schedule,
    reference_daily_schedule,
)
from partitions import daily_partitions, daily_symbol_partitions, universe_symbols

ALL = universe_symbols()
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


@asset(key=["bronze", "klines"], partitions_def=daily_symbol_partitions, backfill_policy=BackfillPolicy.single_run())
def klines_stub(context: AssetExecutionContext) -> None:
    context.add_output_metadata({"keys": len(context.partition_keys)})


@asset(key=["gold", "market_breadth"], partitions_def=daily_partitions)
def breadth_stub() -> None:
    return None


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def definitions(*assets) -> Definitions:
    return Definitions(assets=list(assets), jobs=JOBS, schedules=SCHEDULES)


def evaluate(schedule, when: dt.datetime, defs: Definitions):
    context = build_schedule_context(scheduled_execution_time=when, repository_def=defs.get_repository_def())
    return schedule.evaluate_tick(context)


def requested_keys(run_requests) -> list[str]:
    keys = []
    for request in run_requests:
        if request.partition_key is not None:
            keys.append(request.partition_key)
        else:
            key_range = PartitionKeyRange(request.tags[RANGE_START], request.tags[RANGE_END])
            keys += daily_symbol_partitions.get_partition_keys_in_range(key_range)
    return keys


def test_daily_close_requests_the_closed_day_in_blocks_of_listed_symbols():
    result = evaluate(daily_close_schedule, at(2024, 7, 3, 0, 10), definitions(klines_stub))

    assert [(r.run_key, r.tags.get(RANGE_START), r.tags.get(RANGE_END)) for r in result.run_requests] == [
        ("close:2024-07-02:2024-07-02|USDCUSDT...2024-07-02|DAIUSDT", "2024-07-02|USDCUSDT", "2024-07-02|DAIUSDT"),
        ("close:2024-07-02:2024-07-02|TUSDUSDT...2024-07-02|RUNEUSDT", "2024-07-02|TUSDUSDT", "2024-07-02|RUNEUSDT"),
        ("close:2024-07-02:2024-07-02|NEARUSDT...2024-07-02|OPUSDT", "2024-07-02|NEARUSDT", "2024-07-02|OPUSDT"),
    ]
    assert all(r.tags["cryptolake/automation"] == "daily_close" for r in result.run_requests)
    keys = requested_keys(result.run_requests)
    expected = [f"2024-07-02|{s}" for s in ALL if s not in {"BUSDUSDT", "AGIXUSDT", "OCEANUSDT"}]
    assert sorted(keys) == sorted(expected)
    assert len(keys) == 47  # the 50-symbol universe less BUSD (delisted 2023-12-15), AGIX and OCEAN (2024-07-01)


def test_last_listed_day_is_still_requested():
    result = evaluate(daily_close_schedule, at(2024, 7, 2, 0, 10), definitions(klines_stub))

    keys = requested_keys(result.run_requests)
    assert "2024-07-01|AGIXUSDT" in keys and "2024-07-01|OCEANUSDT" in keys
    assert sorted(keys) == sorted(f"2024-07-01|{s}" for s in ALL if s != "BUSDUSDT")


def test_intraday_refresh_requests_today_without_unlisted_symbols():
    result = evaluate(intraday_refresh_schedule, at(2024, 4, 10, 13, 5), definitions(klines_stub))

    keys = requested_keys(result.run_requests)
    assert sorted(keys) == sorted(f"2024-04-10|{s}" for s in ALL if s not in {"BUSDUSDT", "TAOUSDT"})
    assert [r.run_key for r in result.run_requests] == [
        "refresh:2024-04-10T13:05:2024-04-10|USDCUSDT...2024-04-10|DAIUSDT",
        "refresh:2024-04-10T13:05:2024-04-10|TUSDUSDT...2024-04-10|NEARUSDT",
        "refresh:2024-04-10T13:05:2024-04-10|ATOMUSDT...2024-04-10|OPUSDT",
    ]

    listing_day = evaluate(intraday_refresh_schedule, at(2024, 4, 11, 0, 5), definitions(klines_stub))
    assert "2024-04-11|TAOUSDT" in requested_keys(listing_day.run_requests)


def test_no_requests_before_the_first_partition():
    result = evaluate(daily_close_schedule, at(2020, 1, 2, 0, 10), definitions(klines_stub))

    assert result.run_requests == []
    assert result.skip_message == "no partitions for 2020-01-01"


def test_run_requests_materialize_exactly_the_requested_partitions():
    defs = definitions(klines_stub)
    job = defs.resolve_job_def(DAILY_SYMBOL_JOB_NAME)
    result = evaluate(daily_close_schedule, at(2024, 7, 3, 0, 10), defs)

    with DagsterInstance.ephemeral() as instance:
        for request in result.run_requests:
            assert job.execute_in_process(
                instance=instance, tags=request.tags, partition_key=request.partition_key
            ).success
        materialized = instance.get_materialized_partitions(klines_stub.key)

    assert len(result.run_requests) == 3  # three runs, not 32
    assert materialized == {f"2024-07-02|{s}" for s in ALL if s not in {"BUSDUSDT", "AGIXUSDT", "OCEANUSDT"}}


def test_date_only_and_reference_schedules_skip_when_their_job_is_empty():
    defs = definitions(klines_stub)

    close = evaluate(daily_assets_close_schedule, at(2024, 7, 3, 0, 40), defs)
    reference = evaluate(reference_daily_schedule, at(2024, 7, 3, 0, 20), defs)

    assert close.run_requests == [] and close.skip_message == "daily_assets selects no assets"
    assert reference.run_requests == [] and reference.skip_message == "reference_assets selects no assets"


def test_date_only_assets_follow_half_an_hour_later():
    defs = definitions(klines_stub, breadth_stub)

    result = evaluate(daily_assets_close_schedule, at(2024, 7, 3, 0, 40), defs)

    [request] = result.run_requests
    assert (request.partition_key, request.run_key) == ("2024-07-02", "close:2024-07-02")
    job = defs.resolve_job_def(DAILY_JOB_NAME)
    assert job.asset_layer.selected_asset_keys == {breadth_stub.key}


def test_jobs_split_by_partitioning_and_retry_transient_failures():
    defs = definitions(klines_stub, breadth_stub)

    assert {job.name for job in JOBS} == {DAILY_SYMBOL_JOB_NAME, DAILY_JOB_NAME, REFERENCE_JOB_NAME}
    assert defs.resolve_job_def(DAILY_SYMBOL_JOB_NAME).asset_layer.selected_asset_keys == {klines_stub.key}
    assert defs.resolve_job_def(REFERENCE_JOB_NAME).asset_layer.selected_asset_keys == set()
    assert all(job.op_retry_policy == TRANSIENT_RETRY_POLICY for job in JOBS)


def test_schedules_run_by_default_in_utc():
    assert {s.name: (s.cron_schedule, s.default_status.value, s.execution_timezone) for s in SCHEDULES} == {
        "daily_close": ("10 0 * * *", "RUNNING", "UTC"),
        "intraday_refresh": ("5 * * * *", "RUNNING", "UTC"),
        "daily_assets_close": ("40 0 * * *", "RUNNING", "UTC"),
        "daily_assets_refresh": ("35 * * * *", "RUNNING", "UTC"),
        "reference_daily": ("20 0 * * *", "RUNNING", "UTC"),
        "ml_targets": ("10 1 * * *", "RUNNING", "UTC"),
    }


def _statuses_in_a_new_process(automation: str) -> subprocess.CompletedProcess:
    """The code location as `dagster dev` loads it, with CRYPTOLAKE_AUTOMATION set (statuses are read
    when the definitions are imported, so each setting needs its own process)."""
    script = (
        "from cryptolake_assets.definitions import defs\n"
        "for s in defs.schedules: print('schedule', s.name, s.default_status.value)\n"
        "for s in defs.sensors: print('sensor', s.name, s.default_status.value)\n"
    )
    env = {**os.environ, "CRYPTOLAKE_AUTOMATION": automation}
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)


def test_automation_off_starts_every_schedule_and_sensor_stopped():
    process = _statuses_in_a_new_process("OFF ")
    assert process.returncode == 0, process.stderr[-3000:]
    lines = [line.split() for line in process.stdout.splitlines()]
    assert {name for kind, name, _ in lines if kind == "schedule"} == {s.name for s in SCHEDULES}
    assert {"cryptolake_alerts", "run_log_retention_sensor"} <= {name for kind, name, _ in lines if kind == "sensor"}
    assert {status for _, _, status in lines} == {"STOPPED"}


def test_an_unknown_automation_setting_fails_the_load_with_the_accepted_values():
    process = _statuses_in_a_new_process("paused")
    assert process.returncode != 0
    assert "CRYPTOLAKE_AUTOMATION='paused': expected one of on, off" in process.stderr
