"""The lake as the working store: an I/O manager that keeps every asset in Delta tables.

``CRYPTOLAKE_STORAGE=lake`` binds this I/O manager instead of the DuckDB one (resources/definitions.py);
asset code does not change. Every table (bronze too) is a Delta table at ``<lake>/<layer>/<table>``
(``CRYPTOLAKE_LAKE``: a local path or an ``s3://`` URI, with resources/lake.py's ``DeltaLake`` storage
options), so several processes on several hosts can write it (a Celery or Kubernetes executor) and
readers (``cryptolake serve``, the dashboards: DuckDB over the Delta snapshot) read it as published.

What the DuckDB I/O manager guarantees holds here too (docs/adr/0006-lake-storage.md):

* **slices**: the same per-dimension bounding box (``CryptoLakeDbIOManager._get_table_slice``),
  so range runs and 30-day windows across symbols load and replace exactly their partitions;
* **atomic replace**: a partition write is ONE Delta commit, an ``overwrite`` whose predicate
  covers the slice (delete + add in one log entry): a reader, or a crash, sees the old slice or the
  new one, never a mix; a re-run replaces, never duplicates;
* **schema rules**: new columns are added (older rows read null), removed columns and lossy type
  changes are refused before anything is written (``IncompatibleSchemaError``), one bar interval per
  table (``MixedIntervalError``);
* **UTC timestamps**: Delta ``timestamp`` columns load back as ``Datetime(us, "UTC")``;
* **lazy inputs**: ``pl.LazyFrame`` inputs are a Polars scan of the table version current at load
  time (a snapshot: later commits do not leak into the step);
* **concurrency**: writers of disjoint partitions may still conflict in delta-rs' optimistic
  concurrency (they rewrite the same file of a shared day); a conflicting commit is re-read and
  retried (``commit_retry_seconds``). Same-partition writers are serialized by Dagster (one run per
  partition) and would also just retry, last writer wins.

On S3 a commit is safe against a concurrent writer only if the log entry is created atomically:
deltalake 1.6 PUTs every ``_delta_log/<version>.json`` with ``If-None-Match: *`` whatever the options
(measured, pinned by tests/test_lake_storage_s3.py), which AWS S3 (since 2024-08) and moto honour; no
DynamoDB locking provider is needed (docs/adr/0006-lake-storage.md).
"""

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple

import polars as pl
import tenacity
from dagster import (
    ConfigurableIOManagerFactory,
    InputContext,
    MetadataValue,
    OutputContext,
    TimeWindow,
)
from pydantic import Field

from resources.dagster_internals import DbIOManager, DbTypeHandler, TablePartitionDimension, TableSlice
from resources.duckdb_io import (
    IDENTITY_COLUMNS,
    CryptoLakeDbIOManager,
    DuckDBWriteError,
    IncompatibleSchemaError,
    MixedIntervalError,
    SliceWrite,
    require_polars_frame,
)
from resources.lake import DeltaLake, _retention_configuration, maintain, slice_predicate
from resources.partition_metadata import partition_columns, record_output


class LakeWriteError(DuckDBWriteError):
    """A lake write that failed; the Delta table is unchanged (still at its previous version).

    A ``DuckDBWriteError`` so callers of either storage catch one type (the quality checks treat a
    missing dimension table as "not materialized yet")."""


class LakeTableMissingError(LakeWriteError):
    """The table has no Delta commit yet: its asset was never materialized into this lake."""


def _dimension_filter(dimension: TablePartitionDimension) -> pl.Expr:
    column = pl.col(dimension.partition_expr)
    partitions = dimension.partitions
    if isinstance(partitions, TimeWindow):
        start, end = partitions
        return (column >= start.date()) & (column < end.date())
    keys = [str(k) for k in partitions]
    return column.is_in(keys) if keys else pl.lit(False)


def slice_filter(table_slice: TableSlice) -> pl.Expr | None:
    """The Polars filter selecting the slice's rows (``None``: the whole table)."""
    filters = [_dimension_filter(d) for d in table_slice.partition_dimensions or []]
    if not filters:
        return None
    expression = filters[0]
    for extra in filters[1:]:
        expression = expression & extra
    return expression


def _open(uri: str, options: dict[str, str]):
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        return DeltaTable(uri, storage_options=options)
    except TableNotFoundError:
        return None


def _scan(table, options: dict[str, str]) -> pl.LazyFrame:
    """A Polars scan of ``table``'s current version (pinned: later commits are not seen)."""
    return pl.scan_delta(table.table_uri, version=table.version(), storage_options=options or None)


def scan_slice(table, options: dict[str, str], table_slice: TableSlice) -> pl.LazyFrame:
    frame = _scan(table, options)
    selected = slice_filter(table_slice)
    if selected is not None:
        frame = frame.filter(selected)
    if table_slice.columns:
        frame = frame.select(table_slice.columns)
    return frame


def as_utc_lazy(frame: pl.LazyFrame) -> pl.LazyFrame:
    schema = frame.collect_schema()
    zoned = [n for n, t in schema.items() if isinstance(t, pl.Datetime) and t.time_zone not in (None, "UTC")]
    return frame.with_columns([pl.col(n).dt.convert_time_zone("UTC") for n in zoned]) if zoned else frame


# Output dtype -> table dtypes that hold every value of it exactly (the output is cast to the table's).
_LOSSLESS_INTO: dict[type[pl.DataType], tuple[type[pl.DataType], ...]] = {
    pl.Int8: (pl.Int16, pl.Int32, pl.Int64, pl.Float64),
    pl.Int16: (pl.Int32, pl.Int64, pl.Float64),
    pl.Int32: (pl.Int64, pl.Float64),
    pl.UInt8: (pl.Int16, pl.Int32, pl.Int64),
    pl.UInt16: (pl.Int32, pl.Int64),
    pl.UInt32: (pl.Int64,),
    pl.Float32: (pl.Float64,),
}


def _fits(output: pl.DataType, table: pl.DataType) -> bool:
    if output == pl.Null():
        return True
    if isinstance(output, pl.Datetime) and isinstance(table, pl.Datetime):
        # Delta keeps microseconds (as DuckDB's TIMESTAMP does); the zone must be the same kind.
        return (output.time_zone is None) == (table.time_zone is None)
    return any(isinstance(table, allowed) for allowed in _LOSSLESS_INTO.get(type(output), ()))


def conform(name: str, table_schema: pl.Schema, frame: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """``frame`` cast to the table's column types, with the same rules as ``duckdb_io.migrate_schema``:
    new columns are added (returned), removed columns and lossy type changes are refused."""
    removed = [c for c in table_schema if c not in frame.columns]
    if removed:
        column = removed[0]
        raise IncompatibleSchemaError(
            f"{name}: the output has no column {column!r} ({table_schema[column]}) that the table has "
            f"(removed columns: {removed}); nothing was written. Keep the column in the asset's output, "
            "or rewrite the Delta table without it and re-materialize"
        )
    casts = {}
    for column, output_type in frame.schema.items():
        table_type = table_schema.get(column)
        if table_type is None or table_type == output_type:
            continue
        if not _fits(output_type, table_type):
            raise IncompatibleSchemaError(
                f"{name}: column {column!r} is {table_type} in the table but {output_type} in the output, "
                f"an incompatible type change; nothing was written. Cast the output back to {table_type}, "
                "or rewrite the table and re-materialize every partition"
            )
        casts[column] = table_type
    added = [c for c in frame.columns if c not in table_schema]
    untyped = [c for c in added if frame.schema[c] == pl.Null()]
    if untyped:
        raise IncompatibleSchemaError(
            f"{name}: new column {untyped[0]!r} has no type in the output (all values null, polars "
            "dtype Null); nothing was written. Give the column a dtype in the asset's output schema"
        )
    return (frame.cast(casts) if casts else frame), added  # type: ignore[arg-type]


def refuse_mixed_identity(name: str, stored: pl.LazyFrame, frame: pl.DataFrame, table_slice: TableSlice) -> None:
    """One bar interval per table (``duckdb_io.refuse_mixed_identity``): rows outside the slice count."""
    stored_columns = stored.collect_schema().names()
    for column in IDENTITY_COLUMNS:
        if column not in stored_columns or column not in frame.columns:
            continue
        new = sorted(str(v) for v in frame[column].drop_nulls().unique().to_list())
        if len(new) > 1:
            raise MixedIntervalError(f"{name}: one output mixes {column} values {new}; nothing was written")
        if not new:
            continue
        outside = stored
        selected = slice_filter(table_slice)
        if selected is not None:
            outside = outside.filter(~selected)
        other = outside.select(column).filter(pl.col(column).ne_missing(new[0])).head(1).collect()
        if len(other):
            raise MixedIntervalError(
                f"{name} holds {column} {other[column][0]!r} bars; this run writes {column} {new[0]!r}, which "
                f"would mix two {column}s in one table; nothing was written. Set CRYPTOLAKE_INTERVAL="
                f"{other[column][0]} for this lake, or point CRYPTOLAKE_LAKE at another lake for {new[0]} bars"
            )


def _commit_conflict(exc: BaseException) -> bool:
    from deltalake.exceptions import CommitFailedError, DeltaError

    if isinstance(exc, CommitFailedError):
        return True
    # A concurrent first write of a table: the loser finds version 0 taken (delta-rs reports it as a
    # generic error about the existing version / a transaction conflict).
    text = str(exc).lower()
    return isinstance(exc, DeltaError) and ("already exists" in text or "conflict" in text)


def _table_rows(table) -> int:
    """Rows of the current version, from the log's per-file statistics (no data file is read)."""
    actions = pl.DataFrame(table.get_add_actions(flatten=True))
    return int(actions["num_records"].sum()) if len(actions) else 0


class LakeWrite(NamedTuple):
    written: SliceWrite  # the same counts as a DuckDB write
    version: int  # the table's Delta version after the commit
    attempts: int  # 1, or more when a commit lost a race to a concurrent writer and was retried


def replace_lake_slice(
    lake: DeltaLake,
    table_slice: TableSlice,
    frame: pl.DataFrame,
    partition_cols: Sequence[str] = (),
    commit_retry_seconds: float = 120.0,
) -> LakeWrite:
    """Replace ``table_slice`` of ``<lake>/<schema>/<table>`` with ``frame`` in ONE Delta commit.

    The first write creates the table (an ``append`` to nothing, so two processes creating it at
    once conflict instead of one overwriting the other); later writes are an ``overwrite`` whose
    predicate covers the slice. A commit that loses a race to a concurrent writer is retried from a
    fresh read of the table."""
    from deltalake import write_deltalake

    uri = lake.uri(table_slice.schema, table_slice.table)
    options = lake.options()
    name = f"{table_slice.schema}.{table_slice.table}"

    def attempt() -> tuple[SliceWrite, int]:
        table = _open(uri, options)
        if table is None:
            if "://" not in uri:
                import os

                os.makedirs(uri, exist_ok=True)
            write_deltalake(
                uri,
                frame.to_arrow(),
                mode="append",
                partition_by=["date"] if "date" in frame.columns else None,
                storage_options=options,
                configuration=_retention_configuration(lake.retention_days),
            )
            created = _open(uri, options)
            assert created is not None
            return SliceWrite(deleted=0, table_rows=_table_rows(created), deleted_by_partition={}), created.version()
        stored = as_utc_lazy(_scan(table, options))
        output, _added = conform(name, stored.collect_schema(), frame)
        refuse_mixed_identity(name, stored, output, table_slice)
        selected = slice_filter(table_slice)
        before = stored.filter(selected) if selected is not None else stored
        by_partition: dict[tuple, int] = {}
        if partition_cols:
            counts = before.group_by(list(partition_cols)).len().collect()
            by_partition = {tuple(row[:-1]): int(row[-1]) for row in counts.iter_rows()}
            deleted = sum(by_partition.values())
        else:
            deleted = int(before.select(pl.len()).collect().item())
        write_deltalake(
            table,
            output.to_arrow(),
            mode="overwrite",
            predicate=slice_predicate(table_slice),
            schema_mode="merge",  # a column added upstream joins the table (older rows read it as null)
            storage_options=options,
        )
        table.update_incremental()
        return SliceWrite(deleted=deleted, table_rows=_table_rows(table), deleted_by_partition=by_partition), (
            table.version()
        )

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(_commit_conflict),
        wait=tenacity.wait_exponential_jitter(multiplier=0.05, max=2.0),
        stop=tenacity.stop_after_delay(commit_retry_seconds),
        reraise=True,
    )
    try:
        written, version = retrying(attempt)
        attempts = int(retrying.statistics.get("attempt_number", 1))
    except (IncompatibleSchemaError, MixedIntervalError):
        raise
    except Exception as exc:
        raise LakeWriteError(
            f"writing {len(frame)} rows to {uri} failed (the table is unchanged, previous version kept): {exc}. "
            f"Output columns: {frame.columns}"
        ) from exc
    if lake.vacuum_every_commits > 0 and version > 0 and version % lake.vacuum_every_commits == 0:
        table = _open(uri, options)
        if table is not None:
            maintain(table, lake.retention_days)
    return LakeWrite(written, version, attempts)


class DeltaPolarsHandler(DbTypeHandler[pl.DataFrame]):
    """Reads a slice of a Delta table as a Polars DataFrame (or LazyFrame: see ``lazy``)."""

    def __init__(self, lake: DeltaLake, lazy: bool):
        self.lake = lake
        self.lazy = lazy

    def handle_output(self, context: OutputContext, table_slice: TableSlice, obj, connection):
        raise NotImplementedError("CryptoLakeLakeDbIOManager writes through replace_lake_slice()")

    def load_input(self, context: InputContext, table_slice: TableSlice, connection):
        uri = self.lake.uri(table_slice.schema, table_slice.table)
        options = self.lake.options()
        table = _open(uri, options)
        if table is None:
            raise LakeTableMissingError(
                f"table {table_slice.schema}.{table_slice.table} does not exist yet in the lake at {uri}: "
                "materialize its asset first"
            )
        frame = as_utc_lazy(scan_slice(table, options, table_slice))
        return frame if self.lazy else frame.collect()

    @property
    def supported_types(self):
        return [pl.LazyFrame] if self.lazy else [pl.DataFrame]


class _LakeClient:
    """The ``DbClient`` role: loads need ``connect`` (nothing to open: each read opens its table)."""

    def __init__(self, lake: DeltaLake):
        self.lake = lake

    def get_select_statement(self, table_slice: TableSlice) -> str:
        predicate = slice_predicate(table_slice)
        return f"{self.lake.uri(table_slice.schema, table_slice.table)}" + (f" WHERE {predicate}" if predicate else "")

    def get_table_name(self, table_slice: TableSlice) -> str:
        return f"{table_slice.schema}.{table_slice.table}"

    def connect(self, context, table_slice):
        from contextlib import nullcontext

        return nullcontext(self.lake)


class CryptoLakeLakeDbIOManager(CryptoLakeDbIOManager):
    """``CryptoLakeDbIOManager``'s slices over Delta tables instead of a DuckDB file."""

    def __init__(self, *, lake: DeltaLake, commit_retry_seconds: float = 120.0):
        # ``lake`` as on the DuckDB I/O manager (the quality checks publish their results beside it);
        # ``delta`` the same, typed as never None.
        self.lake = self.delta = lake
        self.commit_retry_seconds = commit_retry_seconds
        DbIOManager.__init__(
            self,
            type_handlers=[DeltaPolarsHandler(lake, lazy=False), DeltaPolarsHandler(lake, lazy=True)],
            db_client=_LakeClient(lake),  # type: ignore[arg-type]  # duck-typed, as duckdb_io's client
            database=lake.root,
            io_manager_name="CryptoLakeLakeIOManager",
            default_load_type=pl.DataFrame,
        )

    def stored_rows(self, schema: str, table: str, days: Sequence[dt.date]) -> pl.DataFrame | None:
        """Rows ``schema.table`` already holds on ``days`` (None: the table does not exist yet); see
        ``CryptoLakeDbIOManager.stored_rows``."""
        if not days:
            return None
        options = self.delta.options()
        delta = _open(self.delta.uri(schema, table), options)
        if delta is None:
            return None
        return as_utc_lazy(_scan(delta, options)).filter(pl.col("date").is_in(list(days))).collect()

    def handle_output(self, context: OutputContext, obj: object) -> None:
        frame = require_polars_frame(context, obj, "lake")
        from cryptolake_assets.retries import permanent_errors

        table_slice = self._get_table_slice(context, context)
        by_partition = partition_columns(context, frame.columns)
        with permanent_errors(IncompatibleSchemaError, MixedIntervalError):
            written, version, attempts = replace_lake_slice(
                self.delta, table_slice, frame, [c.column for c in by_partition], self.commit_retry_seconds
            )
        extra: dict[str, Any] = {
            "lake_version": version,
            "dagster/uri": MetadataValue.path(self.delta.uri(table_slice.schema, table_slice.table)),
        }
        if attempts > 1:
            extra["commit_attempts"] = attempts
        record_output(context, frame, table_slice, written, by_partition, extra=extra)


class CryptoLakeLakeIOManager(ConfigurableIOManagerFactory):
    """Every asset as a Delta table under ``lake.root`` (``CRYPTOLAKE_STORAGE=lake``)."""

    lake: DeltaLake = Field(description="resources.lake.DeltaLake: the lake root and its storage options.")
    commit_retry_seconds: float = Field(
        default=120.0, description="How long a commit that conflicts with a concurrent writer is retried."
    )

    @property
    def storage_label(self) -> str:
        return f"lake {self.lake.root}"

    def create_io_manager(self, context) -> CryptoLakeLakeDbIOManager:
        return CryptoLakeLakeDbIOManager(lake=self.lake, commit_retry_seconds=self.commit_retry_seconds)


def lake_stored_identity(lake: DeltaLake, table: str, column: str = "interval") -> list[str]:
    """The distinct values of an identity column a lake table holds (``[]``: no table or column); the
    lake counterpart of ``duckdb_io.stored_identity`` for the CLI's check before any run."""
    schema, _, name = table.rpartition(".")
    options = lake.options()
    delta = _open(lake.uri(schema, name), options)
    if delta is None:
        return []
    frame = _scan(delta, options)
    if column not in frame.collect_schema().names():
        return []
    values = frame.select(pl.col(column).drop_nulls().unique()).collect()[column]
    return sorted(str(v) for v in values.to_list())


def lake_table_summary(lake: DeltaLake, tables: Sequence[tuple[str, str]]) -> list[tuple[str, int, int]]:
    """(table, rows, distinct partitions) for each of ``tables`` the lake holds (``cli.table_summary``'s
    counterpart: date × symbol partitions, days, or 0 for unpartitioned tables)."""
    options = lake.options()
    summary = []
    for schema, name in tables:
        delta = _open(lake.uri(schema, name), options)
        if delta is None:
            continue
        frame = _scan(delta, options)
        columns = set(frame.collect_schema().names())
        keys = [c for c in ("date", "symbol") if c in columns] if "date" in columns else []
        counts = frame.select(
            pl.len().alias("rows"), (pl.struct(keys).n_unique() if keys else pl.lit(0)).alias("parts")
        ).collect()
        summary.append(
            (f"{schema}.{name}", int(counts["rows"][0]), int(counts["parts"][0]) if counts["rows"][0] else 0)
        )
    return summary
