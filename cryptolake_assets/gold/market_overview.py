"""gold/market_overview: the dashboard's "overview" and "sentiment" pages as one row per UTC day."""

import datetime as dt

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetIn,
    MetadataValue,
    Output,
    TimeWindowPartitionMapping,
)

from cryptolake_assets.gold.table_metadata import column_lineage
from cryptolake_assets.medallion import medallion_asset
from cryptolake_assets.metadata import markdown_preview, rich_metadata, run_wide
from partitions import daily_partitions
from resources.duckdb_io import partition_days

MARKET_DAILY = ["gold", "market_daily"]
FEAR_GREED = ["silver", "fear_greed"]
COINGECKO = ["silver", "coingecko_markets"]
TOP_N = 10
SENTIMENT_WINDOW_DAYS = 7

TOP_TYPE = pl.List(pl.Struct({"symbol": pl.String(), "market_cap": pl.Float64(), "change_pct_24h": pl.Float64()}))
MARKET_OVERVIEW_SCHEMA = pl.Schema(
    {
        "date": pl.Date(),
        "symbols_traded": pl.Int64(),
        "total_quote_volume": pl.Float64(),
        "advancers": pl.Int64(),
        "decliners": pl.Int64(),
        "coins_with_market_cap": pl.Int64(),
        "universe_market_cap": pl.Float64(),
        "universe_market_cap_change_pct_24h": pl.Float64(),
        "btc_dominance": pl.Float64(),
        "top_by_market_cap": TOP_TYPE,
        "fear_greed_value": pl.Int64(),
        "fear_greed_classification": pl.String(),
        "fear_greed_missing": pl.Boolean(),
        "fear_greed_7d_mean": pl.Float64(),
    }
)

COLUMNS = {
    "date": "UTC day (joins dim_date.date)",
    "symbols_traded": "symbols with a bar on the day (gold.market_daily.symbols; null: no klines)",
    "total_quote_volume": "sum of Binance quote volume (USDT) over the universe",
    "advancers": "symbols with return_1d > 0",
    "decliners": "symbols with return_1d < 0",
    "coins_with_market_cap": "universe coins in the day's CoinGecko snapshot with a market cap (0: no snapshot that day)",
    "universe_market_cap": "sum of CoinGecko market caps (USD) over the universe's coins (null: no snapshot)",
    "universe_market_cap_change_pct_24h": "change of that sum over CoinGecko's 24 h, in %",
    "btc_dominance": "Bitcoin's share of the universe market cap (0..1), not of the whole crypto market",
    "top_by_market_cap": f"the {TOP_N} largest coins: symbol, market cap (USD), CoinGecko 24 h price change %",
    "fear_greed_value": "Alternative.me Fear & Greed Index (0 extreme fear .. 100 extreme greed)",
    "fear_greed_classification": "the index's own classification, as published",
    "fear_greed_missing": "true when the index published no value for the day",
    "fear_greed_7d_mean": f"mean of the published values over the {SENTIMENT_WINDOW_DAYS} days ending on the day",
}


def market_overview(
    market_daily: pl.DataFrame, fear_greed: pl.DataFrame, coingecko: pl.DataFrame, days: list[dt.date]
) -> pl.DataFrame:
    """Join market breadth, CoinGecko caps and sentiment per day; every day of ``days`` gets a row."""
    grid = pl.DataFrame({"date": days}, schema={"date": pl.Date()})
    breadth = market_daily.select(
        "date", pl.col("symbols").alias("symbols_traded"), "total_quote_volume", "advancers", "decliners"
    )
    caps = coingecko.filter(pl.col("market_cap").is_not_null() & (pl.col("market_cap") > 0))
    previous_cap = pl.col("market_cap") - pl.col("market_cap_change_24h")
    totals = caps.group_by("date").agg(
        coins_with_market_cap=pl.len(),
        universe_market_cap=pl.col("market_cap").sum(),
        previous=pl.when(pl.col("market_cap_change_24h").is_not_null())
        .then(previous_cap)
        .otherwise(pl.col("market_cap"))
        .sum(),
        btc_cap=pl.col("market_cap").filter(pl.col("coingecko_id") == "bitcoin").sum(),
        top_by_market_cap=pl.struct("symbol", "market_cap", pl.col("price_change_pct_24h").alias("change_pct_24h"))
        .sort_by([pl.col("market_cap"), pl.col("symbol")], descending=[True, False])
        .head(TOP_N),
    )
    totals = totals.with_columns(
        universe_market_cap_change_pct_24h=(pl.col("universe_market_cap") / pl.col("previous") - 1) * 100,
        btc_dominance=pl.col("btc_cap") / pl.col("universe_market_cap"),
    )
    sentiment = (
        fear_greed.sort("date")
        .with_columns(
            fear_greed_7d_mean=pl.col("value")
            .cast(pl.Float64)
            .rolling_mean_by("date", window_size=f"{SENTIMENT_WINDOW_DAYS}d", min_samples=1)
        )
        .select(
            "date",
            pl.col("value").alias("fear_greed_value"),
            pl.col("value_classification").alias("fear_greed_classification"),
            pl.col("is_missing").alias("fear_greed_missing"),
            "fear_greed_7d_mean",
        )
    )
    return (
        grid.join(breadth, on="date", how="left")
        .join(totals, on="date", how="left")
        .join(sentiment, on="date", how="left")
        .with_columns(
            coins_with_market_cap=pl.col("coins_with_market_cap").fill_null(0),
            fear_greed_missing=pl.col("fear_greed_missing").fill_null(True),
        )
        .select(list(MARKET_OVERVIEW_SCHEMA))
        .cast(MARKET_OVERVIEW_SCHEMA)
        .sort("date")
    )


def _readable(rows: pl.DataFrame) -> pl.DataFrame:
    texts = [_top_text(top) for top in rows["top_by_market_cap"].to_list()]
    return rows.with_columns(top_by_market_cap=pl.Series(texts, dtype=pl.String()))


def _top_text(top: list[dict] | None) -> str:
    if not top:
        return "-"
    return ", ".join(
        f"{item['symbol']} {item['market_cap'] / 1e9:,.1f}B"
        + ("" if item["change_pct_24h"] is None else f" ({item['change_pct_24h']:+.2f}%)")
        for item in top
    )


@medallion_asset(
    "gold",
    "market_overview",
    schema=MARKET_OVERVIEW_SCHEMA,
    columns=COLUMNS,
    partitions_def=daily_partitions,
    ins={
        "market_daily": AssetIn(
            key=MARKET_DAILY, metadata={"columns": ["date", "symbols", "total_quote_volume", "advancers", "decliners"]}
        ),
        "fear_greed": AssetIn(
            key=FEAR_GREED, partition_mapping=TimeWindowPartitionMapping(start_offset=-(SENTIMENT_WINDOW_DAYS - 1))
        ),
        "coingecko": AssetIn(
            key=COINGECKO,
            metadata={
                "columns": [
                    "date",
                    "symbol",
                    "coingecko_id",
                    "market_cap",
                    "market_cap_change_24h",
                    "price_change_pct_24h",
                ]
            },
        ),
    },
)
def gold_market_overview(
    context: AssetExecutionContext, market_daily: pl.DataFrame, fear_greed: pl.DataFrame, coingecko: pl.DataFrame
) -> Output[pl.DataFrame]:
    """Dashboard overview + sentiment per day: market breadth and volume, universe market cap,
    BTC dominance within the universe, top coins by market cap with 24 h change, and the Fear &
    Greed value and classification (missing days flagged)."""
    days = partition_days(*context.partition_time_window)
    rows = market_overview(market_daily, fear_greed, coingecko, days)
    latest = rows.row(-1, named=True) if len(rows) else None
    return Output(
        rows,
        metadata={
            "rows": len(rows),
            **run_wide(
                {
                    "days_with_market_cap": int((rows["coins_with_market_cap"] > 0).sum()),
                    "days_without_sentiment": int(rows["fear_greed_missing"].sum()),
                    "latest": MetadataValue.text(
                        f"{latest['date']}: F&G {latest['fear_greed_value']} ({latest['fear_greed_classification']}), "
                        f"BTC dominance {latest['btc_dominance']}, top: {_top_text(latest['top_by_market_cap'])}"
                        if latest
                        else "-"
                    ),
                }
            ),
            **rich_metadata(
                len(days),
                lambda: {
                    "preview": markdown_preview(_readable(rows.sort("date", descending=True).head(10))),
                    "dagster/column_lineage": column_lineage(
                        {
                            "date": [(MARKET_DAILY, "date"), (FEAR_GREED, "date"), (COINGECKO, "date")],
                            "symbols_traded": [(MARKET_DAILY, "symbols")],
                            "total_quote_volume": [(MARKET_DAILY, "total_quote_volume")],
                            "advancers": [(MARKET_DAILY, "advancers")],
                            "decliners": [(MARKET_DAILY, "decliners")],
                            "coins_with_market_cap": [(COINGECKO, "market_cap")],
                            "universe_market_cap": [(COINGECKO, "market_cap")],
                            "universe_market_cap_change_pct_24h": [
                                (COINGECKO, "market_cap"),
                                (COINGECKO, "market_cap_change_24h"),
                            ],
                            "btc_dominance": [(COINGECKO, "market_cap"), (COINGECKO, "coingecko_id")],
                            "top_by_market_cap": [
                                (COINGECKO, "symbol"),
                                (COINGECKO, "market_cap"),
                                (COINGECKO, "price_change_pct_24h"),
                            ],
                            "fear_greed_value": [(FEAR_GREED, "value")],
                            "fear_greed_classification": [(FEAR_GREED, "value_classification")],
                            "fear_greed_missing": [(FEAR_GREED, "is_missing")],
                            "fear_greed_7d_mean": [(FEAR_GREED, "value")],
                        }
                    ),
                },
            ),
        },
    )
