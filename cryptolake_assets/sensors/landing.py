"""``stream_landing_sensor``: closed landing files of the live stream become runs of their partitions.

Each tick lists the closed files of today and yesterday (a file of 23:59 closes after midnight) per
symbol in the partitions, and requests one ``stream_assets`` run per (day, symbol) whose set of
closed files changed since the last request. The cursor keeps, per partition, the number of closed
files and the newest one; the run key carries them, so each change is answered once.
"""

import datetime as dt
import json
from pathlib import Path

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, SkipReason, sensor

from cryptolake_assets.schedules import AUTOMATION_TAG, stream_job
from partitions import daily_partitions, daily_symbol_partitions
from resources.landing import closed_files, landing_root

STREAM_LANDING_SENSOR_NAME = "stream_landing_sensor"
DAYS_WATCHED = 2


def landing_signatures(root: Path, now: dt.datetime) -> dict[str, str]:
    """``date|symbol`` → ``<closed files>:<newest file>`` for the watched days with closed files."""
    today = now.astimezone(dt.UTC).date()
    days = {str(today - dt.timedelta(days=n)) for n in range(DAYS_WATCHED)} & set(daily_partitions.get_partition_keys())
    symbols = set(daily_symbol_partitions.get_partitions_def_for_dimension("symbol").get_partition_keys())
    grouped: dict[str, list[str]] = {}
    for landed in closed_files(root):
        key = f"{landed.day}|{landed.symbol}"
        if str(landed.day) in days and landed.symbol in symbols:
            grouped.setdefault(key, []).append(landed.path.name)
    return {key: f"{len(names)}:{max(names)}" for key, names in sorted(grouped.items())}


def landing_requests(root: Path, now: dt.datetime, cursor: str | None) -> tuple[list[RunRequest], str]:
    seen = json.loads(cursor) if cursor else {}
    current = landing_signatures(root, now)
    requests = [
        RunRequest(run_key=f"stream:{key}:{signature}", partition_key=key, tags={AUTOMATION_TAG: STREAM_LANDING_SENSOR_NAME})
        for key, signature in current.items()
        if seen.get(key) != signature
    ]
    return requests, json.dumps(current, sort_keys=True)


@sensor(
    name=STREAM_LANDING_SENSOR_NAME,
    job=stream_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Turns closed live-stream landing files (CRYPTOLAKE_LANDING) into stream_assets runs of their day × symbol partitions.",
)
def stream_landing_sensor(context: SensorEvaluationContext):
    requests, cursor = landing_requests(landing_root(), dt.datetime.now(dt.UTC), context.cursor)
    if not requests:
        return SensorResult(skip_reason=SkipReason("no new closed landing files"), cursor=cursor)
    return SensorResult(run_requests=requests, cursor=cursor)
