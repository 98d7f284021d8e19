"""One way to declare a medallion table: the house conventions every bronze, silver and gold asset
shares, so an asset module states only what is particular to its table.

``@medallion_asset("gold", "correlations", schema=..., columns=..., partitions_def=..., ins=...)``
fills in the key (``layer/name``), group (the layer), kinds, owner, ``layer``/``source`` tags, the
``duckdb`` pool (whose size ``dagster.yaml`` sets), a single-run backfill policy for partitioned
tables, the I/O manager's ``partition_expr`` and the column schema shown in the UI. Bronze assets
fetch over HTTP: they also get the ``httpx`` kind and the transient-error retry policy.
``medallion_out`` is the same for one output of a ``@multi_asset``.

``@medallion_graph_asset`` declares the same table as a graph of ops, for a bronze asset whose
download must not hold a ``duckdb`` slot: a ``@fetch_op`` (no pool, transient-error retries, its
output staged as Parquet by ``bronze.staging``) feeds a ``@write_op`` (pool ``duckdb``), whose
output is the table. See docs/adr/0004-downloads-outside-the-duckdb-pool.md.
"""

from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl
from dagster import (
    AssetOut,
    BackfillPolicy,
    MultiPartitionsDefinition,
    Out,
    PartitionsDefinition,
    asset,
    graph_asset,
    op,
)

from cryptolake_assets.bronze.staging import STAGING_IO_MANAGER_KEY, StagingIOManager
from cryptolake_assets.metadata import table_schema_of
from cryptolake_assets.retries import TRANSIENT_RETRY_POLICY
from partitions import DAILY_SYMBOL_PARTITION_EXPR

LAYERS = ("bronze", "silver", "gold")
OWNERS = {"bronze": "team:market-data", "silver": "team:market-data", "gold": "team:analytics"}
#: Every medallion write takes a slot of this concurrency pool (size: ``concurrency.pools`` in dagster.yaml).
POOL = "duckdb"


def partition_expr(partitions_def: PartitionsDefinition) -> str | dict[str, str]:
    """The I/O manager's ``partition_expr``: one column per dimension of a date × symbol table."""
    return DAILY_SYMBOL_PARTITION_EXPR if isinstance(partitions_def, MultiPartitionsDefinition) else "date"


def medallion_conventions(
    layer: str,
    *,
    schema: Mapping[str, pl.DataType],
    name: str | None = None,
    columns: Mapping[str, str] | None = None,
    partitions_def: PartitionsDefinition | None = None,
    source: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    kinds: Iterable[str] = (),
    tags: Mapping[str, str] | None = None,
    fetches: bool | None = None,
) -> dict[str, Any]:
    """Group, kinds, owners, tags and metadata of a table in ``layer``. Gold tables must describe
    every column (they are what analysts read); bronze and silver describe what needs saying.
    ``fetches`` (default: bronze) adds the ``httpx`` kind; ``kinds`` and ``tags`` add to the layer's."""
    if layer not in LAYERS:
        raise ValueError(f"layer {layer!r}: expected one of {', '.join(LAYERS)}")
    fetches = layer == "bronze" if fetches is None else fetches
    table_metadata: dict[str, Any] = {
        "dagster/column_schema": table_schema_of(schema, columns, complete=layer == "gold")
    }
    if partitions_def is not None:
        table_metadata["partition_expr"] = partition_expr(partitions_def)
    if name is not None:
        # The UI's table name, declared once: the I/O manager then leaves it off every partition's
        # event (issue 17: event log per partition materialization).
        table_metadata["dagster/table_name"] = f"{layer}.{name}"
    return {
        "group_name": layer,
        "kinds": {"polars", "duckdb", *(("httpx",) if fetches else ()), *kinds},
        "owners": [OWNERS[layer]],
        "tags": {"layer": layer, **({"source": source} if source else {}), **(tags or {})},
        "metadata": {**table_metadata, **(metadata or {})},
    }


def medallion_asset(
    layer: str,
    name: str,
    *,
    schema: Mapping[str, pl.DataType],
    columns: Mapping[str, str] | None = None,
    partitions_def: PartitionsDefinition | None = None,
    source: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    kinds: Iterable[str] = (),
    tags: Mapping[str, str] | None = None,
    fetches: bool | None = None,
    **asset_kwargs: Any,
):
    """``@asset`` for the table ``layer/name`` with the house conventions (``kinds`` and ``tags``
    add to the layer's); ``asset_kwargs`` (ins, deps, required_resource_keys, ...) pass through to
    Dagster. An asset that fetches over HTTP gets the transient-error retry policy."""
    fetches = layer == "bronze" if fetches is None else fetches
    if fetches:
        asset_kwargs.setdefault("retry_policy", TRANSIENT_RETRY_POLICY)
    return asset(
        key=[layer, name],
        partitions_def=partitions_def,
        backfill_policy=BackfillPolicy.single_run() if partitions_def is not None else None,
        pool=POOL,
        **medallion_conventions(
            layer,
            name=name,
            schema=schema,
            columns=columns,
            partitions_def=partitions_def,
            source=source,
            metadata=metadata,
            kinds=kinds,
            tags=tags,
            fetches=fetches,
        ),
        **asset_kwargs,
    )


def medallion_graph_asset(
    layer: str,
    name: str,
    *,
    schema: Mapping[str, pl.DataType],
    columns: Mapping[str, str] | None = None,
    partitions_def: PartitionsDefinition | None = None,
    source: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    kinds: Iterable[str] = (),
    tags: Mapping[str, str] | None = None,
    fetches: bool | None = None,
    **asset_kwargs: Any,
):
    """``@graph_asset`` for the table ``layer/name`` with the house conventions of
    ``medallion_asset``. The pool and the retry policy belong to the graph's ops (``fetch_op``,
    ``write_op``); the staging I/O manager that carries a download to its write comes with the
    asset, so every ``Definitions`` or ``materialize`` that holds the asset can run it."""
    resource_defs = {
        STAGING_IO_MANAGER_KEY: StagingIOManager().get_resource_definition(),
        **asset_kwargs.pop("resource_defs", {}),
    }
    return graph_asset(
        key=[layer, name],
        partitions_def=partitions_def,
        backfill_policy=BackfillPolicy.single_run() if partitions_def is not None else None,
        resource_defs=resource_defs,
        **medallion_conventions(
            layer,
            name=name,
            schema=schema,
            columns=columns,
            partitions_def=partitions_def,
            source=source,
            metadata=metadata,
            kinds=kinds,
            tags=tags,
            fetches=fetches,
        ),
        **asset_kwargs,
    )


def fetch_op(**op_kwargs: Any):
    """``@op`` that downloads outside every pool (its run's other steps and other runs keep the
    ``duckdb`` slots), retried on transient errors, its ``StagedFrame`` output staged as Parquet."""
    op_kwargs.setdefault("retry_policy", TRANSIENT_RETRY_POLICY)
    op_kwargs.setdefault("out", Out(io_manager_key=STAGING_IO_MANAGER_KEY))
    return op(**op_kwargs)


def write_op(**op_kwargs: Any):
    """``@op`` whose output is a medallion table: it holds a ``duckdb`` pool slot, and is retried
    like any bronze step (DuckDB lock contention is transient)."""
    op_kwargs.setdefault("retry_policy", TRANSIENT_RETRY_POLICY)
    return op(pool=POOL, **op_kwargs)


def medallion_out(
    layer: str,
    name: str,
    *,
    schema: Mapping[str, pl.DataType],
    description: str,
    columns: Mapping[str, str] | None = None,
    partitions_def: PartitionsDefinition | None = None,
    source: str | None = None,
    kinds: Iterable[str] = (),
    tags: Mapping[str, str] | None = None,
    fetches: bool | None = None,
) -> AssetOut:
    """One output of a ``@multi_asset`` writing the table ``layer/name``, with the house conventions."""
    return AssetOut(
        key=[layer, name],
        description=description,
        **medallion_conventions(
            layer,
            name=name,
            schema=schema,
            columns=columns,
            partitions_def=partitions_def,
            source=source,
            kinds=kinds,
            tags=tags,
            fetches=fetches,
        ),
    )
