"""gold/bars_1m: 1-minute OHLCV, VWAP, mean spread and realised volatility from 1-second bars."""

import polars as pl
from dagster import AssetExecutionContext, AssetIn, Output

from cryptolake_assets.medallion import medallion_asset
from cryptolake_assets.metadata import markdown_preview, time_span
from cryptolake_assets.silver.bars import BARS_1M_SCHEMA, build_bars_1m
from partitions import daily_symbol_partitions

COLUMNS = {
    "date": "UTC day of window_start (the partition)",
    "symbol": "Binance spot symbol",
    "window_start": "start of the minute, UTC",
    "open": "price of the minute's first trade",
    "high": "highest trade price of the minute",
    "low": "lowest trade price of the minute",
    "close": "price of the minute's last trade",
    "volume_base": "traded quantity, base asset",
    "volume_quote": "traded value, quote asset (Σ price × qty)",
    "trade_count": "trades in the minute",
    "vwap": "volume_quote / volume_base",
    "spread": "mean 1-second spread of the minute's seconds with a quote",
    "realized_vol": "√Σ r², r the log returns between consecutive 1-second closes in the minute",
    "seconds_with_trades": "1-second bars in the minute (60 − it: seconds without trades)",
}


@medallion_asset(
    "gold",
    "bars_1m",
    schema=BARS_1M_SCHEMA,
    columns=COLUMNS,
    partitions_def=daily_symbol_partitions,
    tags={"pipeline": "stream"},
    ins={"bars_1s": AssetIn(key=["silver", "bars_1s"])},
)
def bars_1m(context: AssetExecutionContext, bars_1s: pl.DataFrame) -> Output[pl.DataFrame]:
    """Aggregate 1-second bars into 1-minute bars with spread and realised volatility."""
    bars = build_bars_1m(bars_1s)
    return Output(
        bars,
        metadata={
            "rows": len(bars),
            **time_span(bars, "window_start"),
            "preview": markdown_preview(
                bars, columns=["symbol", "window_start", "open", "close", "vwap", "spread", "realized_vol"]
            ),
        },
    )
