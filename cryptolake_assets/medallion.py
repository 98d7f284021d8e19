"""One way to declare a medallion table: the house conventions every bronze, silver and gold asset
shares, so an asset module states only what is particular to its table.

``@medallion_asset("gold", "correlations", schema=..., columns=..., partitions_def=..., ins=...)``
fills in the key (``layer/name``), group (the layer), kinds, owner, ``layer``/``source`` tags, the
``duckdb`` pool (whose size ``dagster.yaml`` sets), a single-run backfill policy for partitioned
tables, the I/O manager's ``partition_expr`` and the column schema shown in the UI. Bronze assets
fetch over HTTP: they also get the ``httpx`` kind and the transient-error retry policy.
``medallion_out`` is the same for one output of a ``@multi_asset``.
"""

from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl
from dagster import AssetOut, BackfillPolicy, MultiPartitionsDefinition, PartitionsDefinition, asset

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
            schema=schema,
            columns=columns,
            partitions_def=partitions_def,
            source=source,
            kinds=kinds,
            tags=tags,
            fetches=fetches,
        ),
    )
