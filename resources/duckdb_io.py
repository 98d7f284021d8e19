"""The DuckDB I/O manager that persists every medallion table as Polars DataFrames.

Inputs load as a ``pl.DataFrame``, or, when annotated ``pl.LazyFrame``, as a lazy DuckDB scan of the
same slice (read when collected, with column selection and filters pushed into DuckDB).

Built on dagster-duckdb's ``DbIOManager`` with three fixes for today's releases (see
docs/adr/0001-duckdb-io-manager.md):

* **duckdb 2.0 loads**: dagster-duckdb-polars 0.29 loads with ``connection.execute(sql).arrow()``,
  which duckdb 2.0 removed; we load with the relation API ``connection.sql(sql).pl()``.
* **multi-partition slices**: ``DbIOManager`` reads ``asset_partition_key_range``, which raises for
  any date × symbol subset spanning more than one value in both dimensions (a range run, a 30-day
  window read across symbols). We build one bounding box per dimension from
  ``asset_partition_keys``: a day window for ``date``, the exact key list for ``symbol``.
* **UTC timestamps**: TIMESTAMPTZ columns load back as ``Datetime(us, "UTC")``.
* **atomic replace**: a partition is replaced by DELETE + INSERT inside ONE transaction, so a crash
  mid-write leaves the previous rows in place instead of losing the partition.

And what the project needs on top: additive schema migration with incompatible changes refused
(``migrate_schema``), one bar interval per table (``refuse_mixed_identity``), each partition's own
row counts on its materialization (``resources/partition_metadata.py``), and lazy inputs that hold
the file only while a collect reads it (``read_connection``).

Partition columns are real ``DATE`` columns and filters use ``DATE`` literals, so re-materializing a
partition replaces it (no duplicates).
"""

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, cast

import duckdb
import polars as pl
import tenacity
from dagster import (
    InputContext,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    OutputContext,
    TimeWindow,
    TimeWindowPartitionsDefinition,
)
from dagster_duckdb import DuckDBIOManager
from polars.io.plugins import register_io_source
from pydantic import Field

from cryptolake_assets.retries import permanent_errors
from resources.dagster_internals import (
    DbClient,
    DbIOManager,
    DbTypeHandler,
    TablePartitionDimension,
    TableSlice,
)
from resources.lake import DeltaLake
from resources.partition_metadata import partition_columns, record_output

DEFAULT_DUCKDB_PATH = "data/cryptolake.duckdb"
DUCKDB_PATH_ENV_VAR = "CRYPTOLAKE_DUCKDB"


class DuckDBWriteError(RuntimeError):
    """A write that DuckDB refused; the transaction was rolled back and the old rows kept."""


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def qualified_table(table_slice: TableSlice) -> str:
    return f"{_quote_ident(table_slice.schema)}.{_quote_ident(table_slice.table)}"


def require_polars_frame(context: OutputContext, obj: object, store: str) -> pl.DataFrame:
    """``obj``: the project's I/O managers store polars DataFrames; anything else is a clear error."""
    if not isinstance(obj, pl.DataFrame):
        raise TypeError(
            f"{context.asset_key.to_user_string() if context.has_asset_key else context.name}: "
            f"CryptoLake's {store} I/O manager stores polars DataFrames, got {type(obj).__name__}"
        )
    return obj


def escape_sql_string_literal(value: str) -> str:
    """``value`` inside a single-quoted SQL literal (quotes doubled), as Dagster's own DbIOManager escapes it."""
    return value.replace("'", "''")


def _dimension_clause(dimension: TablePartitionDimension) -> str:
    column = dimension.partition_expr
    partitions = dimension.partitions
    if isinstance(partitions, TimeWindow):
        start, end = partitions
        return f"{column} >= DATE '{start.date().isoformat()}' AND {column} < DATE '{end.date().isoformat()}'"
    keys = list(cast("Sequence[str]", partitions))
    if not keys:
        return "FALSE"
    quoted = ", ".join(f"'{escape_sql_string_literal(key)}'" for key in keys)
    return f"{column} IN ({quoted})"


def where_clause(table_slice: TableSlice) -> str:
    if not table_slice.partition_dimensions:
        return "TRUE"
    return " AND ".join(f"({_dimension_clause(d)})" for d in table_slice.partition_dimensions)


def select_statement(table_slice: TableSlice) -> str:
    columns = ", ".join(_quote_ident(c) for c in table_slice.columns) if table_slice.columns else "*"
    return f"SELECT {columns} FROM {qualified_table(table_slice)} WHERE {where_clause(table_slice)}"


def _day_window(partitions_def: TimeWindowPartitionsDefinition, keys: Sequence[str]) -> TimeWindow:
    windows = [partitions_def.time_window_for_partition_key(key) for key in keys]
    return TimeWindow(min(w.start for w in windows), max(w.end for w in windows))


def multi_partition_dimensions(
    partitions_def: MultiPartitionsDefinition,
    partition_keys: Sequence[str],
    partition_expr: dict[str, str],
) -> list[TablePartitionDimension]:
    """One bounding box per dimension for a set of date × symbol keys (exact for rectangles)."""
    keys_by_dimension: dict[str, list[str]] = {d.name: [] for d in partitions_def.partitions_defs}
    for key in partition_keys:
        multi_key = key if isinstance(key, MultiPartitionKey) else partitions_def.get_partition_key_from_str(key)
        for name, value in cast("MultiPartitionKey", multi_key).keys_by_dimension.items():
            keys_by_dimension[name].append(value)
    dimensions = []
    for dimension in partitions_def.partitions_defs:
        column = partition_expr.get(dimension.name)
        if column is None:
            raise ValueError(f"'partition_expr' metadata has no column for the {dimension.name!r} dimension")
        values = keys_by_dimension[dimension.name]
        if isinstance(dimension.partitions_def, TimeWindowPartitionsDefinition) and values:
            partitions: TimeWindow | list[str] = _day_window(dimension.partitions_def, values)
        else:
            partitions = sorted(set(values))
        dimensions.append(TablePartitionDimension(partition_expr=column, partitions=partitions))
    return dimensions


class DuckDBPolarsHandler(DbTypeHandler[pl.DataFrame]):
    """Writes and reads Polars DataFrames (duckdb 2.0-safe: relation API, no ``.arrow()``)."""

    def handle_output(self, context: OutputContext, table_slice: TableSlice, obj: pl.DataFrame, connection):
        raise NotImplementedError("CryptoLakeDbIOManager writes through replace_slice()")

    def load_input(self, context: InputContext, table_slice: TableSlice, connection) -> pl.DataFrame:
        if not _table_exists(connection, table_slice):
            raise DuckDBWriteError(
                f"table {table_slice.schema}.{table_slice.table} does not exist yet in "
                f"{table_slice.database}: materialize its asset first"
            )
        return as_utc(connection.sql(select_statement(table_slice)).pl())

    @property
    def supported_types(self):
        return [pl.DataFrame]


@contextmanager
def read_connection(
    database: str, config: dict[str, Any], lock_timeout_seconds: float
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection for one read, closed right after it: the file is held only while reading.

    Read-only where possible (other readers may share the file); DuckDB refuses a read-only
    connection while this process already has the file open read-write (one configuration per file
    per process), and then the read uses the writer's configuration.
    """
    try:
        connection = connect_duckdb(database, config, lock_timeout_seconds, read_only=True)
    except duckdb.ConnectionException:
        connection = connect_duckdb(database, config, lock_timeout_seconds)
    try:
        yield connection
    finally:
        connection.close()


class DuckDBPolarsLazyHandler(DbTypeHandler[pl.LazyFrame]):
    """Reads inputs annotated ``pl.LazyFrame`` as a lazy scan of the table slice: nothing is read at
    load time; each ``collect`` runs the slice's SELECT with the query's column selection and filters
    pushed into DuckDB (duckdb's polars scan), so a consumer can read a large slice piece by piece
    (e.g. one symbol at a time) instead of all at once. Each collect opens the file (read-only where
    possible) and closes it when its rows are read, so between reads another step or run can write
    (a step that reads symbol by symbol does not hold the ``duckdb`` pool's file for its whole
    compute)."""

    def __init__(self, database: str, connection_config: dict[str, Any], lock_timeout_seconds: float):
        self.database = database
        self.config = dict(connection_config)
        self.lock_timeout_seconds = lock_timeout_seconds

    def handle_output(self, context: OutputContext, table_slice: TableSlice, obj: pl.LazyFrame, connection):
        raise NotImplementedError("CryptoLakeDbIOManager writes through replace_slice()")

    def load_input(self, context: InputContext, table_slice: TableSlice, connection) -> pl.LazyFrame:
        if self.database == ":memory:" or self.database.startswith("md:"):
            return DuckDBPolarsHandler().load_input(context, table_slice, connection).lazy()
        if not _table_exists(connection, table_slice):
            raise DuckDBWriteError(
                f"table {table_slice.schema}.{table_slice.table} does not exist yet in "
                f"{table_slice.database}: materialize its asset first"
            )
        query = select_statement(table_slice)
        schema = {
            name: pl.Datetime(dtype.time_unit, "UTC") if isinstance(dtype, pl.Datetime) and dtype.time_zone else dtype
            for name, dtype in connection.sql(query).pl(lazy=True).collect_schema().items()
        }  # as as_utc() returns them
        database, config, lock_timeout_seconds = self.database, self.config, self.lock_timeout_seconds

        def scan(with_columns: list[str] | None, predicate: pl.Expr | None, n_rows: int | None, batch_size: int | None):
            with read_connection(database, config, lock_timeout_seconds) as reader:
                frame = reader.sql(query).pl(lazy=True)
                if with_columns is not None:
                    frame = frame.select(with_columns)
                if predicate is not None:
                    frame = frame.filter(predicate)
                if n_rows is not None:
                    frame = frame.head(n_rows)
                rows = as_utc(frame.collect())
            yield rows

        return register_io_source(scan, schema=schema)

    @property
    def supported_types(self):
        return [pl.LazyFrame]


def as_utc(frame: pl.DataFrame) -> pl.DataFrame:
    """TIMESTAMPTZ columns come back in the session zone (``Etc/UTC`` without the ICU extension,
    which duckdb 2.0 wheels do not bundle); normalise them to ``UTC``."""
    return frame.with_columns(
        [
            pl.col(name).dt.convert_time_zone("UTC")
            for name, dtype in frame.schema.items()
            if isinstance(dtype, pl.Datetime) and dtype.time_zone not in (None, "UTC")
        ]
    )


def _run(connection, sql: str, params: list | None = None) -> list[tuple]:
    """Execute and fully consume a statement (duckdb 2.0 refuses new work while a result is pending)."""
    return connection.execute(sql, params or []).fetchall()


def _table_exists(connection, table_slice: TableSlice) -> bool:
    rows = _run(
        connection,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [table_slice.schema, table_slice.table],
    )
    return bool(rows and rows[0][0])


class IncompatibleSchemaError(DuckDBWriteError):
    """An output whose columns cannot be stored in the existing table without losing data."""


class MixedIntervalError(DuckDBWriteError):
    """An output whose bars have another interval than the bars the table already holds."""


# Output type -> table types that hold every value of it exactly (a narrower output is fine).
_LOSSLESS_INTO = {
    "TINYINT": {"SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "DOUBLE"},
    "SMALLINT": {"INTEGER", "BIGINT", "HUGEINT", "DOUBLE"},
    "INTEGER": {"BIGINT", "HUGEINT", "DOUBLE"},
    "BIGINT": {"HUGEINT"},
    "FLOAT": {"DOUBLE"},
    '"NULL"': None,  # an all-null output column fits any column type
}


def _columns(connection, relation: str) -> dict[str, str]:
    return {row[0]: row[1] for row in _run(connection, f"DESCRIBE {relation}")}


def migrate_schema(connection, table_slice: TableSlice, output: str = "_cryptolake_output") -> list[str]:
    """Make the existing table able to take ``output``: add its new columns (nullable), refuse the rest.

    Run inside the write's transaction, so a refused or failed write leaves the table as it was.
    An added column is NULL in the rows already stored (they were written before it existed);
    re-materialize those partitions to fill it. A column the output no longer has, or whose type
    changed to one the table cannot hold exactly, is refused: silently writing NULLs or casting
    would lose data. Returns the added column names.
    """
    name = f"{table_slice.schema}.{table_slice.table}"
    table_columns = _columns(connection, qualified_table(table_slice))
    output_columns = _columns(connection, output)
    removed = [c for c in table_columns if c not in output_columns]
    if removed:
        column = removed[0]
        raise IncompatibleSchemaError(
            f"{name}: the output has no column {column!r} ({table_columns[column]}) that the table has "
            f"(removed columns: {removed}); nothing was written. Keep the column in the asset's output, "
            f"or migrate the table yourself (ALTER TABLE {name} DROP COLUMN {_quote_ident(column)}) and "
            "re-materialize"
        )
    for column, output_type in output_columns.items():
        table_type = table_columns.get(column)
        if table_type is None or table_type == output_type:
            continue
        lossless = _LOSSLESS_INTO.get(output_type, set())
        if lossless is not None and table_type not in lossless:
            raise IncompatibleSchemaError(
                f"{name}: column {column!r} is {table_type} in the table but {output_type} in the output, "
                f"an incompatible type change; nothing was written. Cast the output back to {table_type}, "
                f"or migrate the table yourself (ALTER TABLE {name} ALTER {_quote_ident(column)} TYPE "
                f"{output_type}, or drop it and re-materialize every partition)"
            )
    added = [c for c in output_columns if c not in table_columns]
    untyped = [c for c in added if output_columns[c] == '"NULL"']
    if untyped:
        raise IncompatibleSchemaError(
            f"{name}: new column {untyped[0]!r} has no type in the output (all values null, polars "
            "dtype Null); nothing was written. Give the column a dtype in the asset's output schema"
        )
    for column in added:
        _run(
            connection,
            f"ALTER TABLE {qualified_table(table_slice)} ADD COLUMN {_quote_ident(column)} {output_columns[column]}",
        )
    return added


# Columns that say what a row *is* rather than what it holds: a table keeps one value of each.
# ``interval`` is the kline interval (CRYPTOLAKE_INTERVAL): 1h and 1m bars of the same day and
# symbol are different data, and every reader (gap counts, expected bars, returns) assumes one
# grid per table. Refusing the write keeps a table on one interval; keeping several apart would
# need the interval in every partition key and every reader's filter. Another interval goes to
# another database (CRYPTOLAKE_DUCKDB).
IDENTITY_COLUMNS = ("interval",)


def refuse_mixed_identity(connection, table_slice: TableSlice, output: str = "_cryptolake_output") -> None:
    """Refuse an output whose identity columns (the bar interval) differ from the rest of the table.

    Rows inside the replaced slice do not count (they are being replaced); rows outside it do.
    """
    table = qualified_table(table_slice)
    table_columns = _columns(connection, table)
    output_columns = _columns(connection, output)
    name = f"{table_slice.schema}.{table_slice.table}"
    for column in IDENTITY_COLUMNS:
        if column not in table_columns or column not in output_columns:
            continue
        quoted = _quote_ident(column)
        new = sorted(
            str(r[0]) for r in _run(connection, f"SELECT DISTINCT {quoted} FROM {output} WHERE {quoted} IS NOT NULL")
        )
        if len(new) > 1:
            raise MixedIntervalError(f"{name}: one output mixes {column} values {new}; nothing was written")
        if not new:
            continue
        other = _run(
            connection,
            f"SELECT {quoted} FROM {table} WHERE {quoted} IS DISTINCT FROM ? AND NOT ({where_clause(table_slice)}) LIMIT 1",
            [new[0]],
        )
        if other:
            raise MixedIntervalError(
                f"{name} holds {column} {other[0][0]!r} bars; this run writes {column} {new[0]!r}, which would "
                f"mix two {column}s in one table; nothing was written. Set CRYPTOLAKE_INTERVAL={other[0][0]} "
                f"for this database, or point CRYPTOLAKE_DUCKDB at another database for {new[0]} bars"
            )


class SliceWrite(NamedTuple):
    deleted: int  # rows the slice held before
    table_rows: int  # rows of the whole table after the write
    deleted_by_partition: dict[tuple, int]  # rows each partition held before (by partition column values)


def stored_identity(
    database: str, table: str, column: str = "interval", lock_timeout_seconds: float = 10.0
) -> list[str]:
    """The distinct values of an identity column a table already holds (``[]``: no file, table or column).

    For a check before a run is created (the CLI, a launch sensor): compare with the configured
    interval and refuse early; the write-time check in ``replace_slice`` stays the guarantee.
    """
    if database != ":memory:" and not database.startswith("md:") and not Path(database).exists():
        return []
    schema, _, name = table.rpartition(".")
    with read_connection(database, {}, lock_timeout_seconds) as connection:
        found = _run(
            connection,
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = ? AND table_name = ? AND column_name = ?",
            [schema or "main", name, column],
        )
        if not found[0][0]:
            return []
        rows = _run(
            connection,
            f"SELECT DISTINCT {_quote_ident(column)} FROM {_quote_ident(schema or 'main')}.{_quote_ident(name)} WHERE {_quote_ident(column)} IS NOT NULL",
        )
    return sorted(str(r[0]) for r in rows)


def replace_slice(
    connection, table_slice: TableSlice, frame: pl.DataFrame, partition_columns: Sequence[str] = ()
) -> SliceWrite:
    """Atomically replace the rows of ``table_slice`` with ``frame``.

    One transaction: create the table (first write) or migrate it additively (``migrate_schema``),
    refuse a mixed interval, count what each partition held (grouped by ``partition_columns``),
    DELETE the slice, INSERT the frame, count the table.
    """
    table = qualified_table(table_slice)
    connection.register("_cryptolake_output", frame.to_arrow())
    try:
        _run(connection, "BEGIN TRANSACTION")
        try:
            _run(connection, f"CREATE SCHEMA IF NOT EXISTS {_quote_ident(table_slice.schema)}")
            if _table_exists(connection, table_slice):
                migrate_schema(connection, table_slice)
                refuse_mixed_identity(connection, table_slice)
            else:
                _run(connection, f"CREATE TABLE {table} AS SELECT * FROM _cryptolake_output LIMIT 0")
            by_partition: dict[tuple, int] = {}
            if partition_columns:
                grouped = ", ".join(_quote_ident(c) for c in partition_columns)
                by_partition = {
                    tuple(row[:-1]): int(row[-1])
                    for row in _run(
                        connection,
                        f"SELECT {grouped}, count(*) FROM {table} WHERE {where_clause(table_slice)} GROUP BY ALL",
                    )
                }
            deleted = _run(connection, f"DELETE FROM {table} WHERE {where_clause(table_slice)}")
            _run(connection, f"INSERT INTO {table} BY NAME SELECT * FROM _cryptolake_output")
            table_rows = _run(connection, f"SELECT count(*) FROM {table}")
            _run(connection, "COMMIT")
        except Exception as exc:
            _run(connection, "ROLLBACK")
            if isinstance(exc, (IncompatibleSchemaError, MixedIntervalError)):
                raise
            existing = (
                [r[0] for r in _run(connection, f"DESCRIBE {table}")] if _table_exists(connection, table_slice) else []
            )
            raise DuckDBWriteError(
                f"writing {len(frame)} rows to {table_slice.schema}.{table_slice.table} failed and was "
                f"rolled back (previous rows kept): {exc}. Table columns: {existing}; "
                f"output columns: {frame.columns}"
            ) from exc
    finally:
        connection.unregister("_cryptolake_output")
    return SliceWrite(
        deleted=int(deleted[0][0]) if deleted else 0,
        table_rows=int(table_rows[0][0]),
        deleted_by_partition=by_partition,
    )


class CryptoLakeDbIOManager(DbIOManager):
    """``DbIOManager`` with per-dimension slices and one-transaction partition replaces."""

    def __init__(
        self, *, database: str, connection_config: dict[str, Any], lock_timeout_seconds: float, lake: Any = None
    ):
        # Publishes each committed slice (None: off); the quality checks publish their results beside it.
        self.lake: DeltaLake | None = lake
        super().__init__(
            type_handlers=[
                DuckDBPolarsHandler(),
                DuckDBPolarsLazyHandler(database, connection_config, lock_timeout_seconds),
            ],
            # Duck-typed: handle_output writes in its own transaction, so DbClient's delete/ensure
            # methods are never called; loads use connect/get_select_statement only.
            db_client=cast(DbClient, _DuckDBClient(database, connection_config, lock_timeout_seconds)),
            database=database,
            io_manager_name="CryptoLakeDuckDBIOManager",
            default_load_type=pl.DataFrame,
        )

    def stored_rows(self, schema: str, table: str, days: Sequence[dt.date]) -> pl.DataFrame | None:
        """Rows ``schema.table`` already holds on ``days``, read from this I/O manager's own database
        (wherever it is configured), or None when the table does not exist yet.

        For assets whose source cannot re-fetch the past (CoinGecko snapshots): a range run carries
        those days' rows over instead of emptying them when it replaces the window.
        """
        if not days:
            return None
        table_slice = TableSlice(
            table=table, schema=schema, database=self._database, columns=None, partition_dimensions=[]
        )
        client = cast("_DuckDBClient", self._db_client)
        if (
            client.database != ":memory:"
            and not client.database.startswith("md:")
            and not Path(client.database).exists()
        ):
            return None
        with read_connection(client.database, client.config, client.lock_timeout_seconds) as connection:
            if not _table_exists(connection, table_slice):
                return None
            frame = connection.sql(
                f"SELECT * FROM {qualified_table(table_slice)} WHERE date >= ? AND date <= ?",
                params=[min(days), max(days)],
            ).pl()
        return as_utc(frame).filter(pl.col("date").is_in(list(days)))

    def handle_output(self, context: OutputContext, obj: object) -> None:
        frame = require_polars_frame(context, obj, "DuckDB")
        table_slice = self._get_table_slice(context, context)
        by_partition = partition_columns(context, frame.columns)
        with self._db_client.connect(context, table_slice) as connection:
            # A refused schema change or interval is permanent: retrying cannot make it fit.
            with permanent_errors(IncompatibleSchemaError, MixedIntervalError):
                written = replace_slice(connection, table_slice, frame, [c.column for c in by_partition])
        # Lake publish: after the DuckDB commit (a failure here fails the step; a re-run republishes).
        lake_version = self.lake.publish_slice(table_slice, frame) if self.lake is not None else None
        record_output(
            context,
            frame,
            table_slice,
            written,
            by_partition,
            extra={"lake_version": lake_version} if lake_version is not None else None,
            query=select_statement(table_slice),
        )

    def _get_table_slice(self, context, output_context) -> TableSlice:
        if (
            context.has_asset_key
            and context.has_asset_partitions
            and isinstance(context.asset_partitions_def, MultiPartitionsDefinition)
        ):
            metadata = output_context.definition_metadata or {}
            partition_expr = metadata.get("partition_expr")
            if not isinstance(partition_expr, dict):
                raise ValueError(
                    f"asset {context.asset_key.to_user_string()} is multi-partitioned: its "
                    "'partition_expr' metadata must map each dimension to a column"
                )
            path = context.asset_key.path
            return TableSlice(
                table=path[-1],
                schema=str(metadata.get("schema") or (path[-2] if len(path) > 1 else "public")),
                database=self._database,
                columns=(context.definition_metadata or {}).get("columns"),
                partition_dimensions=multi_partition_dimensions(
                    context.asset_partitions_def, context.asset_partition_keys, partition_expr
                ),
            )
        if context.has_asset_partitions and not context.asset_partition_keys:
            # An input window clipped entirely before the first partition: select nothing.
            base = super()._get_table_slice(context, output_context)
            column = (output_context.definition_metadata or {}).get("partition_expr", "date")
            return base._replace(partition_dimensions=[TablePartitionDimension(str(column), [])])
        return super()._get_table_slice(context, output_context)


class _DuckDBClient:
    """Connections with UTC session time zone and a bounded wait for the file lock."""

    def __init__(self, database: str, connection_config: dict[str, Any], lock_timeout_seconds: float):
        self.database = database
        self.config = dict(connection_config)
        self.lock_timeout_seconds = lock_timeout_seconds

    def get_select_statement(self, table_slice: TableSlice) -> str:
        return select_statement(table_slice)

    def get_table_name(self, table_slice: TableSlice) -> str:
        return f"{table_slice.schema}.{table_slice.table}"

    @contextmanager
    def connect(self, context, table_slice) -> Iterator[duckdb.DuckDBPyConnection]:
        connection = connect_duckdb(self.database, self.config, self.lock_timeout_seconds)
        try:
            yield connection
        finally:
            connection.close()


def connect_duckdb(
    database: str, config: dict[str, Any] | None = None, lock_timeout_seconds: float = 120.0, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file, waiting (bounded) while another process holds its lock.

    Another pipeline step holds the file only while it reads or writes a slice (well under a
    second), so the wait retries every 50 ms growing to 500 ms: the file changes hands promptly
    instead of after a multi-second backoff.
    """
    if database != ":memory:" and not database.startswith("md:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(duckdb.IOException),
        wait=tenacity.wait_exponential_jitter(multiplier=0.05, max=0.5),
        stop=tenacity.stop_after_delay(lock_timeout_seconds),
        reraise=True,
    )
    return retrying(duckdb.connect, database=database, read_only=read_only, config=dict(config or {}))


class CryptoLakeDuckDBIOManager(DuckDBIOManager):
    """DuckDB I/O manager for CryptoLake's Polars tables (schema = asset key prefix)."""

    lock_timeout_seconds: float = Field(
        default=120.0, description="How long to wait for another process's lock on the DuckDB file."
    )
    lake: DeltaLake | None = Field(
        default=None, description="resources.lake.DeltaLake publishing each committed slice (None: no lake)."
    )

    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
        return [DuckDBPolarsHandler()]

    @staticmethod
    def default_load_type() -> type | None:
        return pl.DataFrame

    def create_io_manager(self, context) -> DbIOManager:
        return CryptoLakeDbIOManager(
            database=self.database,
            connection_config=dict(self.connection_config),
            lock_timeout_seconds=self.lock_timeout_seconds,
            lake=self.lake,
        )


def partition_days(window_start: dt.datetime, window_end: dt.datetime) -> list[dt.date]:
    """The UTC days covered by a partition time window [start, end)."""
    days = []
    day = window_start.date()
    while day < window_end.date():
        days.append(day)
        day += dt.timedelta(days=1)
    return days
