"""``stream_landing_sensor``: closed landing files of the live stream become runs of their partitions.

Each tick lists the closed files of today and yesterday (a file of 23:59 closes after midnight) per
symbol in the partitions, and requests ``stream_assets`` for the (day, symbol) partitions whose set
of closed files changed since the last request: one run per day and block of neighbouring symbols
(a partition-key range; the stream assets run ranges in one pass). The cursor keeps, per
partition, the number of closed files and the newest one; the run key carries them, so each change
is answered once.
"""

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from dagster import RunRequest, SensorEvaluationContext, SensorResult, SkipReason, sensor

from cryptolake_assets.automation_status import default_sensor_status
from cryptolake_assets.schedules import AUTOMATION_TAG, stream_job
from partitions import daily_partitions, daily_symbol_partitions
from resources.dagster_internals import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
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


def stream_run_requests(
    keys: Iterable[str], signatures: dict[str, str] | None = None, purpose: str = STREAM_LANDING_SENSOR_NAME
) -> list[RunRequest]:
    """One request per day and block of symbols adjacent in the partition order (a key range)."""
    order = {
        s: i
        for i, s in enumerate(daily_symbol_partitions.get_partitions_def_for_dimension("symbol").get_partition_keys())
    }
    by_day: dict[str, list[str]] = {}
    for key in keys:
        day, symbol = key.split("|")
        by_day.setdefault(day, []).append(symbol)
    requests = []
    for day, symbols in sorted(by_day.items()):
        blocks: list[list[str]] = []
        for symbol in sorted(set(symbols), key=order.__getitem__):
            if blocks and order[symbol] == order[blocks[-1][-1]] + 1:
                blocks[-1].append(symbol)
            else:
                blocks.append([symbol])
        for block in blocks:
            first, last = f"{day}|{block[0]}", f"{day}|{block[-1]}"
            seen = ",".join((signatures or {}).get(f"{day}|{s}", "") for s in block)
            run_key = f"stream:{first}...{last}:{hashlib.sha1(seen.encode()).hexdigest()[:12]}"
            tags = {AUTOMATION_TAG: purpose}
            if first == last:
                requests.append(RunRequest(run_key=run_key, partition_key=first, tags=tags))
            else:
                tags |= {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}
                requests.append(RunRequest(run_key=run_key, tags=tags))
    return requests


def landing_requests(root: Path, now: dt.datetime, cursor: str | None) -> tuple[list[RunRequest], str]:
    seen = json.loads(cursor) if cursor else {}
    current = landing_signatures(root, now)
    changed = [key for key, signature in current.items() if seen.get(key) != signature]
    return stream_run_requests(changed, current), json.dumps(current, sort_keys=True)


@sensor(
    name=STREAM_LANDING_SENSOR_NAME,
    job=stream_job,
    minimum_interval_seconds=60,
    default_status=default_sensor_status(),
    description="Turns closed live-stream landing files (CRYPTOLAKE_LANDING) into stream_assets runs of their day × symbol partitions.",
)
def stream_landing_sensor(context: SensorEvaluationContext):
    requests, cursor = landing_requests(landing_root(), dt.datetime.now(dt.UTC), context.cursor)
    if not requests:
        return SensorResult(skip_reason=SkipReason("no new closed landing files"), cursor=cursor)
    return SensorResult(run_requests=requests, cursor=cursor)
