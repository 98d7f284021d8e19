"""gold/dim_symbol_market: the symbol dimension's market attributes from the latest CoinGecko snapshot."""

import polars as pl
from dagster import AssetIn, MetadataValue, Output

from cryptolake_assets.medallion import medallion_asset
from cryptolake_assets.metadata import markdown_preview
from partitions import load_universe

COINGECKO = ["silver", "coingecko_markets"]

DIM_SYMBOL_MARKET_SCHEMA = pl.Schema(
    {
        "symbol": pl.String(),
        "coingecko_id": pl.String(),
        "coingecko_name": pl.String(),
        "market_cap_rank": pl.Int64(),
        "market_cap": pl.Float64(),
        "circulating_supply": pl.Float64(),
        "total_supply": pl.Float64(),
        "max_supply": pl.Float64(),
        "snapshot_date": pl.Date(),
        "last_updated": pl.Datetime("us", "UTC"),
        "is_stale": pl.Boolean(),
    }
)

COLUMNS = {
    "symbol": "Binance spot pair (joins gold.dim_symbol.symbol)",
    "coingecko_id": "CoinGecko coin id",
    "coingecko_name": "name on CoinGecko",
    "market_cap_rank": "CoinGecko market-cap rank (whole market) on the snapshot day",
    "market_cap": "market cap in USD on the snapshot day",
    "circulating_supply": "circulating supply",
    "total_supply": "total supply (null: CoinGecko has none)",
    "max_supply": "maximum supply (null: uncapped or unknown)",
    "snapshot_date": "UTC day of the CoinGecko snapshot these values come from",
    "last_updated": "CoinGecko's last_updated for the coin in that snapshot",
    "is_stale": "true when CoinGecko's data was over a day old at capture (e.g. delisted coins)",
}


def latest_market_attributes(snapshots: pl.DataFrame) -> pl.DataFrame:
    """One row per symbol from its most recent snapshot (universe symbols without one are absent)."""
    universe = {info.symbol for info in load_universe()}
    return (
        snapshots.filter(pl.col("symbol").is_in(universe))
        .sort("date", "ingested_at")
        .group_by("symbol", maintain_order=True)
        .last()
        .select(
            "symbol",
            "coingecko_id",
            pl.col("name").alias("coingecko_name"),
            "market_cap_rank",
            "market_cap",
            "circulating_supply",
            "total_supply",
            "max_supply",
            pl.col("date").alias("snapshot_date"),
            "last_updated",
            "is_stale",
        )
        .cast(DIM_SYMBOL_MARKET_SCHEMA)
        .sort("symbol")
    )


@medallion_asset(
    "gold",
    "dim_symbol_market",
    schema=DIM_SYMBOL_MARKET_SCHEMA,
    columns=COLUMNS,
    ins={"snapshots": AssetIn(key=COINGECKO)},
)
def dim_symbol_market(snapshots: pl.DataFrame) -> Output[pl.DataFrame]:
    """Market attributes of each symbol (CoinGecko name, market-cap rank, market cap, circulating /
    total / max supply) from its latest CoinGecko snapshot; joins gold.dim_symbol on symbol."""
    rows = latest_market_attributes(snapshots)
    return Output(
        rows,
        metadata={
            "rows": len(rows),
            "snapshot_dates": MetadataValue.text(
                ", ".join(sorted({str(d) for d in rows["snapshot_date"].to_list()})) or "-"
            ),
            "stale_symbols": MetadataValue.text(", ".join(rows.filter(pl.col("is_stale"))["symbol"].to_list()) or "-"),
            "preview": markdown_preview(rows.sort("market_cap_rank", nulls_last=True), rows=50),
        },
    )
