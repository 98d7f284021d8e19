"""Check results published to the lake (``<lake>/quality/check_results``), so readers of the lake
(the read API's ``/v1/health``, dashboards, a notebook) see which partitions fail which checks
without opening the pipeline's DuckDB file or the Dagster instance.

The table holds the latest result of every (asset, check, partition): a check step replaces the
rows of its asset, its checks and its partitions in one Delta commit, as the I/O manager does for
a table slice. It is partitioned by ``month`` (the first day of the result's month), not by day:
every check step adds a file to each partition it touches, and a table of one partition per day
gained some 20 files a day (0.42 s an open at 21 months, ADR 0005); crowded months are compacted
after the publish that crowds them (``resources.lake.compact_crowded_partitions``). A large range records its per-partition truth here too (failing partitions with
their own counts, every other partition passing), which Dagster's event log keeps only for the
failing ones.
"""

import datetime as dt
import json
import time
from collections.abc import Sequence

import polars as pl

from cryptolake_assets.quality.factory import Finding, TableQuality, describe_finding, partition_date_symbol
from resources.lake import DeltaLake, LakePublishError, publish

LAYER, TABLE = "quality", "check_results"
SAMPLE_ROWS = 5
PUBLISH_ATTEMPTS = 4  # two check steps may commit to the table at once (pool size 2): retry the loser

CHECK_RESULTS_SCHEMA = pl.Schema(
    {
        "date": pl.Date(),
        "month": pl.Date(),  # the partition column: the first day of ``date``'s month
        "symbol": pl.String(),
        "asset": pl.String(),
        "layer": pl.String(),
        "check_name": pl.String(),
        "severity": pl.String(),
        "passed": pl.Boolean(),
        "failing_rows": pl.Int64(),
        "rows_checked": pl.Int64(),
        "description": pl.String(),
        "sample": pl.String(),
        "run_id": pl.String(),
        "evaluated_at": pl.Datetime("us", "UTC"),
    }
)


def _date_symbol(partition: str | None) -> tuple[dt.date | None, str | None]:
    return partition_date_symbol(partition) if partition is not None else (None, None)


def _sample(finding: Finding) -> str | None:
    if finding.passed or finding.rows.is_empty():
        return None
    return json.dumps(json.loads(finding.rows.head(SAMPLE_ROWS).write_json()), default=str)


def result_frame(
    table: TableQuality,
    outcomes: Sequence[tuple[str | None, Finding, int]],
    run_id: str,
    evaluated_at: dt.datetime,
) -> pl.DataFrame:
    """One row per (partition, finding, rows checked); partition None for an unpartitioned table."""
    rows = []
    for partition, finding, rows_checked in outcomes:
        day, symbol = _date_symbol(partition)
        rows.append(
            {
                "date": day,
                "month": day.replace(day=1) if day is not None else None,
                "symbol": symbol,
                "asset": "/".join(table.asset),
                "layer": table.layer,
                "check_name": finding.rule.name,
                "severity": finding.severity.value,
                "passed": finding.passed,
                "failing_rows": finding.count,
                "rows_checked": rows_checked,
                "description": describe_finding(finding),  # the wording Dagster shows
                "sample": _sample(finding),
                "run_id": run_id,
                "evaluated_at": evaluated_at,
            }
        )
    return pl.DataFrame(rows, schema=CHECK_RESULTS_SCHEMA)


def _sql(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def replace_predicate(
    table: TableQuality, checks: Sequence[str], partitions: Sequence[str], *, by_month: bool = True
) -> str:
    """The rows a check step replaces: its asset and checks, over the bounding box of its partitions
    (run ranges are rectangles, as the I/O manager's slices assume). ``by_month`` bounds the
    partition column too; a table written before it existed (partitioned by day) has no ``month``."""
    clauses = [f"asset = {_sql('/'.join(table.asset))}", f"check_name IN ({', '.join(_sql(c) for c in checks)})"]
    keys = [_date_symbol(p) for p in partitions]
    days = [day for day, _ in keys if day is not None]
    if days:
        first, last = min(days), max(days)
        if by_month:  # lets Delta skip other months' partitions without reading their files
            clauses.append(
                f"month >= '{first.replace(day=1).isoformat()}' AND month <= '{last.replace(day=1).isoformat()}'"
            )
        clauses.append(f"date >= '{first.isoformat()}' AND date <= '{last.isoformat()}'")
    symbols = sorted({symbol for _, symbol in keys if symbol is not None})
    if symbols:
        clauses.append(f"symbol IN ({', '.join(_sql(s) for s in symbols)})")
    return " AND ".join(f"({c})" for c in clauses)


def publish_check_results(
    lake: DeltaLake,
    table: TableQuality,
    partitions: Sequence[str],
    outcomes: Sequence[tuple[str | None, Finding, int]],
    run_id: str,
) -> int | None:
    """Replace this step's results in ``<lake>/quality/check_results``; returns the table version."""
    if not outcomes:
        return None
    frame = result_frame(table, outcomes, run_id, dt.datetime.now(dt.UTC))
    checks = sorted({f.rule.name for _, f, _ in outcomes})

    def predicate(columns: set[str]) -> str:
        return replace_predicate(table, checks, partitions, by_month="month" in columns)

    for attempt in range(1, PUBLISH_ATTEMPTS + 1):
        try:
            return publish(
                lake.uri(LAYER, TABLE),
                frame,
                predicate=predicate,
                storage_options=lake.options(),
                retention_days=lake.retention_days,
                vacuum_every_commits=lake.vacuum_every_commits,
                partition_by=["month"],
            )
        except LakePublishError:
            if attempt == PUBLISH_ATTEMPTS:
                raise
            time.sleep(0.2 * attempt)  # a concurrent commit won: re-read the log and try again
    return None
