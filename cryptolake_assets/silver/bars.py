"""Pure Polars bar building for the live stream: trades (+ quotes) → 1-second bars → 1-minute bars.

1-second bars: one row per (symbol, UTC second) that had at least one trade; open/close are the
first/last trade by (trade time, trade id), volume_quote is Σ price·qty, vwap = volume_quote /
volume_base, bid/ask the last quote (by receive time, then update id) received in that second
(null when none came), spread = ask − bid. Seconds without trades carry no bar.

1-minute bars aggregate the 1-second bars of a minute: OHLC, volumes, trade count, vwap, the mean
1-second spread, ``realized_vol`` = √Σ r² over the log returns between consecutive 1-second closes
inside the minute (0 for a single bar), and ``seconds_with_trades`` (60 − it = seconds without).
"""

import polars as pl

UTC_US = pl.Datetime("us", "UTC")

BARS_1S_SCHEMA = pl.Schema(
    {
        "date": pl.Date(),
        "symbol": pl.String(),
        "window_start": UTC_US,
        "open": pl.Float64(),
        "high": pl.Float64(),
        "low": pl.Float64(),
        "close": pl.Float64(),
        "volume_base": pl.Float64(),
        "volume_quote": pl.Float64(),
        "trade_count": pl.Int64(),
        "vwap": pl.Float64(),
        "bid": pl.Float64(),
        "ask": pl.Float64(),
        "spread": pl.Float64(),
    }
)

BARS_1M_SCHEMA = pl.Schema(
    {
        "date": pl.Date(),
        "symbol": pl.String(),
        "window_start": UTC_US,
        "open": pl.Float64(),
        "high": pl.Float64(),
        "low": pl.Float64(),
        "close": pl.Float64(),
        "volume_base": pl.Float64(),
        "volume_quote": pl.Float64(),
        "trade_count": pl.Int64(),
        "vwap": pl.Float64(),
        "spread": pl.Float64(),
        "realized_vol": pl.Float64(),
        "seconds_with_trades": pl.Int64(),
    }
)


def _sum(values: pl.Expr) -> pl.Expr:
    """Σ in row order, one addition after the other: the same float result whatever the frame's
    chunking or sortedness flags (Polars' ``sum`` picks pairwise/SIMD paths by layout, which can
    differ in the last bit between a frame built in memory and the same rows read from DuckDB)."""
    return values.cum_sum().last()


def _second(ms: pl.Expr) -> pl.Expr:
    return pl.from_epoch(ms // 1000 * 1000, time_unit="ms").dt.replace_time_zone("UTC").cast(UTC_US)


def build_bars_1s(trades: pl.DataFrame, quotes: pl.DataFrame | None = None) -> pl.DataFrame:
    """1-second bars from trades (symbol, trade_id, price, qty, trade_time ms) and quotes
    (symbol, update_id, bid, ask, recv_ms); prices and sizes may be exchange strings."""
    if trades.is_empty():
        return pl.DataFrame(schema=BARS_1S_SCHEMA)
    bars = (
        trades.lazy()
        .select(
            "symbol",
            "trade_id",
            "trade_time",
            pl.col("price").cast(pl.Float64),
            pl.col("qty").cast(pl.Float64),
        )
        .sort("symbol", "trade_time", "trade_id")
        .with_columns(window_start=_second(pl.col("trade_time")))
        .group_by("symbol", "window_start", maintain_order=True)
        .agg(
            open=pl.col("price").first(),
            high=pl.col("price").max(),
            low=pl.col("price").min(),
            close=pl.col("price").last(),
            volume_base=_sum(pl.col("qty")),
            volume_quote=_sum(pl.col("price") * pl.col("qty")),
            trade_count=pl.len().cast(pl.Int64),
        )
        .with_columns(vwap=pl.col("volume_quote") / pl.col("volume_base"))
    )
    if quotes is not None and not quotes.is_empty():
        last_quotes = (
            quotes.lazy()
            .select("symbol", "update_id", "recv_ms", pl.col("bid").cast(pl.Float64), pl.col("ask").cast(pl.Float64))
            .sort("symbol", "recv_ms", "update_id")
            .with_columns(window_start=_second(pl.col("recv_ms")))
            .group_by("symbol", "window_start")
            .agg(bid=pl.col("bid").last(), ask=pl.col("ask").last())
        )
        bars = bars.join(last_quotes, on=["symbol", "window_start"], how="left")
    else:
        bars = bars.with_columns(bid=pl.lit(None, pl.Float64), ask=pl.lit(None, pl.Float64))
    return (
        bars.with_columns(spread=pl.col("ask") - pl.col("bid"), date=pl.col("window_start").dt.date())
        .select(list(BARS_1S_SCHEMA))
        .sort("symbol", "window_start")
        .collect()
        .cast(BARS_1S_SCHEMA)  # type: ignore[arg-type]
    )


def build_bars_1m(bars_1s: pl.DataFrame) -> pl.DataFrame:
    """1-minute bars from 1-second bars (see the module docstring)."""
    if bars_1s.is_empty():
        return pl.DataFrame(schema=BARS_1M_SCHEMA)
    return (
        bars_1s.lazy()
        .sort("symbol", "window_start")
        .with_columns(minute=pl.col("window_start").dt.truncate("1m"))
        .with_columns(log_return=(pl.col("close") / pl.col("close").shift(1)).log().over("symbol", "minute"))
        .group_by("symbol", "minute", maintain_order=True)
        .agg(
            open=pl.col("open").first(),
            high=pl.col("high").max(),
            low=pl.col("low").min(),
            close=pl.col("close").last(),
            volume_base=_sum(pl.col("volume_base")),
            volume_quote=_sum(pl.col("volume_quote")),
            trade_count=pl.col("trade_count").sum(),
            spread=_sum(pl.col("spread").drop_nulls()) / pl.col("spread").count(),
            realized_vol=_sum((pl.col("log_return") ** 2).fill_null(0.0)).sqrt(),
            seconds_with_trades=pl.len().cast(pl.Int64),
        )
        .rename({"minute": "window_start"})
        .with_columns(vwap=pl.col("volume_quote") / pl.col("volume_base"), date=pl.col("window_start").dt.date())
        .select(list(BARS_1M_SCHEMA))
        .sort("symbol", "window_start")
        .collect()
        .cast(BARS_1M_SCHEMA)  # type: ignore[arg-type]
    )


def seconds_without_trades(bars_1s: pl.DataFrame) -> pl.DataFrame:
    """Per symbol: seconds from its first to its last bar, and how many of them had no trade."""
    if bars_1s.is_empty():
        return pl.DataFrame(schema={"symbol": pl.String(), "seconds": pl.Int64(), "seconds_without_trades": pl.Int64})
    return (
        bars_1s.group_by("symbol")
        .agg(
            seconds=((pl.col("window_start").max() - pl.col("window_start").min()).dt.total_seconds() + 1).cast(
                pl.Int64
            ),
            bars=pl.len().cast(pl.Int64),
        )
        .with_columns(seconds_without_trades=pl.col("seconds") - pl.col("bars"))
        .select("symbol", "seconds", "seconds_without_trades")
        .sort("symbol")
    )
