"""Recent runs from the Dagster instance at ``DAGSTER_HOME``, read-only (public ``get_run_records``).

Nothing here launches, cancels or writes anything; a missing instance is reported as ``None`` so the
page can say what to run instead. Check results come from the lake (``quality/check_results``).
"""

import datetime as dt
import os
from pathlib import Path

import polars as pl
from dagster import DagsterInstance

from resources.dagster_internals import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

RUN_SCHEMA = pl.Schema(
    {
        "run_id": pl.String(),
        "job": pl.String(),
        "status": pl.String(),
        "partitions": pl.String(),
        "started": pl.Datetime("us", "UTC"),
        "seconds": pl.Float64(),
    }
)


def open_instance() -> DagsterInstance | None:
    """The instance at ``DAGSTER_HOME`` when that directory exists (never creates one)."""
    home = os.environ.get("DAGSTER_HOME")
    if not home or not Path(home).is_dir():
        return None
    return DagsterInstance.get()


def _partitions(tags: dict[str, str]) -> str:
    if PARTITION_NAME_TAG in tags:
        return tags[PARTITION_NAME_TAG]
    start, end = tags.get(ASSET_PARTITION_RANGE_START_TAG), tags.get(ASSET_PARTITION_RANGE_END_TAG)
    return f"{start} .. {end}" if start else "n/a"  # "-" alone renders as an empty markdown list item


def recent_runs(instance: DagsterInstance, limit: int = 20) -> pl.DataFrame:
    """The newest ``limit`` runs: id, job, status, partitions, start time and duration."""
    rows = []
    for record in instance.get_run_records(limit=limit):
        run = record.dagster_run
        started = dt.datetime.fromtimestamp(record.start_time, dt.UTC) if record.start_time else None
        seconds = (record.end_time - record.start_time) if record.start_time and record.end_time else None
        rows.append((run.run_id, run.job_name, run.status.value, _partitions(dict(run.tags)), started, seconds))
    return pl.DataFrame(rows, schema=RUN_SCHEMA, orient="row")
