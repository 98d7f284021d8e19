"""gold/bars_1m: 1-minute OHLCV, VWAP, mean spread and realised volatility from 1-second bars."""

import polars as pl
from dagster import AssetExecutionContext, AssetIn, BackfillPolicy, Output, asset

from cryptolake_assets.metadata import markdown_preview, table_schema_of, time_span
from cryptolake_assets.silver.bars import BARS_1M_SCHEMA, build_bars_1m
from partitions import DAILY_SYMBOL_PARTITION_EXPR, daily_symbol_partitions

COLUMNS = {
    "window_start": "start of the minute, UTC",
    "vwap": "volume_quote / volume_base",
    "spread": "mean 1-second spread of the minute's seconds with a quote",
    "realized_vol": "√Σ r², r the log returns between consecutive 1-second closes in the minute",
    "seconds_with_trades": "1-second bars in the minute (60 − it: seconds without trades)",
}


@asset(
    key=["gold", "bars_1m"],
    ins={"bars_1s": AssetIn(key=["silver", "bars_1s"])},
    partitions_def=daily_symbol_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    pool="duckdb",
    group_name="gold",
    kinds={"polars", "duckdb"},
    owners=["team:analytics"],
    tags={"layer": "gold", "pipeline": "stream"},
    metadata={"partition_expr": DAILY_SYMBOL_PARTITION_EXPR, "dagster/column_schema": table_schema_of(BARS_1M_SCHEMA, COLUMNS)},
)
def bars_1m(context: AssetExecutionContext, bars_1s: pl.DataFrame) -> Output[pl.DataFrame]:
    """Aggregate 1-second bars into 1-minute bars with spread and realised volatility."""
    bars = build_bars_1m(bars_1s)
    return Output(
        bars,
        metadata={
            "rows": len(bars),
            **time_span(bars, "window_start"),
            "preview": markdown_preview(bars, columns=["symbol", "window_start", "open", "close", "vwap", "spread", "realized_vol"]),
        },
    )
