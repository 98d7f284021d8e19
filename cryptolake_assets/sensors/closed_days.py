"""``closed_day_sensor``: a closed day's cross-symbol gold follows its silver, not the clock.

The 00:40 ``daily_assets_close`` schedule computes day D−1's cross-symbol gold once, whatever
happened to the 00:10 close of the symbol layer: when that run failed, ran late or was re-run,
gold for D−1 stayed computed from what silver held at 00:40. This sensor compares, for each of the
last few closed days, the newest silver materialization of the day with the newest date-level
gold materialization, and requests the date-level run again when silver is newer and every listed
symbol of the day has silver. The run key carries the newest silver event, so each change of
silver is answered once (a failed answer is retried by the job's retry policy and reported by the
alert sensor as a closed day whose gold is older than its silver).
"""

import datetime as dt
from dataclasses import dataclass

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from cryptolake_assets.automation_status import default_sensor_status
from cryptolake_assets.schedules import AUTOMATION_TAG, DAILY_JOB_NAME, daily_job
from partitions import daily_partitions, load_universe

CLOSED_DAY_SENSOR_NAME = "closed_day_sensor"
SILVER = AssetKey(["silver", "ohlcv"])
DATE_LEVEL_GOLD = AssetKey(["gold", "daily_returns"])  # the first date-level table of the closing run
DAYS_WATCHED = 3


@dataclass(frozen=True)
class ClosedDay:
    day: dt.date
    listed: int  # symbols listed that day
    with_silver: int  # of them, how many have a silver partition
    newest_silver: int | None  # storage id of the newest silver materialization of the day
    newest_gold: int | None  # storage id of the newest date-level gold materialization of the day

    @property
    def complete(self) -> bool:
        return self.listed > 0 and self.with_silver == self.listed

    @property
    def gold_behind(self) -> bool:
        return self.newest_silver is not None and (self.newest_gold is None or self.newest_gold < self.newest_silver)


def closed_day_state(instance: DagsterInstance, day: dt.date) -> ClosedDay:
    """Silver coverage and the newest silver and gold events of one day (a few indexed queries)."""
    listed = [f"{day}|{info.symbol}" for info in load_universe() if info.is_listed_on(day)]
    silver = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=SILVER, asset_partitions=listed), limit=len(listed) * 30 or 1, ascending=False
    ).records
    gold = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=DATE_LEVEL_GOLD, asset_partitions=[str(day)]), limit=1, ascending=False
    ).records
    return ClosedDay(
        day=day,
        listed=len(listed),
        with_silver=len({record.partition_key for record in silver}),
        newest_silver=silver[0].storage_id if silver else None,
        newest_gold=gold[0].storage_id if gold else None,
    )


def closed_days(now: dt.datetime, days: int = DAYS_WATCHED) -> list[dt.date]:
    keys = set(daily_partitions.get_partition_keys())
    today = now.astimezone(dt.UTC).date()
    candidates = [today - dt.timedelta(days=offset) for offset in range(1, days + 1)]
    return [day for day in candidates if str(day) in keys]


def closing_requests(instance: DagsterInstance, now: dt.datetime) -> list[RunRequest]:
    requests = []
    for day in closed_days(now):
        state = closed_day_state(instance, day)
        if state.complete and state.gold_behind:
            requests.append(
                RunRequest(
                    run_key=f"reclose:{day}:{state.newest_silver}",
                    partition_key=str(day),
                    tags={AUTOMATION_TAG: "closed_day_sensor"},
                )
            )
    return requests


@sensor(
    name=CLOSED_DAY_SENSOR_NAME,
    job=daily_job,
    minimum_interval_seconds=300,
    default_status=default_sensor_status(),
    description=(
        "Re-computes a closed day's cross-symbol gold when its silver changed after gold was computed "
        "(a late, failed or re-run close of the symbol layer)."
    ),
)
def closed_day_sensor(context: SensorEvaluationContext):
    repository = context.repository_def
    if repository is not None and not repository.get_job(DAILY_JOB_NAME).asset_layer.selected_asset_keys:
        return SkipReason(f"{DAILY_JOB_NAME} selects no assets")
    requests = closing_requests(context.instance, dt.datetime.now(dt.UTC))
    return requests or SkipReason("every closed day's gold is newer than its silver")
