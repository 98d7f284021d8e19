"""silver/coingecko_markets: typed daily CoinGecko snapshot per universe symbol."""

import polars as pl
from dagster import AssetExecutionContext, AssetIn, MetadataValue, Output

from cryptolake_assets.medallion import medallion_asset
from cryptolake_assets.metadata import markdown_preview, rich_metadata, run_wide
from partitions import SymbolInfo, daily_partitions, load_universe
from resources.duckdb_io import partition_days

BRONZE = ["bronze", "coingecko_markets"]
STALE_AFTER_HOURS = 24

SILVER_COINGECKO_SCHEMA = pl.Schema(
    {
        "date": pl.Date(),
        "symbol": pl.String(),
        "coingecko_id": pl.String(),
        "name": pl.String(),
        "market_cap_rank": pl.Int64(),
        "price_usd": pl.Float64(),
        "market_cap": pl.Float64(),
        "fully_diluted_valuation": pl.Float64(),
        "total_volume_24h": pl.Float64(),
        "high_24h": pl.Float64(),
        "low_24h": pl.Float64(),
        "price_change_24h": pl.Float64(),
        "price_change_pct_24h": pl.Float64(),
        "market_cap_change_24h": pl.Float64(),
        "market_cap_change_pct_24h": pl.Float64(),
        "circulating_supply": pl.Float64(),
        "total_supply": pl.Float64(),
        "max_supply": pl.Float64(),
        "ath": pl.Float64(),
        "ath_change_pct": pl.Float64(),
        "ath_date": pl.Datetime("us", "UTC"),
        "atl": pl.Float64(),
        "atl_change_pct": pl.Float64(),
        "atl_date": pl.Datetime("us", "UTC"),
        "roi_times": pl.Float64(),
        "roi_currency": pl.String(),
        "roi_percentage": pl.Float64(),
        "last_updated": pl.Datetime("us", "UTC"),
        "ingested_at": pl.Datetime("us", "UTC"),
        "is_stale": pl.Boolean(),
    }
)


def _timestamp(column: str) -> pl.Expr:
    return pl.col(column).str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_unit="us", time_zone="UTC", strict=True)


def silver_coingecko_markets(bronze: pl.DataFrame, universe: tuple[SymbolInfo, ...]) -> pl.DataFrame:
    """Bronze snapshot rows → one typed row per (day, universe symbol); ISO strings become UTC
    timestamps, ``roi`` is flattened, and a coin whose ``last_updated`` is more than a day older
    than the capture is flagged ``is_stale`` (CoinGecko keeps serving delisted coins)."""
    symbols = pl.DataFrame(
        {"coingecko_id": [i.coingecko_id for i in universe], "symbol": [i.symbol for i in universe]},
        schema={"coingecko_id": pl.String(), "symbol": pl.String()},
    ).filter(pl.col("coingecko_id") != "")
    typed = (
        bronze.drop("symbol")
        .join(symbols, left_on="id", right_on="coingecko_id", how="inner")
        .select(
            "date",
            "symbol",
            pl.col("id").alias("coingecko_id"),
            "name",
            "market_cap_rank",
            pl.col("current_price").alias("price_usd"),
            "market_cap",
            "fully_diluted_valuation",
            pl.col("total_volume").alias("total_volume_24h"),
            "high_24h",
            "low_24h",
            "price_change_24h",
            pl.col("price_change_percentage_24h").alias("price_change_pct_24h"),
            "market_cap_change_24h",
            pl.col("market_cap_change_percentage_24h").alias("market_cap_change_pct_24h"),
            "circulating_supply",
            "total_supply",
            "max_supply",
            "ath",
            pl.col("ath_change_percentage").alias("ath_change_pct"),
            _timestamp("ath_date").alias("ath_date"),
            "atl",
            pl.col("atl_change_percentage").alias("atl_change_pct"),
            _timestamp("atl_date").alias("atl_date"),
            pl.col("roi").struct.field("times").alias("roi_times"),
            pl.col("roi").struct.field("currency").alias("roi_currency"),
            pl.col("roi").struct.field("percentage").alias("roi_percentage"),
            _timestamp("last_updated").alias("last_updated"),
            "ingested_at",
        )
    )
    stale = (pl.col("ingested_at") - pl.col("last_updated")) > pl.duration(hours=STALE_AFTER_HOURS)
    return (
        typed.with_columns(is_stale=stale)
        .select(list(SILVER_COINGECKO_SCHEMA))
        .cast(SILVER_COINGECKO_SCHEMA)
        .unique(subset=["date", "symbol"], keep="last", maintain_order=True)
        .sort("date", "symbol")
    )


@medallion_asset(
    "silver",
    "coingecko_markets",
    schema=SILVER_COINGECKO_SCHEMA,
    partitions_def=daily_partitions,
    source="coingecko",
    ins={"bronze": AssetIn(key=BRONZE)},
)
def coingecko_markets(context: AssetExecutionContext, bronze: pl.DataFrame) -> Output[pl.DataFrame]:
    """Daily CoinGecko snapshot per universe symbol: price, market cap and rank, circulating /
    total / max supply (null where CoinGecko has none), 24 h volume and change, ATH/ATL, ROI;
    keeps CoinGecko's ``last_updated`` and the ingestion time and flags stale coins."""
    rows = silver_coingecko_markets(bronze, load_universe())
    return Output(
        rows,
        metadata={
            "rows": len(rows),
            "days_with_snapshots": rows["date"].n_unique(),
            **run_wide(
                {
                    "symbols": rows["symbol"].n_unique(),
                    "stale_rows": int(rows["is_stale"].sum()),
                    "null_max_supply": int(rows["max_supply"].null_count()),
                    "latest_day": MetadataValue.text(str(rows["date"].max()) if len(rows) else "-"),
                }
            ),
            **rich_metadata(
                len(partition_days(*context.partition_time_window)),
                lambda: {
                    "preview": markdown_preview(
                        rows.sort("date", "market_cap_rank", descending=[True, False], nulls_last=True),
                        columns=[
                            "date",
                            "symbol",
                            "market_cap_rank",
                            "price_usd",
                            "market_cap",
                            "circulating_supply",
                            "max_supply",
                            "is_stale",
                        ],
                    ),
                },
            ),
        },
    )
