"""gold/market_daily: one row per UTC day describing the whole tracked market."""

import polars as pl
from dagster import AssetExecutionContext, AssetIn, MetadataValue, Output

from cryptolake_assets.gold import features
from cryptolake_assets.gold.table_metadata import column_lineage
from cryptolake_assets.medallion import medallion_asset
from cryptolake_assets.metadata import markdown_preview, rich_metadata, run_wide
from partitions import daily_partitions
from resources.duckdb_io import partition_days

DAILY_RETURNS = ["gold", "daily_returns"]

COLUMNS = {
    "date": "UTC day (joins dim_date.date)",
    "symbols": "symbols with a bar on the day",
    "total_quote_volume": "sum of quote volume (USDT) over all symbols",
    "advancers": "symbols with return_1d > 0",
    "decliners": "symbols with return_1d < 0",
    "unchanged": "symbols with return_1d = 0",
    "best_symbol": "symbol with the highest return_1d (ties: first by name)",
    "best_return_1d": "its return_1d",
    "worst_symbol": "symbol with the lowest return_1d (ties: first by name)",
    "worst_return_1d": "its return_1d",
}


@medallion_asset(
    "gold",
    "market_daily",
    schema=features.MARKET_DAILY_SCHEMA,
    columns=COLUMNS,
    partitions_def=daily_partitions,
    ins={
        "daily_returns": AssetIn(
            key=DAILY_RETURNS, metadata={"columns": ["date", "symbol", "quote_volume", "return_1d"]}
        )
    },
)
def market_daily(context: AssetExecutionContext, daily_returns: pl.DataFrame) -> Output[pl.DataFrame]:
    """Market breadth per day: total quote volume, advancers and decliners, best and worst performer."""
    days = partition_days(*context.partition_time_window)
    rows = features.market_daily(daily_returns, days)
    latest = rows.row(-1, named=True) if not rows.is_empty() else None
    return Output(
        rows,
        metadata={
            "rows": len(rows),
            "days": len(days),
            **run_wide(
                {
                    "latest": MetadataValue.text(
                        f"{latest['date']}: {latest['advancers']} up / {latest['decliners']} down, "
                        f"best {latest['best_symbol']}, worst {latest['worst_symbol']}"
                        if latest
                        else "-"
                    ),
                }
            ),
            **rich_metadata(
                len(days),
                lambda: {
                    "preview": markdown_preview(rows.sort("date", descending=True)),
                    "dagster/column_lineage": column_lineage(
                        {
                            "date": [(DAILY_RETURNS, "date")],
                            "symbols": [(DAILY_RETURNS, "symbol")],
                            "total_quote_volume": [(DAILY_RETURNS, "quote_volume")],
                            **{
                                c: [(DAILY_RETURNS, "return_1d")]
                                for c in ("advancers", "decliners", "unchanged", "best_return_1d", "worst_return_1d")
                            },
                            "best_symbol": [(DAILY_RETURNS, "symbol"), (DAILY_RETURNS, "return_1d")],
                            "worst_symbol": [(DAILY_RETURNS, "symbol"), (DAILY_RETURNS, "return_1d")],
                        }
                    ),
                },
            ),
        },
    )
