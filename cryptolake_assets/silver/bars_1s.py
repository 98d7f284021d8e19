"""silver/bars_1s: 1-second OHLCV bars with VWAP and the last quote of the second, per UTC day × symbol."""

import polars as pl
from dagster import AssetExecutionContext, AssetIn, Output

from cryptolake_assets.medallion import medallion_asset
from cryptolake_assets.metadata import markdown_preview, time_span
from cryptolake_assets.silver.bars import BARS_1S_SCHEMA, build_bars_1s, seconds_without_trades
from partitions import daily_symbol_partitions

COLUMNS = {
    "date": "UTC day of window_start (partition column)",
    "window_start": "start of the second, UTC",
    "volume_base": "Σ qty",
    "volume_quote": "Σ price·qty",
    "trade_count": "trades in the second (seconds without trades have no bar)",
    "vwap": "volume_quote / volume_base",
    "bid": "last bookTicker bid received in the second (null: none)",
    "ask": "last bookTicker ask received in the second (null: none)",
    "spread": "ask − bid",
}


@medallion_asset(
    "silver",
    "bars_1s",
    schema=BARS_1S_SCHEMA,
    columns=COLUMNS,
    partitions_def=daily_symbol_partitions,
    tags={"pipeline": "stream"},
    ins={
        "trades": AssetIn(
            key=["bronze", "trades"], metadata={"columns": ["symbol", "trade_id", "price", "qty", "trade_time"]}
        ),
        "quotes": AssetIn(
            key=["bronze", "quotes"], metadata={"columns": ["symbol", "update_id", "bid", "ask", "recv_ms"]}
        ),
    },
)
def bars_1s(context: AssetExecutionContext, trades: pl.DataFrame, quotes: pl.DataFrame) -> Output[pl.DataFrame]:
    """Build 1-second bars from bronze trades and quotes; seconds without trades are counted, not filled."""
    bars = build_bars_1s(trades, quotes)
    idle = seconds_without_trades(bars)
    return Output(
        bars,
        metadata={
            "rows": len(bars),
            "trades": len(trades),
            "seconds_without_trades": int(idle["seconds_without_trades"].sum()) if len(idle) else 0,
            "seconds_without_quotes": int(bars["bid"].is_null().sum()),
            **time_span(bars, "window_start"),
            "preview": markdown_preview(
                bars,
                columns=["symbol", "window_start", "open", "high", "low", "close", "trade_count", "vwap", "spread"],
            ),
            "idle_seconds": markdown_preview(idle),
        },
    )
