"""Materialization metadata helpers shared by assets: previews and time spans users see in the UI."""

from collections.abc import Callable, Mapping
from typing import Any

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetKey,
    DagsterInvariantViolationError,
    MetadataValue,
    MultiPartitionKey,
    TableColumn,
    TableSchema,
)

from resources.partition_metadata import add_asset_metadata_by_partition


def table_schema_of(
    schema: Mapping[str, pl.DataType], descriptions: Mapping[str, str] | None = None, *, complete: bool = False
) -> TableSchema:
    """A Dagster ``TableSchema`` (the UI's column list) from a Polars schema, with column
    descriptions; ``complete`` requires every column to be described."""
    descriptions = descriptions or {}
    undescribed = [name for name in schema if name not in descriptions]
    if complete and undescribed:
        raise ValueError(f"columns without a description: {undescribed}")
    return TableSchema(
        columns=[TableColumn(name=n, type=str(t), description=descriptions.get(n)) for n, t in schema.items()]
    )


def markdown_preview(frame: pl.DataFrame, rows: int = 10, columns: list[str] | None = None) -> MetadataValue:
    """A small markdown table of the first rows (what the UI shows as a preview)."""
    sample = frame.select(columns) if columns else frame
    sample = sample.head(rows)
    if sample.is_empty():
        return MetadataValue.md("_no rows_")
    header = "| " + " | ".join(sample.columns) + " |"
    rule = "|" + "---|" * len(sample.columns)
    body = ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in sample.iter_rows()]
    return MetadataValue.md("\n".join([header, rule, *body]))


def time_span(frame: pl.DataFrame, column: str) -> dict[str, MetadataValue]:
    """First/last value of a time column as text metadata (empty frames say so)."""
    if frame.is_empty():
        return {f"first_{column}": MetadataValue.text("-"), f"last_{column}": MetadataValue.text("-")}
    return {
        f"first_{column}": MetadataValue.text(str(frame[column].min())),
        f"last_{column}": MetadataValue.text(str(frame[column].max())),
    }


# Dagster copies a run's output metadata onto the materialization event of EVERY partition the run
# covers, and keeps every event for ever: a 600×300 PNG chart is ~34 k characters, so charts on the
# hourly schedule's runs cost ~185 kB of event log per partition (≈ 100 GB a year for the universe).
# Previews and charts are therefore drawn only for a run a person launches for ONE partition (the
# UI's "Materialize" on a partition, `cryptolake demo`'s showcase partitions); ranges, schedules,
# sensors and backfills record the scalar figures only (≤ 5 kB per partition event, measured by
# benchmarks/scale_bench.py). The dashboards draw the same charts from the lake for any range.
RICH_METADATA_MAX_PARTITIONS = 1
# Run tags Dagster sets on runs it launches itself (schedule, sensor, backfill daemon).
AUTOMATION_RUN_TAGS = ("dagster/schedule_name", "dagster/sensor_name", "dagster/backfill")


def launched_by_automation() -> bool:
    """Whether the current run was launched by a schedule, a sensor or a backfill."""
    try:
        tags = AssetExecutionContext.get().run.tags
    except DagsterInvariantViolationError:  # outside a run (direct calls in tests)
        return False
    return any(tag in tags for tag in AUTOMATION_RUN_TAGS)


def rich_metadata(
    partitions: int, entries: Callable[[], dict[str, Any]], limit: int = RICH_METADATA_MAX_PARTITIONS
) -> dict[str, Any]:
    """``entries()`` (previews, charts) for a run a person launched for at most ``limit``
    partitions; nothing otherwise (see ``RICH_METADATA_MAX_PARTITIONS``).

    ``entries`` is called only when kept: a range run does not pay for drawing what it omits.
    """
    if partitions <= limit and not launched_by_automation():
        return entries()
    return {}


def run_wide(figures: dict[str, Any]) -> dict[str, Any]:
    """Figures about a run's whole window (distinct counts, the latest day's summary, request
    counts, the source): kept on the event of a one-partition or unpartitioned run, where they are
    that partition's own; a range run logs the scalar ones instead, because Dagster would copy them
    onto every partition's event (house rule: metadata is per partition)."""
    try:
        context = AssetExecutionContext.get()
    except DagsterInvariantViolationError:  # outside a run (direct calls in tests)
        return figures
    if context.has_partition_key or not context.has_partition_key_range:
        return figures
    shown = []
    for key, value in figures.items():
        plain = value.value if isinstance(value, MetadataValue) else value
        if isinstance(plain, (int, float)) or (isinstance(plain, str) and "\n" not in plain):
            shown.append(f"{key}={plain}")  # previews and charts stay out of the log
    if shown:
        context.log.info("this run's figures: " + ", ".join(shown))
    return {}


def add_partition_figures(
    context: AssetExecutionContext, asset_key: AssetKey, figures: pl.DataFrame, dimensions: dict[str, str]
) -> None:
    """Record per-partition figures on each partition's materialization.

    ``figures`` has one row per partition of the run: the partition columns named by ``dimensions``
    (dimension -> column, e.g. ``{"date": "date", "symbol": "symbol"}``) and one int column per
    figure. A range run's output metadata is copied onto every partition; these values override it
    there, so each partition shows its own figure (the run-wide total stays on the run's output).
    """
    names = [c for c in figures.columns if c not in dimensions.values()]
    by_partition = {}
    for row in figures.iter_rows(named=True):
        by_dimension = {dimension: str(row[column]) for dimension, column in dimensions.items()}
        key = MultiPartitionKey(by_dimension) if len(by_dimension) > 1 else next(iter(by_dimension.values()))
        by_partition[key] = {name: int(row[name] or 0) for name in names}
    add_asset_metadata_by_partition(context.get_step_execution_context(), asset_key, by_partition)
