"""The gold daily features written the way a pandas user would: same definitions as
``cryptolake_assets.gold.features`` (see the ``gold/daily_features`` column descriptions).

Read the Parquet file, sort, group by symbol and day, then per symbol reindex to a daily calendar
and use ``rolling`` windows (``min_periods`` = window: a window with a missing day is NaN).
"""

import math

import numpy as np
import pandas as pd

STEP = {"1m": pd.Timedelta(minutes=1), "1h": pd.Timedelta(hours=1), "1d": pd.Timedelta(days=1)}


def daily_features(silver_path: str, universe_csv: str, now: pd.Timestamp | None = None) -> pd.DataFrame:
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    silver = pd.read_parquet(silver_path)
    silver = silver.sort_values(["symbol", "open_time"])
    daily = (
        silver.groupby(["symbol", "date"], sort=True)
        .agg(
            interval=("interval", "first"),
            first_bar=("open_time", "first"),
            open=("open", "first"),
            high=("high", "max"),
            low=("low", "min"),
            close=("close", "last"),
            volume=("volume", "sum"),
            quote_volume=("quote_volume", "sum"),
            trades=("trades", "sum"),
            bars=("open_time", "size"),
        )
        .reset_index()
    )
    universe = pd.read_csv(universe_csv, comment="#", parse_dates=["listed_on", "delisted_on"])
    daily = daily.merge(universe[["symbol", "listed_on", "delisted_on"]], on="symbol", how="left")

    # Expected bars: the interval's bars in the UTC day, within the listing window, closed by `now`.
    day_start = pd.to_datetime(daily["date"]).dt.tz_localize("UTC")
    listed = pd.to_datetime(daily["listed_on"]).dt.tz_localize("UTC")
    delisted = pd.to_datetime(daily["delisted_on"]).dt.tz_localize("UTC")
    first_bar_start = daily["first_bar"].where(daily["first_bar"] > day_start, day_start)
    start = day_start.where(day_start != listed, first_bar_start)
    end = (day_start + pd.Timedelta(days=1)).clip(upper=now)
    step = daily["interval"].map(STEP)
    expected = ((end - start) // step).clip(lower=0)
    listed_today = (day_start >= listed) & (delisted.isna() | (day_start <= delisted))
    expected = expected.where(listed_today, 0)
    daily["missing_bars"] = (expected - daily["bars"]).clip(lower=0)
    daily["vwap"] = (daily["quote_volume"] / daily["volume"]).where(daily["volume"] != 0)

    frames = []
    for symbol, days in daily.groupby("symbol"):
        days = days.set_index(pd.to_datetime(days["date"])).asfreq("D")
        days["symbol"] = symbol
        previous = days["close"].shift(1)
        days["return_1d"] = days["close"] / previous - 1
        days["log_return_1d"] = np.log(days["close"] / previous)
        change = days["close"] - previous
        mean_gain = change.clip(lower=0).rolling(14).mean()
        mean_loss = (-change).clip(lower=0).rolling(14).mean()
        days["sma_7"] = days["close"].rolling(7).mean()
        days["sma_30"] = days["close"].rolling(30).mean()
        days["volatility_30d"] = days["log_return_1d"].rolling(30).std() * math.sqrt(365)
        days["rsi_14"] = (100 * mean_gain / (mean_gain + mean_loss)).where(mean_gain + mean_loss != 0, 50.0)
        days.loc[mean_gain.isna(), "rsi_14"] = np.nan
        days["drawdown_30d"] = days["close"] / days["close"].rolling(30).max() - 1
        frames.append(days[days["bars"].notna()])
    features = pd.concat(frames).reset_index(drop=True)
    columns = [
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
    ]
    return features[columns].sort_values(["date", "symbol"]).reset_index(drop=True)
