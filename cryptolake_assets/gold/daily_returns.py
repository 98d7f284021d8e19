"""gold/daily_returns: every symbol's close and returns of a day, one date-only partition per day."""

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetIn,
    MultiToSingleDimensionPartitionMapping,
    Output,
)

from cryptolake_assets.gold.table_metadata import column_lineage
from cryptolake_assets.medallion import medallion_asset
from cryptolake_assets.metadata import markdown_preview, rich_metadata, run_wide
from partitions import DATE_DIMENSION, daily_partitions
from resources.duckdb_io import partition_days

DAILY_FEATURES = ["gold", "daily_features"]

DAILY_RETURNS_SCHEMA = pl.Schema(
    {
        "date": pl.Date(),
        "symbol": pl.String(),
        "close": pl.Float64(),
        "quote_volume": pl.Float64(),
        "return_1d": pl.Float64(),
        "log_return_1d": pl.Float64(),
    }
)

COLUMNS = {
    "date": "UTC day (joins dim_date.date)",
    "symbol": "Binance spot pair (joins dim_symbol.symbol)",
    "close": "daily close (gold.daily_features.close)",
    "quote_volume": "daily quote volume in USDT",
    "return_1d": "close_D / close_(D−1) − 1",
    "log_return_1d": "ln(close_D / close_(D−1))",
}


@medallion_asset(
    "gold",
    "daily_returns",
    schema=DAILY_RETURNS_SCHEMA,
    columns=COLUMNS,
    partitions_def=daily_partitions,
    ins={
        "daily_features": AssetIn(
            key=DAILY_FEATURES,
            partition_mapping=MultiToSingleDimensionPartitionMapping(DATE_DIMENSION),
            metadata={"columns": list(DAILY_RETURNS_SCHEMA)},
        )
    },
)
def daily_returns(context: AssetExecutionContext, daily_features: pl.DataFrame) -> Output[pl.DataFrame]:
    """All symbols' close, quote volume and daily returns for each UTC day: the date-only hop that
    lets cross-symbol assets read 30-day windows (a time-window mapping straight from date × symbol to
    date-only fails in Dagster)."""
    days = partition_days(*context.partition_time_window)
    rows = (
        daily_features.filter(pl.col("date").is_in(days))
        .select(list(DAILY_RETURNS_SCHEMA))
        .cast(DAILY_RETURNS_SCHEMA)
        .sort("date", "symbol")
    )
    return Output(
        rows,
        metadata={
            "rows": len(rows),
            "days": len(days),
            **run_wide({"symbols": rows["symbol"].n_unique()}),
            **rich_metadata(
                len(days),
                lambda: {
                    "preview": markdown_preview(rows),
                    "dagster/column_lineage": column_lineage(
                        {name: [(DAILY_FEATURES, name)] for name in DAILY_RETURNS_SCHEMA}
                    ),
                },
            ),
        },
    )
