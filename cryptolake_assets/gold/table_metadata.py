"""Column metadata for gold tables: a described ``TableSchema`` and column lineage for the UI."""

import polars as pl
from dagster import AssetKey, TableColumn, TableColumnDep, TableColumnLineage, TableSchema


def table_schema(schema: dict[str, pl.DataType], descriptions: dict[str, str]) -> TableSchema:
    """A ``TableSchema`` of a Polars schema; every column must be described."""
    undescribed = [name for name in schema if name not in descriptions]
    if undescribed:
        raise ValueError(f"columns without a description: {undescribed}")
    return TableSchema(
        columns=[TableColumn(name=name, type=str(dtype), description=descriptions[name]) for name, dtype in schema.items()]
    )


def column_lineage(deps: dict[str, list[tuple[list[str], str]]]) -> TableColumnLineage:
    """``{"column": [(upstream asset key path, upstream column), ...]}`` as Dagster column lineage."""
    return TableColumnLineage(
        deps_by_column={
            column: [TableColumnDep(asset_key=AssetKey(key), column_name=name) for key, name in upstream]
            for column, upstream in deps.items()
        }
    )
