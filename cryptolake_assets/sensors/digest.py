"""The daily digest: what was materialized (and how many rows), checks passed/failed, failed runs,
stale symbols and still-open problems since the previous digest."""

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Sequence

from dagster import (
    AssetCheckKey,
    AssetKey,
    AssetRecordsFilter,
    DagsterEventType,
    DagsterInstance,
    RunStatusChangeRecordsFilter,
)

from cryptolake_assets.sensors.problems import Problem
from resources.alerting import Alert
from resources.dagster_internals import AssetCheckExecutionRecordStatus

DIGEST_HOUR_UTC = 6  # first tick at or after 06:00 UTC sends yesterday's digest
# A partition's own rows (the I/O manager records them per partition); ``dagster/row_count`` is the
# whole table's, so it counts only for an unpartitioned materialization.
PARTITION_ROW_COUNT_KEYS = ("dagster/partition_row_count", "rows")
TABLE_ROW_COUNT_KEY = "dagster/row_count"
_PAGE = 500


def digest_due(now: dt.datetime, digest_day: str | None) -> bool:
    return now.hour >= DIGEST_HOUR_UTC and digest_day != now.date().isoformat()


def build_digest(
    instance: DagsterInstance,
    asset_keys: Sequence[AssetKey],
    check_keys: Sequence[AssetCheckKey],
    since: dt.datetime,
    now: dt.datetime,
    stale: Sequence[Problem],
    open_problems: int,
) -> Alert:
    after = since.timestamp()
    lines = ["*Materialized*"]
    total_materializations = total_rows = 0
    for key in sorted(asset_keys, key=lambda k: k.to_user_string()):
        count, partitions, rows = _materializations(instance, key, after)
        if count:
            total_materializations += count
            total_rows += rows
            lines.append(
                f"• `{key.to_user_string()}`: {count} materializations, {partitions} partitions, {rows:,} rows"
            )
    if total_materializations == 0:
        lines.append("• nothing")

    passed, failed = _check_counts(instance, check_keys, after)
    lines.append("*Checks*")
    for name in sorted(set(passed) | set(failed)):
        lines.append(f"• `{name}`: {passed[name]} passed, {failed[name]} failed")
    if not passed and not failed:
        lines.append("• none evaluated")

    stale_by_layer: dict[str, list[str]] = defaultdict(list)
    for problem in stale:
        stale_by_layer[problem.fields.get("Asset", problem.group)].append(problem.key.rsplit(":", 1)[1])
    lines.append("*Stale symbols*")
    lines += [f"• `{layer}`: {', '.join(sorted(symbols))}" for layer, symbols in sorted(stale_by_layer.items())]
    if not stale_by_layer:
        lines.append("• none")

    failed_runs = _count_failed_runs(instance, after)
    return Alert(
        status="digest",
        kind="digest",
        title=f"CryptoLake daily digest {now:%Y-%m-%d}",
        text="\n".join(lines),
        fields={
            "Window": f"{since:%Y-%m-%d %H:%M} → {now:%Y-%m-%d %H:%M} UTC",
            "Materializations": str(total_materializations),
            "Rows": f"{total_rows:,}",
            "Checks passed": str(sum(passed.values())),
            "Checks failed": str(sum(failed.values())),
            "Failed runs": str(failed_runs),
            "Stale symbols": str(len(stale)),
            "Open problems": str(open_problems),
        },
    )


def _materializations(instance: DagsterInstance, key: AssetKey, after: float) -> tuple[int, int, int]:
    count, rows, partitions = 0, 0, set()
    cursor = None
    while True:
        result = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, after_timestamp=after), limit=_PAGE, cursor=cursor
        )
        for record in result.records:
            count += 1
            partitions.add(record.partition_key)
            materialization = record.asset_materialization
            metadata = materialization.metadata if materialization else {}
            names = (
                PARTITION_ROW_COUNT_KEYS if record.partition_key else (*PARTITION_ROW_COUNT_KEYS, TABLE_ROW_COUNT_KEY)
            )
            for name in names:
                value = metadata[name].value if name in metadata else None
                if isinstance(value, int):
                    rows += value
                    break
        if not result.has_more:
            return count, len(partitions - {None}) or (1 if count else 0), rows
        cursor = result.cursor


def _check_counts(
    instance: DagsterInstance, check_keys: Sequence[AssetCheckKey], after: float
) -> tuple[Counter, Counter]:
    passed: Counter = Counter()
    failed: Counter = Counter()
    storage = instance.event_log_storage
    for key in check_keys:
        name = f"{key.asset_key.to_user_string()}:{key.name}"
        cursor = None
        while True:
            records = storage.get_asset_check_execution_history(key, limit=_PAGE, cursor=cursor)
            recent = [record for record in records if record.create_timestamp >= after]
            for record in recent:
                if record.status == AssetCheckExecutionRecordStatus.SUCCEEDED:
                    passed[name] += 1
                elif record.status == AssetCheckExecutionRecordStatus.FAILED:
                    failed[name] += 1
            if len(records) < _PAGE or len(recent) < len(records):
                break  # newest first: the rest is older than the window
            cursor = records[-1].id
    return passed, failed


def _count_failed_runs(instance: DagsterInstance, after: float) -> int:
    count, cursor = 0, None
    while True:
        result = instance.fetch_run_status_changes(
            RunStatusChangeRecordsFilter(event_type=DagsterEventType.RUN_FAILURE, after_timestamp=after),
            limit=_PAGE,
            cursor=cursor,
        )
        count += len(result.records)
        if not result.has_more:
            return count
        cursor = result.cursor
