"""gold/category_daily: equal-weighted daily and 30-day returns per universe category."""

import polars as pl
from dagster import AssetExecutionContext, AssetIn, Output, TimeWindowPartitionMapping

from cryptolake_assets.gold import features
from cryptolake_assets.gold.table_metadata import column_lineage
from cryptolake_assets.medallion import medallion_asset
from cryptolake_assets.metadata import markdown_preview, rich_metadata, run_wide
from partitions import daily_partitions, load_universe
from resources.duckdb_io import partition_days

DAILY_RETURNS = ["gold", "daily_returns"]

COLUMNS = {
    "date": "UTC day (joins dim_date.date)",
    "category": "universe category (joins dim_symbol.category)",
    "members": "members with a bar on the day",
    "members_with_return_1d": "members with a close on the day before too",
    "mean_return_1d": "equal-weighted mean return_1d of the members",
    "members_with_return_30d": "members with a close 30 days earlier too",
    "mean_return_30d": "equal-weighted mean of close_D / close_(D−30) − 1",
}


@medallion_asset(
    "gold",
    "category_daily",
    schema=features.CATEGORY_DAILY_SCHEMA,
    columns=COLUMNS,
    partitions_def=daily_partitions,
    ins={
        "daily_returns": AssetIn(
            key=DAILY_RETURNS,
            partition_mapping=TimeWindowPartitionMapping(start_offset=-features.RETURN_30D_DAYS),
            metadata={"columns": ["date", "symbol", "close", "return_1d"]},
        )
    },
)
def category_daily(context: AssetExecutionContext, daily_returns: pl.DataFrame) -> Output[pl.DataFrame]:
    """Per day and category (Layer 1, DeFi, Meme, ...): how many members traded, their equal-weighted
    mean daily return and their equal-weighted mean 30-day return."""
    days = partition_days(*context.partition_time_window)
    category_by_symbol = {info.symbol: info.category for info in load_universe()}
    rows = features.category_daily(daily_returns, days, category_by_symbol)
    return Output(
        rows,
        metadata={
            "rows": len(rows),
            "days": len(days),
            **run_wide({"categories": rows["category"].n_unique()}),
            **rich_metadata(
                len(days),
                lambda: {
                    "preview": markdown_preview(rows.sort("date", "category", descending=[True, False])),
                    "dagster/column_lineage": column_lineage(
                        {
                            "date": [(DAILY_RETURNS, "date")],
                            "category": [(DAILY_RETURNS, "symbol")],
                            "members": [(DAILY_RETURNS, "symbol")],
                            "members_with_return_1d": [(DAILY_RETURNS, "return_1d")],
                            "mean_return_1d": [(DAILY_RETURNS, "return_1d")],
                            "members_with_return_30d": [(DAILY_RETURNS, "close")],
                            "mean_return_30d": [(DAILY_RETURNS, "close")],
                        }
                    ),
                },
            ),
        },
    )
