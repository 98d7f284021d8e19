"""Column lineage of gold tables for the UI (their column schema comes with ``medallion_asset``)."""

from dagster import AssetKey, TableColumnDep, TableColumnLineage


def column_lineage(deps: dict[str, list[tuple[list[str], str]]]) -> TableColumnLineage:
    """``{"column": [(upstream asset key path, upstream column), ...]}`` as Dagster column lineage."""
    return TableColumnLineage(
        deps_by_column={
            column: [TableColumnDep(asset_key=AssetKey(key), column_name=name) for key, name in upstream]
            for column, upstream in deps.items()
        }
    )
