"""gold/ml_features: point-in-time ML features and next-day targets per UTC day and symbol."""

import datetime as dt

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetIn,
    MultiToSingleDimensionPartitionMapping,
    Output,
    TimeWindowPartitionMapping,
)

from cryptolake_assets.medallion import medallion_asset
from cryptolake_assets.metadata import markdown_preview, rich_metadata, run_wide
from cryptolake_assets.ml import features as ml
from partitions import DATE_DIMENSION, daily_partitions, load_universe
from resources.duckdb_io import partition_days

# [D − 30, D + 1]: the features read up to D; only the target reads D + 1 (null until D + 1 closed).
# The newest partition has no D + 1 partition yet: allowed, the target stays null.
RETURNS_WINDOW = TimeWindowPartitionMapping(
    start_offset=-ml.LOOKBACK_DAYS, end_offset=1, allow_nonexistent_upstream_partitions=True
)
COINGECKO_WINDOW = TimeWindowPartitionMapping(start_offset=-(ml.MARKET_CAP_MAX_AGE_DAYS - 1))


def last_closed_day() -> dt.date:
    """The newest UTC day whose close is final (yesterday)."""
    return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)


@medallion_asset(
    "gold",
    "ml_features",
    schema=ml.ML_FEATURES_SCHEMA,
    columns=ml.COLUMNS,
    partitions_def=daily_partitions,
    ins={
        "daily_returns": AssetIn(
            key=["gold", "daily_returns"],
            partition_mapping=RETURNS_WINDOW,
            metadata={"columns": ["date", "symbol", "close", "quote_volume"]},
        ),
        "daily_features": AssetIn(
            key=["gold", "daily_features"],
            partition_mapping=MultiToSingleDimensionPartitionMapping(DATE_DIMENSION),
            metadata={"columns": ["date", "symbol", "volatility_30d", "rsi_14", "drawdown_30d"]},
        ),
        "correlations": AssetIn(key=["gold", "correlations"]),
        "category_daily": AssetIn(
            key=["gold", "category_daily"], metadata={"columns": ["date", "category", "mean_return_1d"]}
        ),
        "market_daily": AssetIn(
            key=["gold", "market_daily"], metadata={"columns": ["date", "symbols", "advancers", "decliners"]}
        ),
        "fear_greed": AssetIn(key=["silver", "fear_greed"], metadata={"columns": ["date", "value"]}),
        "coingecko": AssetIn(
            key=["silver", "coingecko_markets"],
            partition_mapping=COINGECKO_WINDOW,
            metadata={"columns": ["date", "symbol", "market_cap_rank"]},
        ),
    },
)
def ml_features(
    context: AssetExecutionContext,
    daily_returns: pl.DataFrame,
    daily_features: pl.DataFrame,
    correlations: pl.DataFrame,
    category_daily: pl.DataFrame,
    market_daily: pl.DataFrame,
    fear_greed: pl.DataFrame,
    coingecko: pl.DataFrame,
) -> Output[pl.DataFrame]:
    """ML-ready features of day D known at D's close (lagged returns, volatility, RSI, drawdown, volume
    z-score, correlation to BTC, category return, breadth, Fear & Greed, market-cap rank) and the
    next-day targets, null until D + 1 has closed: re-materialize D after that to fill them."""
    days = partition_days(*context.partition_time_window)
    closed = last_closed_day()
    category_by_symbol = {info.symbol: info.category for info in load_universe()}
    rows = ml.ml_features(
        daily_returns,
        daily_features,
        correlations,
        category_daily,
        market_daily,
        fear_greed,
        coingecko,
        days,
        category_by_symbol,
        closed,
    )
    return Output(
        rows,
        metadata={
            "rows": len(rows),
            "days": len(days),
            **run_wide(
                {
                    "rows_with_target": rows["target_log_return_1d"].count(),
                    "last_closed_day": str(closed),
                }
            ),
            **rich_metadata(
                len(days),
                lambda: {
                    "preview": markdown_preview(
                        rows.sort("date", "symbol", descending=[True, False]),
                        columns=[
                            "date",
                            "symbol",
                            "ret_1d",
                            "ret_30d",
                            "volatility_30d",
                            "corr_btc_30d",
                            "market_breadth",
                            "target_log_return_1d",
                        ],
                    ),
                },
            ),
        },
    )
