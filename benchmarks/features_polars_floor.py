"""The floor: the same daily features as a bare, lazy Polars script (no Dagster, no project code).

It reads only the columns it needs, aggregates with the streaming engine and uses Polars' own
``rolling_*`` kernels on a daily calendar (``upsample``), i.e. what a Polars expert would write for a
one-off job. Definitions as in ``cryptolake_assets.gold.features``.
"""

import datetime as dt
import math

import polars as pl

STEP_US = {"1m": 60_000_000, "1h": 3_600_000_000, "1d": 86_400_000_000}


def daily_features(silver_path: str, universe_csv: str, now: dt.datetime | None = None) -> pl.DataFrame:
    now = now or dt.datetime.now(dt.UTC)
    universe = pl.read_csv(
        universe_csv, comment_prefix="#", schema_overrides={"listed_on": pl.Date, "delisted_on": pl.Date}
    )
    daily = (
        pl.scan_parquet(silver_path)
        .group_by("symbol", "date")
        .agg(
            interval=pl.col("interval").first(),
            first_bar=pl.col("open_time").min(),
            open=pl.col("open").min_by("open_time"),
            high=pl.col("high").max(),
            low=pl.col("low").min(),
            close=pl.col("close").max_by("open_time"),
            volume=pl.col("volume").sum(),
            quote_volume=pl.col("quote_volume").sum(),
            trades=pl.col("trades").sum(),
            bars=pl.len().cast(pl.Int64),
        )
        .collect(engine="streaming")
    )
    day_start = pl.col("date").cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    start = (
        pl.when(pl.col("date") == pl.col("listed_on"))
        .then(pl.max_horizontal(day_start, "first_bar"))
        .otherwise(day_start)
    )
    end = pl.min_horizontal(day_start + pl.duration(days=1), pl.lit(now, dtype=pl.Datetime("us", "UTC")))
    listed = (pl.col("date") >= pl.col("listed_on")) & (
        pl.col("delisted_on").is_null() | (pl.col("date") <= pl.col("delisted_on"))
    )
    expected = (
        pl.when(listed)
        .then(((end - start).dt.total_microseconds() // pl.col("interval").replace_strict(STEP_US)).clip(lower_bound=0))
        .otherwise(0)
    )
    daily = daily.join(universe.select("symbol", "listed_on", "delisted_on"), on="symbol", how="left").with_columns(
        missing_bars=(expected - pl.col("bars")).clip(lower_bound=0),
        vwap=pl.when(pl.col("volume") != 0).then(pl.col("quote_volume") / pl.col("volume")),
    )
    calendar = daily.sort("symbol", "date").upsample("date", every="1d", group_by="symbol")
    previous = pl.col("close").shift(1).over("symbol")
    change = pl.col("close") - previous
    mean_gain = change.clip(lower_bound=0).rolling_mean(14).over("symbol")
    mean_loss = (-change).clip(lower_bound=0).rolling_mean(14).over("symbol")
    log_return = (pl.col("close") / previous).log()
    features = calendar.with_columns(
        return_1d=pl.col("close") / previous - 1,
        log_return_1d=log_return,
        sma_7=pl.col("close").rolling_mean(7).over("symbol"),
        sma_30=pl.col("close").rolling_mean(30).over("symbol"),
        volatility_30d=log_return.rolling_std(30).over("symbol") * math.sqrt(365),
        rsi_14=pl.when(mean_gain + mean_loss == 0).then(50.0).otherwise(100 * mean_gain / (mean_gain + mean_loss)),
        drawdown_30d=pl.col("close") / pl.col("close").rolling_max(30).over("symbol") - 1,
    )
    return (
        features.filter(pl.col("bars").is_not_null())
        .select(
            "date",
            "symbol",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "quote_volume",
            "trades",
            "bars",
            "missing_bars",
            "vwap",
            "return_1d",
            "log_return_1d",
            "sma_7",
            "sma_30",
            "volatility_30d",
            "rsi_14",
            "drawdown_30d",
        )
        .sort("date", "symbol")
    )
