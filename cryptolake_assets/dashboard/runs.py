"""Recent runs and failing checks from the Dagster instance at ``DAGSTER_HOME``, read-only.

Nothing here launches, cancels or writes anything; a missing instance is reported as ``None`` so the
page can say what to run instead.
"""

import datetime as dt
import os
from pathlib import Path

import polars as pl
from dagster import AssetCheckEvaluation, DagsterInstance, EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
from dagster._core.storage.sqlalchemy_compat import db_select
from dagster._serdes import deserialize_value

RUN_SCHEMA = {
    "run_id": pl.String(), "job": pl.String(), "status": pl.String(), "partitions": pl.String(),
    "started": pl.Datetime("us", "UTC"), "seconds": pl.Float64(),
}
CHECK_SCHEMA = {
    "asset": pl.String(), "check": pl.String(), "partition": pl.String(), "severity": pl.String(),
    "failing_rows": pl.Int64(), "evaluated": pl.Datetime("us", "UTC"), "description": pl.String(),
    "failing_partitions": pl.String(), "failing_sample": pl.String(),
}


def open_instance() -> DagsterInstance | None:
    """The instance at ``DAGSTER_HOME`` when that directory exists (never creates one)."""
    home = os.environ.get("DAGSTER_HOME")
    if not home or not Path(home).is_dir():
        return None
    return DagsterInstance.get()


def _partitions(tags: dict[str, str]) -> str:
    if "dagster/partition" in tags:
        return tags["dagster/partition"]
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    return f"{start} .. {end}" if start else "-"


def recent_runs(instance: DagsterInstance, limit: int = 20) -> pl.DataFrame:
    """The newest ``limit`` runs: id, job, status, partitions, start time and duration."""
    rows = []
    for record in instance.get_run_records(limit=limit):
        run = record.dagster_run
        started = dt.datetime.fromtimestamp(record.start_time, dt.UTC) if record.start_time else None
        seconds = (record.end_time - record.start_time) if record.start_time and record.end_time else None
        rows.append((run.run_id, run.job_name, run.status.value, _partitions(dict(run.tags)), started, seconds))
    return pl.DataFrame(rows, schema=RUN_SCHEMA, orient="row")


def failing_checks(instance: DagsterInstance, scan: int = 5000) -> pl.DataFrame:
    """Checks whose latest evaluation (per asset, check and partition) among the newest ``scan``
    evaluations failed, with the failing partitions and the sample rows the check recorded."""
    storage = instance.event_log_storage
    if not isinstance(storage, SqlEventLogStorage):
        return pl.DataFrame(schema=CHECK_SCHEMA)
    table = AssetCheckExecutionsTable
    statuses = [AssetCheckExecutionRecordStatus.SUCCEEDED.value, AssetCheckExecutionRecordStatus.FAILED.value]
    query = (
        db_select([table.c.evaluation_event])
        .where(table.c.execution_status.in_(statuses))
        .order_by(table.c.evaluation_event_storage_id.desc())
        .limit(scan)
    )
    with storage.index_connection() as connection:
        serialized = [row[0] for row in connection.execute(query).fetchall()]
    seen: set[tuple[str, str, str]] = set()
    rows = []
    for text in serialized:
        entry = deserialize_value(text, EventLogEntry)
        evaluation = entry.dagster_event.event_specific_data if entry.dagster_event else None
        if not isinstance(evaluation, AssetCheckEvaluation):
            continue
        key = (evaluation.asset_key.to_user_string(), evaluation.check_name, evaluation.partition or "-")
        if key in seen:
            continue  # an older evaluation of the same check and partition
        seen.add(key)
        if evaluation.passed:
            continue
        metadata = {name: getattr(value, "value", value) for name, value in evaluation.metadata.items()}
        failing = metadata.get("failing_rows")
        rows.append((
            *key, evaluation.severity.value, int(failing) if isinstance(failing, (int, float)) else None,
            dt.datetime.fromtimestamp(entry.timestamp, dt.UTC), evaluation.description or "",
            str(metadata.get("failing_partitions", key[2])), str(metadata.get("failing_sample", "")),
        ))
    return pl.DataFrame(rows, schema=CHECK_SCHEMA, orient="row").sort("evaluated", descending=True)
