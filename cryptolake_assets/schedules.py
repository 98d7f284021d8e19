"""Automation: jobs per partitioning and the schedules that keep them current.

Why schedules and not declarative automation (``AutomationCondition``): a condition evaluates the
whole static symbol dimension, so it would request AGIXUSDT every day after its delisting and
TAOUSDT before its listing, and ``any_deps_missing`` would then hold cross-symbol assets back for
ever. A schedule builds the run requests itself from the universe's listing windows, one run per
contiguous block of listed symbols (a partition-key range; the assets run ranges in one pass).

* ``daily_close`` (00:10 UTC): the day that just closed, date × symbol assets (bronze → silver →
  gold in one run, blocking checks gate the downstream steps).
* ``intraday_refresh`` (hh:05): the current, still open day, hourly.
* ``daily_assets_close`` (00:40) / ``daily_assets_refresh`` (hh:35): date-only assets (cross-symbol
  and market-wide), half an hour after the symbol layer they read.
* ``reference_daily`` (00:20): unpartitioned reference tables.
* ``ml_targets`` (01:10): ``gold/ml_features`` of the day before yesterday again: its target is the
  next day's return, known only once that day has closed (and its 00:40 run has written it).

A closed day is not frozen by the 00:40 run: ``closed_day_sensor`` (sensors/closed_days.py) runs
the date-only assets of a closed day again whenever its silver changed after its gold was computed,
and the alert sensor reports a closed day whose gold still trails its silver.
"""

import datetime as dt
from collections.abc import Sequence
from collections.abc import Set as AbstractSet

from dagster import (
    AssetKey,
    AssetSelection,
    PartitionsDefinition,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
)

from cryptolake_assets.automation_status import default_schedule_status
from cryptolake_assets.retries import TRANSIENT_RETRY_POLICY
from partitions import daily_partitions, daily_symbol_partitions, load_universe
from resources.dagster_internals import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG, record

DAILY_SYMBOL_JOB_NAME = "daily_symbol_assets"
DAILY_JOB_NAME = "daily_assets"
REFERENCE_JOB_NAME = "reference_assets"
AUTOMATION_TAG = "cryptolake/automation"
# Crashed run processes (not failed steps) are retried by the run-retry daemon when dagster.yaml
# enables ``run_retries``; failed steps are retried by the op retry policy instead.
RUN_TAGS = {"dagster/max_retries": "1"}
STREAM_JOB_NAME = "stream_assets"
STREAM_TAG_KEY, STREAM_TAG_VALUE = "pipeline", "stream"


@record
class PartitionedLikeSelection(AssetSelection):
    """Materializable assets whose partitions definition equals ``partitions_def`` (None = unpartitioned),
    except the live stream's (tag ``pipeline=stream``: the landing sensor materializes those).

    Lets the jobs be declared here without importing the asset modules: the selection resolves
    against whatever assets the code location holds.
    """

    partitions_def: PartitionsDefinition | None

    def resolve_inner(self, asset_graph, allow_missing: bool) -> AbstractSet[AssetKey]:
        return {
            key
            for key in asset_graph.materializable_asset_keys
            if asset_graph.get(key).partitions_def == self.partitions_def
            and asset_graph.get(key).tags.get(STREAM_TAG_KEY) != STREAM_TAG_VALUE
        }


daily_symbol_job = define_asset_job(
    DAILY_SYMBOL_JOB_NAME,
    selection=PartitionedLikeSelection(partitions_def=daily_symbol_partitions),
    description="Bronze → silver → gold assets partitioned by UTC day × symbol.",
    op_retry_policy=TRANSIENT_RETRY_POLICY,
    run_tags=RUN_TAGS,
)
daily_job = define_asset_job(
    DAILY_JOB_NAME,
    selection=PartitionedLikeSelection(partitions_def=daily_partitions),
    description="Cross-symbol and market-wide assets partitioned by UTC day.",
    op_retry_policy=TRANSIENT_RETRY_POLICY,
    run_tags=RUN_TAGS,
)
reference_job = define_asset_job(
    REFERENCE_JOB_NAME,
    selection=PartitionedLikeSelection(partitions_def=None),
    description="Unpartitioned reference tables (dimensions).",
    op_retry_policy=TRANSIENT_RETRY_POLICY,
    run_tags=RUN_TAGS,
)
JOBS = [daily_symbol_job, daily_job, reference_job]
# The live stream's tables (landing files → bronze/trades → silver/bars_1s → gold/bars_1m, compaction),
# run by the landing sensor and `cryptolake collect --materialize`, not by the kline schedules.
stream_job = define_asset_job(
    STREAM_JOB_NAME,
    selection=AssetSelection.tag(STREAM_TAG_KEY, STREAM_TAG_VALUE),
    description="Live stream: landed trades and quotes → bronze → 1-second and 1-minute bars, daily Parquet compaction.",
    op_retry_policy=TRANSIENT_RETRY_POLICY,
    run_tags=RUN_TAGS,
)


def listed_symbol_blocks(day: dt.date) -> list[tuple[str, ...]]:
    """Symbols listed on ``day``, grouped into runs of neighbours in the partition order."""
    listed = {info.symbol for info in load_universe() if info.is_listed_on(day)}
    blocks: list[list[str]] = []
    previous_listed = False
    for symbol in daily_symbol_partitions.get_partitions_def_for_dimension("symbol").get_partition_keys():
        if symbol in listed:
            if not previous_listed:
                blocks.append([])
            blocks[-1].append(symbol)
        previous_listed = symbol in listed
    return [tuple(block) for block in blocks]


def _has_partition(day: dt.date) -> bool:
    return str(day) in daily_partitions.get_partition_keys()


def daily_symbol_run_requests(day: dt.date, purpose: str, run_key_prefix: str) -> list[RunRequest]:
    """One run per block of symbols listed on ``day``; none for days outside the partitions."""
    if not _has_partition(day):
        return []
    requests = []
    for block in listed_symbol_blocks(day):
        first, last = f"{day}|{block[0]}", f"{day}|{block[-1]}"
        tags = {AUTOMATION_TAG: purpose}
        if first == last:
            requests.append(RunRequest(run_key=f"{run_key_prefix}:{first}", partition_key=first, tags=tags))
        else:
            tags |= {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}
            requests.append(RunRequest(run_key=f"{run_key_prefix}:{first}...{last}", tags=tags))
    return requests


def _job_is_empty(context: ScheduleEvaluationContext, job_name: str) -> bool:
    repository = context.repository_def
    return repository is not None and not repository.get_job(job_name).asset_layer.selected_asset_keys


def _tick(context: ScheduleEvaluationContext) -> dt.datetime:
    return context.scheduled_execution_time.astimezone(dt.UTC)


@schedule(
    name="daily_close",
    cron_schedule="10 0 * * *",
    execution_timezone="UTC",
    target=daily_symbol_job,
    default_status=default_schedule_status(),
    description="Shortly after 00:00 UTC: the day that just closed, for every symbol listed that day.",
)
def daily_close_schedule(context: ScheduleEvaluationContext):
    day = _tick(context).date() - dt.timedelta(days=1)
    return daily_symbol_run_requests(day, "daily_close", f"close:{day}") or SkipReason(f"no partitions for {day}")


@schedule(
    name="intraday_refresh",
    cron_schedule="5 * * * *",
    execution_timezone="UTC",
    target=daily_symbol_job,
    default_status=default_schedule_status(),
    description="Hourly: the current (still open) UTC day, for every symbol listed today.",
)
def intraday_refresh_schedule(context: ScheduleEvaluationContext):
    tick = _tick(context)
    return daily_symbol_run_requests(tick.date(), "intraday_refresh", f"refresh:{tick:%Y-%m-%dT%H:%M}") or SkipReason(
        f"no partitions for {tick.date()}"
    )


def _date_only_request(context: ScheduleEvaluationContext, day: dt.date, purpose: str, run_key: str):
    if _job_is_empty(context, DAILY_JOB_NAME):
        return SkipReason(f"{DAILY_JOB_NAME} selects no assets")
    if not _has_partition(day):
        return SkipReason(f"no partition for {day}")
    return [RunRequest(run_key=run_key, partition_key=str(day), tags={AUTOMATION_TAG: purpose})]


@schedule(
    name="daily_assets_close",
    cron_schedule="40 0 * * *",
    execution_timezone="UTC",
    target=daily_job,
    default_status=default_schedule_status(),
    description="00:40 UTC, after the symbol layer: date-only assets for the day that just closed.",
)
def daily_assets_close_schedule(context: ScheduleEvaluationContext):
    day = _tick(context).date() - dt.timedelta(days=1)
    return _date_only_request(context, day, "daily_close", f"close:{day}")


@schedule(
    name="daily_assets_refresh",
    cron_schedule="35 * * * *",
    execution_timezone="UTC",
    target=daily_job,
    default_status=default_schedule_status(),
    description="Hourly, half an hour after the symbol refresh: date-only assets for the current day.",
)
def daily_assets_refresh_schedule(context: ScheduleEvaluationContext):
    tick = _tick(context)
    return _date_only_request(context, tick.date(), "intraday_refresh", f"refresh:{tick:%Y-%m-%dT%H:%M}")


@schedule(
    name="reference_daily",
    cron_schedule="20 0 * * *",
    execution_timezone="UTC",
    target=reference_job,
    default_status=default_schedule_status(),
    description="Daily: unpartitioned reference tables.",
)
def reference_daily_schedule(context: ScheduleEvaluationContext):
    if _job_is_empty(context, REFERENCE_JOB_NAME):
        return SkipReason(f"{REFERENCE_JOB_NAME} selects no assets")
    return [RunRequest(run_key=f"reference:{_tick(context):%Y-%m-%d}", tags={AUTOMATION_TAG: "daily"})]


ML_FEATURES_KEY = AssetKey(["gold", "ml_features"])


@schedule(
    name="ml_targets",
    cron_schedule="10 1 * * *",
    execution_timezone="UTC",
    target=daily_job,
    default_status=default_schedule_status(),
    description="01:10 UTC: gold/ml_features of the day before yesterday again, filling its next-day target.",
)
def ml_targets_schedule(context: ScheduleEvaluationContext):
    day = _tick(context).date() - dt.timedelta(days=2)
    repository = context.repository_def
    if (
        repository is not None
        and ML_FEATURES_KEY not in repository.get_job(DAILY_JOB_NAME).asset_layer.selected_asset_keys
    ):
        return SkipReason(f"{DAILY_JOB_NAME} has no {ML_FEATURES_KEY.to_user_string()}")
    if not _has_partition(day):
        return SkipReason(f"no partition for {day}")
    return [
        RunRequest(
            run_key=f"ml_targets:{day}",
            partition_key=str(day),
            asset_selection=[ML_FEATURES_KEY],
            tags={AUTOMATION_TAG: "ml_targets"},
        )
    ]


SCHEDULES: Sequence = [
    daily_close_schedule,
    intraday_refresh_schedule,
    daily_assets_close_schedule,
    daily_assets_refresh_schedule,
    reference_daily_schedule,
    ml_targets_schedule,
]
