"""gold/daily_features: per symbol and UTC day, the day's bars and its 30-day-window features."""

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    DimensionPartitionMapping,
    IdentityPartitionMapping,
    MetadataValue,
    MultiPartitionMapping,
    Output,
    TimeWindowPartitionMapping,
)

from cryptolake_assets.gold import features
from cryptolake_assets.gold.charts import price_chart
from cryptolake_assets.gold.table_metadata import column_lineage
from cryptolake_assets.medallion import medallion_asset
from cryptolake_assets.metadata import add_partition_figures, markdown_preview, rich_metadata
from cryptolake_assets.partition_scope import run_scope
from partitions import DATE_DIMENSION, SYMBOL_DIMENSION, daily_symbol_partitions

SILVER = ["silver", "ohlcv"]

# Same symbol, [D − 30, D]: volatility_30d needs the close of D − 30. Windows reaching before the
# first partition are clipped by Dagster (the features are then null: start of history).
SILVER_LOOKBACK = MultiPartitionMapping(
    {
        DATE_DIMENSION: DimensionPartitionMapping(
            DATE_DIMENSION, TimeWindowPartitionMapping(start_offset=-features.LOOKBACK_DAYS)
        ),
        SYMBOL_DIMENSION: DimensionPartitionMapping(SYMBOL_DIMENSION, IdentityPartitionMapping()),
    }
)

COLUMNS = {
    "date": "UTC day (joins dim_date.date)",
    "symbol": "Binance spot pair (joins dim_symbol.symbol)",
    "open": "open of the day's first bar",
    "high": "highest high of the day's bars",
    "low": "lowest low of the day's bars",
    "close": "close of the day's last bar",
    "volume": "sum of base-asset volume",
    "quote_volume": "sum of quote-asset (USDT) volume",
    "trades": "sum of trade counts",
    "bars": "bars present",
    "missing_bars": "expected − present bars (listing window and, for today, closed bars only)",
    "vwap": "sum(quote_volume) / sum(volume); null when volume is 0",
    "return_1d": "close_D / close_(D−1) − 1",
    "log_return_1d": "ln(close_D / close_(D−1))",
    "sma_7": "mean close over [D−6, D]; null unless all 7 days are present",
    "sma_30": "mean close over [D−29, D]; null unless all 30 days are present",
    "volatility_30d": "sample std (ddof=1) of the 30 log returns over [D−29, D] × sqrt(365)",
    "rsi_14": "100·G/(G+L) of the 14 close changes over [D−13, D]; 50 when G+L = 0",
    "drawdown_30d": "close_D / max(close over [D−29, D]) − 1",
}

_SILVER_DEPS = {
    "date": ["date"],
    "symbol": ["symbol"],
    "open": ["open"],
    "high": ["high"],
    "low": ["low"],
    "close": ["close"],
    "volume": ["volume"],
    "quote_volume": ["quote_volume"],
    "trades": ["trades"],
    "bars": ["open_time"],
    "missing_bars": ["open_time", "interval"],
    "vwap": ["quote_volume", "volume"],
    **{
        name: ["close"]
        for name in ("return_1d", "log_return_1d", "sma_7", "sma_30", "volatility_30d", "rsi_14", "drawdown_30d")
    },
}
LINEAGE = column_lineage({column: [(SILVER, name) for name in names] for column, names in _SILVER_DEPS.items()})


@medallion_asset(
    "gold",
    "daily_features",
    schema=features.DAILY_FEATURES_SCHEMA,
    columns=COLUMNS,
    partitions_def=daily_symbol_partitions,
    ins={
        "silver_ohlcv": AssetIn(
            key=SILVER, partition_mapping=SILVER_LOOKBACK, metadata={"columns": features.SILVER_COLUMNS}
        )
    },
)
def daily_features(context: AssetExecutionContext, silver_ohlcv: pl.LazyFrame) -> Output[pl.DataFrame]:
    """Daily OHLCV per symbol with returns, SMA 7/30, 30-day volatility, RSI 14 and 30-day drawdown.
    Each (date, symbol) reads only that symbol's silver bars of [date − 30, date], so a partition is
    identical whether materialized alone or inside any backfill range."""
    scope = run_scope(context)
    # silver_ohlcv is a lazy scan of the silver slice: daily_bars reads it one symbol at a time.
    bars = features.daily_bars(silver_ohlcv, symbols=scope.symbols)
    history = features.daily_features(bars)
    rows = history.filter(pl.col("date").is_in(list(scope.days)))
    silver_bars_read = int(bars["bars"].sum()) if not bars.is_empty() else 0
    context.log.info(f"{len(rows)} feature rows for {scope.describe()} from {silver_bars_read} silver bars")
    _add_partition_figures(context, rows, scope)
    return Output(
        rows,
        metadata={
            "rows": len(rows),
            "partitions": len(scope.days) * len(scope.symbols),
            "partitions_without_bars": len(scope.days) * len(scope.symbols) - len(rows),
            "rows_with_full_30d_window": rows["volatility_30d"].count(),
            "missing_bars": int(rows["missing_bars"].sum()) if not rows.is_empty() else 0,
            **rich_metadata(
                len(scope.days) * len(scope.symbols),
                lambda: {
                    "preview": markdown_preview(
                        rows,
                        columns=[
                            "date",
                            "symbol",
                            "close",
                            "return_1d",
                            "sma_7",
                            "sma_30",
                            "volatility_30d",
                            "rsi_14",
                            "drawdown_30d",
                        ],
                    ),
                    "price_chart": price_chart(history, list(scope.days)),
                    "dagster/column_lineage": LINEAGE,
                    "symbols": MetadataValue.text(", ".join(scope.symbols)),
                },
            ),
        },
    )


def _add_partition_figures(context: AssetExecutionContext, rows: pl.DataFrame, scope) -> None:
    """Each partition's own window and missing-bar counts (a range run's totals stay on the run)."""
    grid = pl.DataFrame(
        [{"date": day, "symbol": symbol} for day in scope.days for symbol in scope.symbols],
        schema={"date": pl.Date, "symbol": pl.String},
    )
    counts = rows.group_by("date", "symbol").agg(
        rows_with_full_30d_window=pl.col("volatility_30d").count().cast(pl.Int64),
        missing_bars=pl.col("missing_bars").sum().cast(pl.Int64),
    )
    figures = grid.join(counts, on=["date", "symbol"], how="left").fill_null(0)
    add_partition_figures(context, AssetKey(["gold", "daily_features"]), figures, {"date": "date", "symbol": "symbol"})
