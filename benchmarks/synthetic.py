"""Deterministic synthetic silver OHLCV (the ``silver.ohlcv`` schema) and a matching universe CSV.

Generation is not timed. Every symbol is a seeded geometric random walk; a few bars are missing
(about 0.05 %) and every seventh symbol misses one whole day, so bar counts, calendar gaps and
incomplete look-back windows are exercised like on real exchange data.
"""

import csv
import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from benchmarks.scales import FeatureSet

CATEGORIES = ("Layer 1", "DeFi", "Payment", "Meme", "Exchange")
LISTED_ON = dt.date(2020, 1, 1)
STEP_MS = {"1h": 3_600_000, "1m": 60_000}


def symbol_names(count: int) -> list[str]:
    return [f"SYN{index:03d}USDT" for index in range(count)]


def write_universe(path: Path, symbols: list[str]) -> Path:
    """A universe file (the ``partitions/universe.csv`` columns) listing the synthetic symbols."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "symbol",
                "base_asset",
                "name",
                "category",
                "coingecko_id",
                "listed_on",
                "delisted_on",
                "stablecoin",
                "notes",
            ]
        )
        for index, symbol in enumerate(symbols):
            base = symbol.removesuffix("USDT")
            writer.writerow(
                [
                    symbol,
                    base,
                    f"Synthetic {base}",
                    CATEGORIES[index % len(CATEGORIES)],
                    base.lower(),
                    LISTED_ON.isoformat(),
                    "",
                    "false",
                    "benchmark",
                ]
            )
    return path


def symbol_bars(symbol: str, index: int, spec: FeatureSet) -> pl.DataFrame:
    """One symbol's bars in the silver schema, sorted by open_time."""
    rng = np.random.default_rng(1_000 + index)
    step_ms = STEP_MS[spec.interval]
    n = spec.days * spec.bars_per_day
    start_ms = int(dt.datetime.combine(spec.start, dt.time(), tzinfo=dt.UTC).timestamp() * 1000)
    open_ms = start_ms + np.arange(n, dtype=np.int64) * step_ms
    sigma = 0.01 if spec.interval == "1h" else 0.0015
    close = (10.0 + 5 * index) * np.exp(np.cumsum(rng.normal(0.0, sigma, n)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, sigma / 2, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, sigma / 2, n)))
    volume = rng.lognormal(3.0, 1.0, n)
    quote_volume = volume * (open_ + close) / 2
    trades = rng.integers(1, 500, n)
    taker_base = volume * rng.uniform(0.3, 0.7, n)
    keep = rng.random(n) >= 0.0005
    if index % 7 == 3:  # one whole missing day: a hole in the calendar
        day = 40 % spec.days
        keep[day * spec.bars_per_day : (day + 1) * spec.bars_per_day] = False
    frame = pl.DataFrame(
        {
            "open_ms": open_ms[keep],
            "open": open_[keep],
            "high": high[keep],
            "low": low[keep],
            "close": close[keep],
            "volume": volume[keep],
            "quote_volume": quote_volume[keep],
            "trades": trades[keep],
            "taker_buy_base_volume": taker_base[keep],
            "taker_buy_quote_volume": (taker_base * (open_ + close) / 2)[keep],
        }
    )
    open_time = pl.from_epoch("open_ms", time_unit="ms").dt.replace_time_zone("UTC").dt.cast_time_unit("us")
    previous = pl.col("open_ms").shift(1).over("date")
    day_start = pl.col("date").cast(pl.Datetime("ms")).dt.epoch("ms")
    return (
        frame.with_columns(date=open_time.dt.date())
        .with_columns(
            gap_before=(
                pl.when(previous.is_null())
                .then((pl.col("open_ms") - day_start) // step_ms)
                .otherwise((pl.col("open_ms") - previous) // step_ms - 1)
            ).cast(pl.Int32),
        )
        .select(
            "date",
            pl.lit(symbol).alias("symbol"),
            pl.lit(spec.interval).alias("interval"),
            open_time.alias("open_time"),
            (open_time + pl.duration(milliseconds=step_ms - 1)).alias("close_time"),
            "open",
            "high",
            "low",
            "close",
            "volume",
            "quote_volume",
            pl.col("trades").cast(pl.Int64),
            "taker_buy_base_volume",
            "taker_buy_quote_volume",
            "gap_before",
            pl.lit("simulated").alias("source"),
        )
    )


def write_silver(path: Path, spec: FeatureSet) -> int:
    """Write the data set as one Parquet file (a row group per symbol); returns the row count."""
    rows = 0
    writer = None
    try:
        for index, symbol in enumerate(symbol_names(spec.symbols)):
            table = symbol_bars(symbol, index, spec).to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
            rows += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    return rows
