"""Per-partition materialization metadata written by the I/O manager.

Dagster copies a run's output metadata onto the materialization of every partition the run covers,
so a 3-day × 2-symbol range run would record its total (``rows = 144``) on each partition holding
24 bars. The I/O manager knows each partition's rows, so it records, per partition, through
``add_asset_metadata(..., partition_key=...)`` (which overrides the run-wide value on that
partition's event only):

* ``dagster/partition_row_count`` and ``rows``: the partition's rows;
* ``rows_replaced``: the rows the partition held before;
* ``partitions`` / ``days`` (run sizes the assets report): 1;
* counts of empty partitions or days (``empty_partitions``, ``partitions_without_bars``,
  ``days_without_value``, ``days_without_snapshot``, ``missing_days``): 1 if the partition has no
  rows, else 0; ``days_with_snapshots``: the opposite;
* ``first_<column>`` / ``last_<column>`` (``metadata.time_span``): the partition's own span.

``dagster/row_count`` stays the row count of the whole table after the write: that is what the
UI's asset page shows as "Row count" (Dagster: "the number of rows in the table").
"""

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import polars as pl
from dagster import (
    AssetKey,
    DagsterInvariantViolationError,
    MetadataValue,
    MultiPartitionsDefinition,
    OutputContext,
    TableColumn,
    TableSchema,
    TimeWindowPartitionsDefinition,
)


class PartitionColumn(NamedTuple):
    dimension: str | None  # None for a single-dimension partitions definition
    column: str
    time_window: TimeWindowPartitionsDefinition | None  # the dimension, when it is a time window


RUN_SIZE_KEYS = ("partitions", "days")
EMPTY_COUNT_KEYS = (
    "empty_partitions",
    "partitions_without_bars",
    "days_without_value",
    "days_without_snapshot",
    "missing_days",
)
NONEMPTY_COUNT_KEYS = ("days_with_snapshots",)


def partition_columns(context: OutputContext, frame_columns: Sequence[str]) -> list[PartitionColumn]:
    """The output's partition columns, in dimension order (empty: unpartitioned, or an expression)."""
    if not context.has_asset_key or not context.has_asset_partitions:
        return []
    partition_expr = (context.definition_metadata or {}).get("partition_expr")
    partitions_def = context.asset_partitions_def
    if isinstance(partitions_def, MultiPartitionsDefinition):
        if not isinstance(partition_expr, Mapping):
            return []
        found = [
            PartitionColumn(
                d.name,
                str(partition_expr.get(d.name)),
                d.partitions_def if isinstance(d.partitions_def, TimeWindowPartitionsDefinition) else None,
            )
            for d in partitions_def.partitions_defs
        ]
    else:
        found = [
            PartitionColumn(
                None,
                str(partition_expr or "date"),
                partitions_def if isinstance(partitions_def, TimeWindowPartitionsDefinition) else None,
            )
        ]
    return found if all(c.column in frame_columns for c in found) else []


def _column_value(column: PartitionColumn, value: str) -> Any:
    if column.time_window is None:
        return value
    return column.time_window.time_window_for_partition_key(value).start.date()


def _partition_values(key: Any, columns: Sequence[PartitionColumn]) -> tuple:
    if columns[0].dimension is None:
        return (_column_value(columns[0], str(key)),)
    by_dimension = key.keys_by_dimension
    return tuple(_column_value(c, by_dimension[c.dimension]) for c in columns)


def _span(series: pl.Series) -> tuple[str, str]:
    return str(series.min()), str(series.max())


def _span_series(frame: pl.DataFrame, column: str, first: object, last: object) -> pl.Series | None:
    """The column as ``time_span`` saw it: as stored, or epoch milliseconds as datetimes."""
    series = frame[column]
    candidates = [series]
    if series.dtype.is_integer():
        candidates.append(pl.from_epoch(series, time_unit="ms"))
    for candidate in candidates:
        if _span(candidate) == (first, last):
            return candidate
    return None


def add_partition_metadata(
    context: OutputContext,
    frame: pl.DataFrame,
    columns: Sequence[PartitionColumn],
    deleted_by_partition: Mapping[tuple, int],
) -> None:
    """Record each partition's own figures on its materialization (see the module docstring)."""
    keys = list(context.asset_partition_keys)
    names = [c.column for c in columns]
    output_metadata = dict(context.output_metadata or {})
    spans: list[tuple[str, pl.Series]] = []
    for name, value in output_metadata.items():
        if name.startswith("first_") and f"last_{name[6:]}" in output_metadata and name[6:] in frame.columns:
            first, last = value, output_metadata[f"last_{name[6:]}"]
            first = getattr(first, "value", first)
            last = getattr(last, "value", last)
            if frame.is_empty():
                continue
            series = _span_series(frame, name[6:], first, last)
            if series is not None:
                spans.append((name[6:], series))
    sized = [key for key in RUN_SIZE_KEYS if isinstance(output_metadata.get(key), (int, MetadataValue))]
    empties = [key for key in EMPTY_COUNT_KEYS if isinstance(output_metadata.get(key), (int, MetadataValue))]
    nonempties = [key for key in NONEMPTY_COUNT_KEYS if isinstance(output_metadata.get(key), (int, MetadataValue))]

    groups: dict[tuple, dict[str, Any]] = {}
    if not frame.is_empty():
        indexed = frame.select(names).with_columns([series.alias(f"__span_{column}") for column, series in spans])
        aggregations = [pl.len().alias("__rows")]
        for column, _ in spans:
            aggregations += [
                pl.col(f"__span_{column}").min().alias(f"__first_{column}"),
                pl.col(f"__span_{column}").max().alias(f"__last_{column}"),
            ]
        for row in indexed.group_by(names).agg(aggregations).iter_rows(named=True):
            groups[tuple(row[n] for n in names)] = row

    by_partition: dict[str, dict[str, Any]] = {}
    for key in keys:
        values = _partition_values(key, columns)
        group = groups.get(values)
        rows = int(group["__rows"]) if group else 0
        metadata: dict[str, Any] = {
            "dagster/partition_row_count": rows,
            "rows_replaced": int(deleted_by_partition.get(values, 0)),
        }
        if "rows" in output_metadata:
            metadata["rows"] = rows
        for name in sized:
            metadata[name] = 1
        for name in empties:
            metadata[name] = int(rows == 0)
        for name in nonempties:
            metadata[name] = int(rows > 0)
        for column, _ in spans:
            metadata[f"first_{column}"] = MetadataValue.text(str(group[f"__first_{column}"]) if group else "-")
            metadata[f"last_{column}"] = MetadataValue.text(str(group[f"__last_{column}"]) if group else "-")
        by_partition[key] = metadata
    try:
        step_context = context.step_context
    except DagsterInvariantViolationError:  # an OutputContext built outside a step (direct I/O manager calls)
        return
    add_asset_metadata_by_partition(step_context, context.asset_key, by_partition)


def add_asset_metadata_by_partition(
    step_context: Any, asset_key: AssetKey, by_partition: Mapping[str, Mapping[str, Any]]
) -> None:
    """``add_asset_metadata(metadata, asset_key, partition_key)`` for many partitions of the output.

    The public ``StepExecutionContext.add_asset_metadata`` checks each key against the run's whole
    partition range (``get_partition_keys_in_range``, O(partitions) per call) and copies its
    accumulator per call: 730 partitions took 10 s here, a 2-year × 35-symbol range would take
    hours. Callers pass the keys of the partitions they write, so the check is moot; we
    add them all in one copy of Dagster's accumulator (private API from resources/dagster_internals.py,
    pinned by tests/test_dagster_internals_contract.py and
    ``test_per_partition_metadata_uses_dagsters_accumulator`` in tests/test_duckdb_io_manager.py),
    and fall back to the public call one by one if that API changes.
    """
    try:
        from resources.dagster_internals import AssetMetadataHandle, OutputMetadataAccumulator

        accumulator = step_context._metadata_accumulator
        merged = dict(accumulator.per_output_metadata)
    except (ImportError, AttributeError):
        for key, metadata in by_partition.items():
            step_context.add_asset_metadata(metadata, asset_key=asset_key, partition_key=key)
        return
    for key, metadata in by_partition.items():
        handle = AssetMetadataHandle(asset_key=asset_key, partition_key=key)
        merged[handle] = {**merged.get(handle, {}), **metadata}
    step_context._metadata_accumulator = OutputMetadataAccumulator(per_output_metadata=merged)


def covers_one_partition(context: OutputContext) -> bool:
    """Whether the output is unpartitioned or a single partition (not a range run)."""
    # A range run has no partition key (it carries range tags instead).
    return not context.has_asset_partitions or context.has_partition_key


def record_output(
    context: OutputContext,
    frame: pl.DataFrame,
    table_slice: Any,
    written: Any,
    columns: Sequence[PartitionColumn],
    *,
    extra: Mapping[str, Any] | None = None,
    query: str | None = None,
) -> None:
    """The metadata both I/O managers record for writing ``table_slice`` (``written``: their
    ``SliceWrite``): the
    table's row count, the rows replaced and ``extra`` (table-level figures: lake version, URI), then each partition's own figures.

    ``query`` (how to read this slice back) goes onto the event of a one-partition run only: Dagster
    copies output metadata onto every partition of a range run, where the range's query would be
    wrong for each partition (house rule: metadata is per partition), so a range run logs it.
    """
    schema, table = table_slice.schema, table_slice.table
    metadata: dict[str, Any] = {
        "dagster/row_count": written.table_rows,
        "rows_replaced": written.deleted,
        **(extra or {}),
    }
    definition = context.definition_metadata or {}
    if "dagster/table_name" not in definition:
        # Medallion assets declare it (cryptolake_assets/medallion.py): not repeated on every event.
        metadata["dagster/table_name"] = f"{schema}.{table}"
    if query is not None:
        if covers_one_partition(context):
            metadata["query"] = MetadataValue.text(query)
        else:
            context.log.info(f"{schema}.{table}: this run's rows are {query}")
    if "dagster/column_schema" not in definition:
        # Assets that declare their schema (with column descriptions) keep it; others get the frame's.
        metadata["dagster/column_schema"] = TableSchema(
            columns=[TableColumn(name=n, type=str(t)) for n, t in frame.schema.items()]
        )
    context.add_output_metadata(metadata)
    if columns:
        add_partition_metadata(context, frame, columns, written.deleted_by_partition)
