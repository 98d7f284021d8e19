"""Point-in-time ML features per (date, symbol), as pure Polars.

A feature of day D uses only data known at the close of D (calendar-day windows ending on D). The
targets of D are the next day's log return and its sign: they need the close of D + 1 and stay null
until D + 1 has closed (``last_closed_day``), so the newest day(s) of the table have none.
"""

import datetime as dt

import polars as pl

RETURN_LAGS = (1, 3, 7, 30)
VOLUME_WINDOW_DAYS = 30
MARKET_CAP_MAX_AGE_DAYS = 7
BENCHMARK = "BTCUSDT"
# The daily_returns window a day needs: closes of D − 30 .. D (features) and D + 1 (target).
LOOKBACK_DAYS = max(RETURN_LAGS)

FEATURE_COLUMNS = [
    "ret_1d",
    "ret_3d",
    "ret_7d",
    "ret_30d",
    "volatility_30d",
    "rsi_14",
    "drawdown_30d",
    "volume_zscore_30d",
    "corr_btc_30d",
    "category_return_1d",
    "market_breadth",
    "fear_greed",
    "market_cap_rank",
]

ML_FEATURES_SCHEMA = pl.Schema(
    {
        "date": pl.Date(),
        "symbol": pl.String(),
        "category": pl.String(),
        "ret_1d": pl.Float64(),
        "ret_3d": pl.Float64(),
        "ret_7d": pl.Float64(),
        "ret_30d": pl.Float64(),
        "volatility_30d": pl.Float64(),
        "rsi_14": pl.Float64(),
        "drawdown_30d": pl.Float64(),
        "volume_zscore_30d": pl.Float64(),
        "corr_btc_30d": pl.Float64(),
        "category_return_1d": pl.Float64(),
        "market_breadth": pl.Float64(),
        "fear_greed": pl.Float64(),
        "market_cap_rank": pl.Float64(),
        "target_log_return_1d": pl.Float64(),
        "target_up": pl.Boolean(),
    }
)

COLUMNS = {
    "date": "UTC day D the features are known at (its close)",
    "symbol": "Binance spot pair (joins dim_symbol.symbol)",
    "category": "universe category of the symbol (joins dim_symbol.category)",
    "ret_1d": "look-back 1 d: ln(close_D / close_(D−1))",
    "ret_3d": "look-back 3 d: ln(close_D / close_(D−3))",
    "ret_7d": "look-back 7 d: ln(close_D / close_(D−7))",
    "ret_30d": "look-back 30 d: ln(close_D / close_(D−30))",
    "volatility_30d": "look-back 30 d: gold.daily_features.volatility_30d of D (annualised std of log returns over [D−29, D])",
    "rsi_14": "look-back 14 d: gold.daily_features.rsi_14 of D",
    "drawdown_30d": "look-back 30 d: gold.daily_features.drawdown_30d of D (close_D / max close over [D−29, D] − 1)",
    "volume_zscore_30d": "look-back 30 d: (quote_volume_D − mean) / std (ddof=1) of quote_volume over [D−29, D]; null unless all 30 days, or std = 0",
    "corr_btc_30d": "look-back 30 d: gold.correlations.corr_30d of the symbol with BTCUSDT on D (1 for BTCUSDT with a full window)",
    "category_return_1d": "look-back 1 d: gold.category_daily.mean_return_1d of the symbol's category on D",
    "market_breadth": "look-back 1 d: (advancers − decliners) / symbols on D (gold.market_daily)",
    "fear_greed": "look-back 1 d: Fear & Greed value of D (silver.fear_greed; null when not published)",
    "market_cap_rank": f"CoinGecko market-cap rank of the latest snapshot dated D or up to {MARKET_CAP_MAX_AGE_DAYS - 1} days earlier (null: none)",
    "target_log_return_1d": "TARGET (look-ahead 1 d): ln(close_(D+1) / close_D); null until D+1 has closed",
    "target_up": "TARGET: target_log_return_1d > 0; null with it",
}


def _require(frame: pl.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks columns {missing}; it has {frame.columns}")


def _shifted(frame: pl.DataFrame, days: int, column: str, alias: str) -> pl.DataFrame:
    """``column`` of day d − ``days`` moved onto day d (negative: a later day)."""
    return frame.select((pl.col("date") + pl.duration(days=days)).alias("date"), "symbol", pl.col(column).alias(alias))


def _volume_zscore(base: pl.DataFrame, returns: pl.DataFrame) -> pl.DataFrame:
    """Per (date, symbol) of ``base``: the z-score of the day's quote volume in its own 30-day window.
    Each window is evaluated from its own values in a fixed order (bit-identical in any range)."""
    offsets = pl.DataFrame({"offset": list(range(VOLUME_WINDOW_DAYS))}, schema={"offset": pl.Int64})
    volumes = returns.select(pl.col("date").alias("day"), "symbol", "quote_volume")
    window = (
        base.select("date", "symbol")
        .join(offsets, how="cross")
        .with_columns(day=pl.col("date") - pl.duration(days=pl.col("offset")))
        .join(volumes, on=["day", "symbol"], how="left")
        .sort("date", "symbol", "offset")
        .group_by("date", "symbol", maintain_order=True)
        .agg(
            days=pl.col("quote_volume").count(),
            volume=pl.col("quote_volume").first(),
            mean=pl.col("quote_volume").mean(),
            std=pl.col("quote_volume").std(ddof=1),
        )
    )
    complete = (pl.col("days") == VOLUME_WINDOW_DAYS) & (pl.col("std") > 0)
    return window.select(
        "date", "symbol", volume_zscore_30d=pl.when(complete).then((pl.col("volume") - pl.col("mean")) / pl.col("std"))
    )


def _corr_to_benchmark(correlations: pl.DataFrame) -> pl.DataFrame:
    with_btc = correlations.filter((pl.col("symbol_a") == BENCHMARK) | (pl.col("symbol_b") == BENCHMARK))
    return with_btc.select(
        "date",
        symbol=pl.when(pl.col("symbol_a") == BENCHMARK).then(pl.col("symbol_b")).otherwise(pl.col("symbol_a")),
        corr_btc_30d=pl.col("corr_30d"),
    )


def _market_cap_rank(base: pl.DataFrame, coingecko: pl.DataFrame) -> pl.DataFrame:
    """The rank of the newest snapshot in [D − 6, D] per (date, symbol)."""
    offsets = pl.DataFrame({"offset": list(range(MARKET_CAP_MAX_AGE_DAYS))}, schema={"offset": pl.Int64})
    ranks = (
        coingecko.filter(pl.col("market_cap_rank").is_not_null())
        .select(pl.col("date").alias("day"), "symbol", "market_cap_rank")
        .unique(["day", "symbol"], keep="last")
    )
    return (
        base.select("date", "symbol")
        .join(offsets, how="cross")
        .with_columns(day=pl.col("date") - pl.duration(days=pl.col("offset")))
        .join(ranks, on=["day", "symbol"], how="inner")
        .sort("date", "symbol", "offset")
        .group_by("date", "symbol", maintain_order=True)
        .agg(pl.col("market_cap_rank").first())
    )


def ml_features(
    returns: pl.DataFrame,
    day_features: pl.DataFrame,
    correlations: pl.DataFrame,
    category_daily: pl.DataFrame,
    market_daily: pl.DataFrame,
    fear_greed: pl.DataFrame,
    coingecko: pl.DataFrame,
    days: list[dt.date],
    category_by_symbol: dict[str, str],
    last_closed_day: dt.date,
) -> pl.DataFrame:
    """One row per (date in ``days``, symbol with a close on it).

    ``returns`` (gold.daily_returns: date, symbol, close, quote_volume) must cover
    [min(days) − 30, max(days) + 1]; the day-D inputs (``day_features``: volatility_30d, rsi_14,
    drawdown_30d; ``correlations``; ``category_daily``; ``market_daily``; ``fear_greed``) cover
    ``days``; ``coingecko`` (date, symbol, market_cap_rank) covers [min(days) − 6, max(days)].
    Only the target columns read anything after D, and only once D + 1 ≤ ``last_closed_day``.
    """
    _require(returns, ["date", "symbol", "close", "quote_volume"], "daily returns")
    wanted = sorted(set(days))
    base = returns.filter(pl.col("date").is_in(wanted)).select("date", "symbol", "close")
    if base.is_empty():
        return pl.DataFrame(schema=ML_FEATURES_SCHEMA)
    # Features see only rows up to their own day: the one input reaching past D is cut here.
    past = returns.filter(pl.col("date") <= max(wanted))
    rows = base
    for lag in RETURN_LAGS:
        rows = rows.join(_shifted(past, lag, "close", f"close_{lag}"), on=["date", "symbol"], how="left").with_columns(
            (pl.col("close") / pl.col(f"close_{lag}")).log().alias(f"ret_{lag}d")
        )
    next_close = _shifted(returns, -1, "close", "close_next")
    target = pl.when(pl.col("date") + pl.duration(days=1) <= last_closed_day).then(
        (pl.col("close_next") / pl.col("close")).log()
    )
    breadth = market_daily.select(
        "date", market_breadth=(pl.col("advancers") - pl.col("decliners")).cast(pl.Float64) / pl.col("symbols")
    )
    categories = category_daily.select("date", "category", category_return_1d=pl.col("mean_return_1d"))
    sentiment = fear_greed.select("date", fear_greed=pl.col("value").cast(pl.Float64))
    rows = (
        rows.with_columns(
            category=pl.col("symbol").replace_strict(category_by_symbol, default=None, return_dtype=pl.String)
        )
        .join(
            day_features.select("date", "symbol", "volatility_30d", "rsi_14", "drawdown_30d"),
            on=["date", "symbol"],
            how="left",
        )
        .join(_volume_zscore(base, past), on=["date", "symbol"], how="left")
        .join(_corr_to_benchmark(correlations), on=["date", "symbol"], how="left")
        .with_columns(
            corr_btc_30d=pl.when(pl.col("symbol") == BENCHMARK)
            .then(pl.when(pl.col("volatility_30d").is_not_null()).then(pl.lit(1.0)))
            .otherwise(pl.col("corr_btc_30d"))
        )
        .join(categories, on=["date", "category"], how="left")
        .join(breadth, on="date", how="left")
        .join(sentiment, on="date", how="left")
        .join(_market_cap_rank(base, coingecko), on=["date", "symbol"], how="left")
        .join(next_close, on=["date", "symbol"], how="left")
        .with_columns(target_log_return_1d=target)
        .with_columns(target_up=pl.col("target_log_return_1d") > 0)
    )
    return rows.select(list(ML_FEATURES_SCHEMA)).cast(ML_FEATURES_SCHEMA).sort("date", "symbol")
