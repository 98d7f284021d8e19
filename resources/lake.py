"""The published lake: every silver and gold table (and the quarantine) as a Delta Lake table.

The DuckDB file is the pipeline's working store; only one process may write it and an open reader
blocks the pipeline. Readers (notebooks, BI tools, ``cryptolake serve``) read the lake instead: a
Delta table per asset at ``<lake>/<layer>/<table>`` (delta-rs: ACID commits, snapshot isolation,
time travel), on a local path or an ``s3://`` / ``gs://`` / ``az://`` URI through delta-rs'
object-store support.

Wiring: the DuckDB I/O manager publishes the slice it has just committed (``publish_slice``), so a
range run makes ONE Delta commit per output (not one per partition) and adds no Dagster events.
Crash order: DuckDB commits first, then Delta. A crash between the two leaves Delta at its
previous version (readable, one run behind) and the step failed; re-running the partition
rewrites DuckDB (idempotent) and republishes. A partition rewrite is one ``overwrite`` commit
whose ``predicate`` covers exactly the slice's dates and symbols, so a reader sees the old slice
or the new one, never a mix.
"""

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any, cast

import polars as pl
from dagster import ConfigurableResource, TimeWindow
from pydantic import Field

from resources.dagster_internals import TableSlice

DEFAULT_LAKE = "data/lake"
LAKE_ENV_VAR = "CRYPTOLAKE_LAKE"
DEFAULT_RETENTION_DAYS = 30
#: A partition holding more files than this after a publish is compacted right away (only the
#: partitions that publish touched). Every open of a Delta table replays one add action per file,
#: so a table partitioned by day that gains a file per commit and day (quality/check_results: one
#: per check step) would otherwise cost 0.42 s an open at 13,000 files (ADR 0005).
MAX_FILES_PER_PARTITION = 8
# A publish compacts at most this many crowded partitions (two months of days). A wide backfill of
# one run per symbol (the UI's daemon backfill: 50 runs over 3,399 days) crowds every day partition
# of a date-partitioned table at once; compacting them all after every 8th run rewrote the whole
# table each time, four runs at once, and made those runs 4x slower (ADR 0005). Such a publish
# leaves them to the table's periodic compaction (``maintain``, every ``vacuum_every_commits``).
MAX_PARTITIONS_COMPACTED_PER_PUBLISH = 62
REMOTE_SCHEMES = ("s3://", "s3a://", "gs://", "gcs://", "az://", "abfs://", "abfss://", "azure://")

#: Layers that are published; bronze stays the pipeline's raw working copy.
PUBLISHED_LAYERS = ("silver", "gold")


class LakePublishError(RuntimeError):
    """Delta refused a publish; the table is unchanged (still at its previous version)."""


def lake_root(default: str | None = None) -> str:
    """``CRYPTOLAKE_LAKE``, else ``default`` (``lake/`` beside the DuckDB file, i.e. ``data/lake``),
    else ``data/lake``; a local path is made absolute, URIs are kept."""
    value = (os.environ.get(LAKE_ENV_VAR) or default or DEFAULT_LAKE).strip()
    return normalize_root(value)


def normalize_root(value: str) -> str:
    if value.startswith(REMOTE_SCHEMES) or "://" in value:
        return value.rstrip("/")
    return os.path.abspath(os.path.expanduser(value))


def table_uri(root: str, layer: str, table: str) -> str:
    return f"{normalize_root(root)}/{layer}/{table}"


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def slice_predicate(table_slice: TableSlice) -> str | None:
    """The Delta predicate covering the slice's dates and symbols (``None``: the whole table)."""
    clauses = []
    for dimension in table_slice.partition_dimensions or []:
        column = f'"{dimension.partition_expr}"'
        partitions = dimension.partitions
        if isinstance(partitions, TimeWindow):
            start, end = partitions
            clauses.append(f"{column} >= '{start.date().isoformat()}' AND {column} < '{end.date().isoformat()}'")
        else:
            keys = list(cast("Sequence[str]", partitions))
            if not keys:
                clauses.append("1 = 0")
            else:
                clauses.append(f"{column} IN ({', '.join(_sql_string(k) for k in keys)})")
    return " AND ".join(f"({c})" for c in clauses) if clauses else None


class DeltaLake(ConfigurableResource):
    """Where and how the lake is published (a Dagster resource; credentials via ``EnvVar``).

    ``storage_options`` are delta-rs object-store options (``AWS_ENDPOINT_URL``,
    ``AWS_REGION``, ``AWS_ALLOW_HTTP``, ``GOOGLE_SERVICE_ACCOUNT``, ``AZURE_STORAGE_ACCOUNT_NAME`` ...);
    the credential fields are kept apart so they can be bound to ``EnvVar`` and are never logged.
    """

    root: str = Field(default=DEFAULT_LAKE, description="Lake root: a path or s3:// gs:// az:// URI.")
    storage_options: dict[str, str] = Field(default_factory=dict, description="delta-rs storage options.")
    aws_access_key_id: str | None = Field(default=None, description="S3 key id (bind to EnvVar).")
    aws_secret_access_key: str | None = Field(default=None, description="S3 secret (bind to EnvVar).")
    retention_days: float = Field(
        default=DEFAULT_RETENTION_DAYS, description="Table versions kept for time travel; older files are vacuumed."
    )
    vacuum_every_commits: int = Field(
        default=50, description="Compact + vacuum a table after every N-th commit (0: never; throttles the cost)."
    )

    @classmethod
    def from_env(cls, default_root: str | None = None) -> "DeltaLake":
        """The lake at ``CRYPTOLAKE_LAKE``; S3 credentials from ``AWS_ACCESS_KEY_ID`` /
        ``AWS_SECRET_ACCESS_KEY`` through ``EnvVar`` when set (delta-rs also reads the ambient
        AWS/GCP/Azure environment itself)."""
        from dagster import EnvVar

        kwargs: dict[str, Any] = {"root": lake_root(default_root)}
        if os.environ.get("AWS_ACCESS_KEY_ID"):
            kwargs["aws_access_key_id"] = EnvVar("AWS_ACCESS_KEY_ID")
        if os.environ.get("AWS_SECRET_ACCESS_KEY"):
            kwargs["aws_secret_access_key"] = EnvVar("AWS_SECRET_ACCESS_KEY")
        if os.environ.get("CRYPTOLAKE_LAKE_RETENTION_DAYS"):
            kwargs["retention_days"] = float(os.environ["CRYPTOLAKE_LAKE_RETENTION_DAYS"])
        return cls(**kwargs)

    def options(self) -> dict[str, str]:
        from dagster import EnvVar

        def value(field):  # an EnvVar outside a Dagster run (e.g. ``cryptolake serve``) resolves here
            return field.get_value() if isinstance(field, EnvVar) else field

        options = dict(self.storage_options)
        if self.aws_access_key_id:
            options["AWS_ACCESS_KEY_ID"] = value(self.aws_access_key_id)
        if self.aws_secret_access_key:
            options["AWS_SECRET_ACCESS_KEY"] = value(self.aws_secret_access_key)
        return options

    def uri(self, layer: str, table: str) -> str:
        return table_uri(self.root, layer, table)

    def publishes(self, layer: str) -> bool:
        return layer in PUBLISHED_LAYERS

    def publish_slice(self, table_slice: TableSlice, frame: pl.DataFrame) -> int | None:
        """Replace the slice in ``<root>/<schema>/<table>`` with ``frame`` in ONE Delta commit.

        Returns the new table version (``None`` when the layer is not published)."""
        if not self.publishes(table_slice.schema):
            return None
        return publish(
            self.uri(table_slice.schema, table_slice.table),
            frame,
            predicate=slice_predicate(table_slice),
            storage_options=self.options(),
            retention_days=self.retention_days,
            vacuum_every_commits=self.vacuum_every_commits,
        )


def _retention_configuration(retention_days: float) -> dict[str, str]:
    interval = f"interval {max(1, int(round(retention_days * 24)))} hours"
    return {"delta.logRetentionDuration": interval, "delta.deletedFileRetentionDuration": interval}


def publish(
    uri: str,
    frame: pl.DataFrame,
    *,
    predicate: str | Callable[[set[str]], str] | None,
    storage_options: dict[str, str] | None = None,
    retention_days: float = DEFAULT_RETENTION_DAYS,
    vacuum_every_commits: int = 50,
    partition_by: Sequence[str] | None = None,
) -> int:
    """One atomic overwrite of ``predicate``'s rows (the whole table when ``None``); returns the
    version it committed. A new table is partitioned by ``partition_by`` (default: ``date`` when the
    frame has it); an existing table keeps its partitioning. A callable ``predicate`` is given the
    existing table's column names (a predicate on a column the table lacks is refused by Delta)."""
    from deltalake import DeltaTable, write_deltalake
    from deltalake.exceptions import TableNotFoundError

    options = dict(storage_options or {})
    if "://" not in uri:
        os.makedirs(uri, exist_ok=True)
    data = frame.to_arrow()
    if partition_by is None:
        partition_by = ["date"] if "date" in frame.columns else None
    try:
        table: DeltaTable | None = DeltaTable(uri, storage_options=options)
    except TableNotFoundError:
        table = None
    try:
        if table is None:
            write_deltalake(
                uri,
                data,
                mode="overwrite",
                partition_by=list(partition_by) if partition_by else None,
                storage_options=options,
                configuration=_retention_configuration(retention_days),
            )
        else:
            if callable(predicate):
                predicate = predicate({field.name for field in table.schema().fields})
            write_deltalake(
                table,
                data,
                mode="overwrite",
                predicate=predicate,
                # A column added upstream joins the table (older rows read it as null), as in DuckDB.
                schema_mode="merge",
                storage_options=options,
            )
    except Exception as exc:
        raise LakePublishError(f"publishing {len(frame)} rows to {uri} failed (table unchanged): {exc}") from exc
    # write_deltalake(table, ...) moves that object to the version it committed; reopening would read
    # the whole log again (≈ 0.4 s for a table of 13,000 files: half of a new day's lake time).
    table = table if table is not None else DeltaTable(uri, storage_options=options)
    version = table.version()
    compact_crowded_partitions(table, frame)
    if vacuum_every_commits > 0 and version > 0 and version % vacuum_every_commits == 0:
        maintain(table, retention_days)
    return version


def crowded_partitions(table, frame: pl.DataFrame, limit: int = MAX_FILES_PER_PARTITION) -> list[str]:
    """The partition values ``frame`` wrote whose partition now holds more than ``limit`` files."""
    columns = table.metadata().partition_columns
    if len(columns) != 1 or columns[0] not in frame.columns:
        return []
    column = columns[0]
    touched = {str(value) for value in frame[column].unique().to_list() if value is not None}
    marker = f"/{column}="
    counts: dict[str, int] = {}
    for uri in table.file_uris():  # .../<column>=<value>/part-....parquet
        at = uri.rfind(marker)
        value = uri[at + len(marker) : uri.find("/", at + len(marker))] if at >= 0 else None
        if value in touched:
            counts[value] = counts.get(value, 0) + 1
    return sorted(value for value, files in counts.items() if files > limit)


def compact_crowded_partitions(table, frame: pl.DataFrame, limit: int = MAX_FILES_PER_PARTITION) -> list[str]:
    """Compact the partitions this publish crowded (one commit, no data change). Best effort: a
    concurrent writer's commit may win; the next publish to those partitions tries again."""
    crowded = crowded_partitions(table, frame, limit)
    if len(crowded) > MAX_PARTITIONS_COMPACTED_PER_PUBLISH:
        logging.getLogger(__name__).info(
            "%d partitions hold more than %d files; left to the periodic compaction", len(crowded), limit
        )
        return []
    if crowded:
        column = table.metadata().partition_columns[0]
        try:
            table.optimize.compact(partition_filters=[(column, "in", crowded)])
        except Exception as exc:  # compaction never fails the publish it follows
            logging.getLogger(__name__).info("compacting %s of %s postponed: %s", column, crowded[:3], exc)
    return crowded


def maintain(table, retention_days: float) -> list[str]:
    """Compact small files (one commit, no data change: readers and time travel unaffected),
    then vacuum what no version inside the retention needs."""
    table.optimize.compact()
    return vacuum(table, retention_days)


def vacuum(table, retention_days: float) -> list[str]:
    """Delete data files no version within the retention still needs, and expired log entries."""
    removed = table.vacuum(
        retention_hours=max(0, int(retention_days * 24)), enforce_retention_duration=False, dry_run=False
    )
    table.cleanup_metadata()
    return removed


def vacuum_lake(lake: DeltaLake, tables: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Vacuum every given (layer, table) of the lake; returns files removed per table."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    removed = {}
    for layer, name in tables:
        try:
            table = DeltaTable(lake.uri(layer, name), storage_options=lake.options())
        except TableNotFoundError:
            continue
        removed[f"{layer}/{name}"] = len(maintain(table, lake.retention_days))
    return removed
