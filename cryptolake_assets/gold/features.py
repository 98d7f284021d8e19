"""Gold computations as pure Polars functions (no Dagster): daily bars, per-symbol daily features,
30-day correlations, category and market summaries.

Windows are calendar-day windows ending on the row's date. Each symbol's days are laid on a full
calendar (a day without bars is a null), and a window is the list of its last n calendar values: a
value is null unless all n are present. Every window is evaluated from its own values rather than
with a sliding sum (Polars' ``rolling_*`` kernels add and subtract as they slide, so their last bits
depend on where the frame starts); this keeps a row bit-identical whatever range it is computed in.
"""

import datetime as dt
import math

import polars as pl

from cryptolake_assets.silver.transform import expected_bars

# The longest look-back: volatility_30d needs closes D-30 .. D.
LOOKBACK_DAYS = 30
CORRELATION_DAYS = 30
# Window ends per correlation block: bounds the exploded (pair × day × window) frame.
CORRELATION_BLOCK_DAYS = 31
RETURN_30D_DAYS = 30
ANNUALISATION_DAYS = 365

# The silver columns the daily aggregation reads (the I/O manager selects only these).
SILVER_COLUMNS = ["date", "symbol", "interval", "open_time", "open", "high", "low", "close", "volume", "quote_volume", "trades"]

DAILY_BARS_SCHEMA: dict[str, pl.DataType] = {
    "date": pl.Date(),
    "symbol": pl.String(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
    "quote_volume": pl.Float64(),
    "trades": pl.Int64(),
    "bars": pl.Int64(),
    "missing_bars": pl.Int64(),
    "vwap": pl.Float64(),
}

DAILY_FEATURES_SCHEMA: dict[str, pl.DataType] = {
    **DAILY_BARS_SCHEMA,
    "return_1d": pl.Float64(),
    "log_return_1d": pl.Float64(),
    "sma_7": pl.Float64(),
    "sma_30": pl.Float64(),
    "volatility_30d": pl.Float64(),
    "rsi_14": pl.Float64(),
    "drawdown_30d": pl.Float64(),
}

CORRELATIONS_SCHEMA: dict[str, pl.DataType] = {
    "date": pl.Date(),
    "symbol_a": pl.String(),
    "symbol_b": pl.String(),
    "corr_30d": pl.Float64(),
}

CATEGORY_DAILY_SCHEMA: dict[str, pl.DataType] = {
    "date": pl.Date(),
    "category": pl.String(),
    "members": pl.Int64(),
    "members_with_return_1d": pl.Int64(),
    "mean_return_1d": pl.Float64(),
    "members_with_return_30d": pl.Int64(),
    "mean_return_30d": pl.Float64(),
}

MARKET_DAILY_SCHEMA: dict[str, pl.DataType] = {
    "date": pl.Date(),
    "symbols": pl.Int64(),
    "total_quote_volume": pl.Float64(),
    "advancers": pl.Int64(),
    "decliners": pl.Int64(),
    "unchanged": pl.Int64(),
    "best_symbol": pl.String(),
    "best_return_1d": pl.Float64(),
    "worst_symbol": pl.String(),
    "worst_return_1d": pl.Float64(),
}


def _require(frame: pl.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks columns {missing}; it has {frame.columns}")


def daily_bars(silver_ohlcv: pl.DataFrame, now: dt.datetime | None = None) -> pl.DataFrame:
    """One row per symbol per UTC day with at least one bar: OHLCV aggregates, bar counts and vwap.

    ``missing_bars`` = expected − present (never negative), where expected counts the interval's
    bars in the day, clipped to the symbol's listing window and to ``now`` for the current day
    (``silver.transform.expected_bars``, the same rule silver reports completeness with).
    """
    _require(silver_ohlcv, SILVER_COLUMNS, "silver OHLCV")
    if silver_ohlcv.is_empty():
        return pl.DataFrame(schema=DAILY_BARS_SCHEMA)
    now = now or dt.datetime.now(dt.UTC)
    days = (
        silver_ohlcv.sort("symbol", "open_time")
        .group_by("symbol", "date", maintain_order=True)
        .agg(
            interval=pl.col("interval").first(),
            first_bar=pl.col("open_time").first(),
            open=pl.col("open").first(),
            high=pl.col("high").max(),
            low=pl.col("low").min(),
            close=pl.col("close").last(),
            volume=pl.col("volume").sum(),
            quote_volume=pl.col("quote_volume").sum(),
            trades=pl.col("trades").sum(),
            bars=pl.len(),
        )
    )
    expected = [
        expected_bars(row["symbol"], row["date"], row["interval"], now, row["first_bar"])
        for row in days.select("symbol", "date", "interval", "first_bar").iter_rows(named=True)
    ]
    return (
        days.with_columns(expected=pl.Series(expected, dtype=pl.Int64))
        .with_columns(
            missing_bars=(pl.col("expected") - pl.col("bars")).clip(lower_bound=0),
            vwap=pl.when(pl.col("volume") != 0).then(pl.col("quote_volume") / pl.col("volume")),
        )
        .select(list(DAILY_BARS_SCHEMA))
        .cast(DAILY_BARS_SCHEMA)
        .sort("symbol", "date")
    )


def on_calendar(frame: pl.DataFrame) -> pl.DataFrame:
    """Every calendar day from each symbol's first to last date (days without a row become nulls)."""
    calendar = (
        frame.group_by("symbol")
        .agg(date=pl.date_ranges(pl.col("date").min(), pl.col("date").max(), "1d"))
        .explode("date")
    )
    return calendar.join(frame, on=["symbol", "date"], how="left").sort("symbol", "date")


def _window(column: str | pl.Expr, days: int) -> pl.Expr:
    """The last ``days`` calendar values of a column ending on the row's day (needs ``on_calendar``)."""
    expr = pl.col(column) if isinstance(column, str) else column
    return pl.concat_list([expr.shift(offset).over("symbol") for offset in range(days)])


def _when_complete(window: pl.Expr, days: int, value: pl.Expr) -> pl.Expr:
    """``value`` when every day of ``window`` is present, else null."""
    return pl.when(window.list.drop_nulls().list.len() == days).then(value)


def daily_features(daily: pl.DataFrame, dates: list[dt.date] | None = None) -> pl.DataFrame:
    """Per symbol and day: the day's bars plus returns, SMAs, volatility, RSI and drawdown.

    ``daily`` is ``daily_bars`` output covering at least [D − 30, D] for each wanted D; only rows for
    ``dates`` (all days when None) that have bars are returned.
    """
    _require(daily, list(DAILY_BARS_SCHEMA), "daily bars")
    if daily.is_empty():
        return pl.DataFrame(schema=DAILY_FEATURES_SCHEMA)
    calendar = on_calendar(daily.select(list(DAILY_BARS_SCHEMA)))
    previous_close = pl.col("close").shift(1).over("symbol")
    change = pl.col("close") - previous_close
    with_returns = calendar.with_columns(
        return_1d=pl.col("close") / previous_close - 1,
        log_return_1d=(pl.col("close") / previous_close).log(),
        gain=change.clip(lower_bound=0.0),
        loss=(-change).clip(lower_bound=0.0),
    )
    close_7, close_30 = _window("close", 7), _window("close", 30)
    log_returns_30 = _window("log_return_1d", 30)
    gains_14, losses_14 = _window("gain", 14), _window("loss", 14)
    mean_gain, mean_loss = gains_14.list.mean(), losses_14.list.mean()
    features = with_returns.with_columns(
        sma_7=_when_complete(close_7, 7, close_7.list.mean()),
        sma_30=_when_complete(close_30, 30, close_30.list.mean()),
        volatility_30d=_when_complete(
            log_returns_30, 30, log_returns_30.list.std(ddof=1) * math.sqrt(ANNUALISATION_DAYS)
        ),
        rsi_14=_when_complete(
            gains_14,
            14,
            pl.when(mean_gain + mean_loss == 0)
            .then(pl.lit(50.0))
            .otherwise(100.0 * (mean_gain / (mean_gain + mean_loss))),  # ≤ 100 exactly (100·g/g may round above)
        ),
        drawdown_30d=_when_complete(close_30, 30, pl.col("close") / close_30.list.max() - 1),
    )
    rows = features.filter(pl.col("bars").is_not_null())
    if dates is not None:
        rows = rows.filter(pl.col("date").is_in(list(dates)))
    return rows.select(list(DAILY_FEATURES_SCHEMA)).cast(DAILY_FEATURES_SCHEMA).sort("date", "symbol")


def correlations_30d(features_window: pl.DataFrame, dates: list[dt.date]) -> pl.DataFrame:
    """Pearson correlation of ``log_return_1d`` over [D − 29, D] for every symbol pair, per D in ``dates``.

    Long format (``symbol_a < symbol_b``); a pair is emitted only when both symbols have all 30
    values. ``corr_30d`` is null when one of the two series is constant (zero variance). Dates are
    processed in blocks so memory stays bounded however long the range is.
    """
    _require(features_window, ["date", "symbol", "log_return_1d"], "daily returns")
    returns = features_window.select("date", "symbol", "log_return_1d").drop_nulls("log_return_1d")
    wanted = sorted(set(dates))
    blocks = [wanted[i : i + CORRELATION_BLOCK_DAYS] for i in range(0, len(wanted), CORRELATION_BLOCK_DAYS)]
    frames = [_correlations_for(returns, block) for block in blocks]
    if not frames:
        return pl.DataFrame(schema=CORRELATIONS_SCHEMA)
    return pl.concat(frames).sort("date", "symbol_a", "symbol_b")


def _correlations_for(returns: pl.DataFrame, dates: list[dt.date]) -> pl.DataFrame:
    first = dates[0] - dt.timedelta(days=CORRELATION_DAYS - 1)
    window = returns.filter(pl.col("date").is_between(first, dates[-1]))
    pairs = (
        window.join(window, on="date", suffix="_b")
        .filter(pl.col("symbol") < pl.col("symbol_b"))
        .rename({"symbol": "symbol_a", "log_return_1d": "a", "log_return_1d_b": "b"})
    )
    offsets = pl.DataFrame({"offset": list(range(CORRELATION_DAYS))}, schema={"offset": pl.Int64})
    correlations = (
        pairs.join(offsets, how="cross")
        .with_columns(window_end=pl.col("date") + pl.duration(days=pl.col("offset")))
        .filter(pl.col("window_end").is_in(dates))
        .sort("window_end", "symbol_a", "symbol_b", "date")
        .group_by("window_end", "symbol_a", "symbol_b", maintain_order=True)
        .agg(days=pl.len(), corr_30d=pl.corr("a", "b"))
        .filter(pl.col("days") == CORRELATION_DAYS)
        .select(
            pl.col("window_end").alias("date"),
            "symbol_a",
            "symbol_b",
            pl.when(pl.col("corr_30d").is_nan()).then(None).otherwise(pl.col("corr_30d")).alias("corr_30d"),
        )
    )
    return correlations.cast(CORRELATIONS_SCHEMA)


def category_daily(
    returns_window: pl.DataFrame, dates: list[dt.date], category_by_symbol: dict[str, str]
) -> pl.DataFrame:
    """Per day and category: members with data, equal-weighted mean ``return_1d`` and mean 30-day
    return close_D / close_(D−30) − 1 (over members having both closes).

    ``returns_window`` holds date, symbol, close, return_1d for [min(dates) − 30, max(dates)].
    """
    _require(returns_window, ["date", "symbol", "close", "return_1d"], "daily returns")
    unknown = sorted(set(returns_window["symbol"].unique().to_list()) - set(category_by_symbol))
    if unknown:
        raise ValueError(f"symbols {unknown} have no category in the universe")
    day_rows = returns_window.filter(pl.col("date").is_in(list(dates)))
    if day_rows.is_empty():
        return pl.DataFrame(schema=CATEGORY_DAILY_SCHEMA)
    earlier = returns_window.select(
        (pl.col("date") + pl.duration(days=RETURN_30D_DAYS)).alias("date"), "symbol", pl.col("close").alias("close_30d_ago")
    )
    members = day_rows.join(earlier, on=["date", "symbol"], how="left").with_columns(
        category=pl.col("symbol").replace_strict(category_by_symbol, return_dtype=pl.String),
        return_30d=pl.col("close") / pl.col("close_30d_ago") - 1,
    )
    summary = members.group_by("date", "category").agg(
        members=pl.len(),
        members_with_return_1d=pl.col("return_1d").count(),
        mean_return_1d=pl.col("return_1d").mean(),
        members_with_return_30d=pl.col("return_30d").count(),
        mean_return_30d=pl.col("return_30d").mean(),
    )
    return summary.select(list(CATEGORY_DAILY_SCHEMA)).cast(CATEGORY_DAILY_SCHEMA).sort("date", "category")


def market_daily(returns: pl.DataFrame, dates: list[dt.date]) -> pl.DataFrame:
    """Per day: symbols with data, total quote volume, advancers / decliners / unchanged (by
    ``return_1d``), and the best and worst performer (ties broken by symbol name)."""
    _require(returns, ["date", "symbol", "quote_volume", "return_1d"], "daily returns")
    day_rows = returns.filter(pl.col("date").is_in(list(dates)))
    if day_rows.is_empty():
        return pl.DataFrame(schema=MARKET_DAILY_SCHEMA)
    ranked = day_rows.sort("date", "symbol")
    with_return = pl.col("return_1d").is_not_null()
    best = pl.col("symbol").filter(with_return).sort_by(pl.col("return_1d").filter(with_return), descending=True, maintain_order=True)
    worst = pl.col("symbol").filter(with_return).sort_by(pl.col("return_1d").filter(with_return), maintain_order=True)
    summary = ranked.group_by("date").agg(
        symbols=pl.len(),
        total_quote_volume=pl.col("quote_volume").sum(),
        advancers=(pl.col("return_1d") > 0).sum(),
        decliners=(pl.col("return_1d") < 0).sum(),
        unchanged=(pl.col("return_1d") == 0).sum(),
        best_symbol=best.first(),
        best_return_1d=pl.col("return_1d").max(),
        worst_symbol=worst.first(),
        worst_return_1d=pl.col("return_1d").min(),
    )
    return summary.select(list(MARKET_DAILY_SCHEMA)).cast(MARKET_DAILY_SCHEMA).sort("date")
