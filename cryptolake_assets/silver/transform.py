"""bronze klines → silver OHLCV: typed, de-duplicated, sorted, gaps counted, bad rows quarantined."""

import datetime as dt

import polars as pl

from cryptolake_assets.silver.rules import NUMERIC_FIELDS, ROW_RULES
from partitions.expected_bars import with_expected_slots
from resources.kline_format import BRONZE_KLINES_SCHEMA, interval_ms

UTC_US = pl.Datetime("us", "UTC")

SILVER_OHLCV_SCHEMA = pl.Schema(
    {
        "date": pl.Date(),
        "symbol": pl.String(),
        "interval": pl.String(),
        "open_time": UTC_US,
        "close_time": UTC_US,
        "open": pl.Float64(),
        "high": pl.Float64(),
        "low": pl.Float64(),
        "close": pl.Float64(),
        "volume": pl.Float64(),
        "quote_volume": pl.Float64(),
        "trades": pl.Int64(),
        "taker_buy_base_volume": pl.Float64(),
        "taker_buy_quote_volume": pl.Float64(),
        "gap_before": pl.Int32(),
        "source": pl.String(),
    }
)

QUARANTINE_SCHEMA = pl.Schema(
    {
        **BRONZE_KLINES_SCHEMA,
        "rule": pl.String(),
        "reason": pl.String(),
        "quarantined_at": UTC_US,
    }
)


def _parsed(bronze: pl.DataFrame) -> pl.DataFrame:
    return bronze.with_columns(
        [pl.col(name).str.strip_chars().cast(pl.Float64, strict=False).alias(f"{name}_num") for name in NUMERIC_FIELDS]
    )


def split_valid_rows(bronze: pl.DataFrame, quarantined_at: dt.datetime) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Partition parsed bronze rows into (valid, quarantined); each quarantined row names its rule."""
    parsed = _parsed(bronze.cast(BRONZE_KLINES_SCHEMA))
    failing = [pl.when(r.fails.fill_null(True)).then(pl.lit(r.rule)) for r in ROW_RULES]
    reasons = [pl.when(r.fails.fill_null(True)).then(pl.lit(r.reason)) for r in ROW_RULES]
    flagged = parsed.with_columns(
        rule=pl.coalesce(failing),
        reason=pl.concat_str(reasons, separator="; ", ignore_nulls=True),
    )
    quarantine = (
        flagged.filter(pl.col("rule").is_not_null())
        .with_columns(quarantined_at=pl.lit(quarantined_at, dtype=UTC_US))
        .select(list(QUARANTINE_SCHEMA))
        .cast(QUARANTINE_SCHEMA)
    )
    return flagged.filter(pl.col("rule").is_null()), quarantine


def to_silver(valid: pl.DataFrame, listing_days: dict[str, dt.date]) -> pl.DataFrame:
    """Typed, de-duplicated (latest ingestion wins) and sorted bars with ``gap_before``."""
    if valid.is_empty():
        return pl.DataFrame(schema=SILVER_OHLCV_SCHEMA)
    step = valid.select(pl.col("interval").first()).item()
    step_us = interval_ms(step) * 1000
    bars = (
        valid.sort("ingested_at")
        .unique(subset=["symbol", "open_time"], keep="last", maintain_order=True)
        .sort("symbol", "open_time")
        .select(
            "date",
            "symbol",
            "interval",
            pl.from_epoch("open_time", time_unit="ms").dt.replace_time_zone("UTC").alias("open_time"),
            pl.from_epoch("close_time", time_unit="ms").dt.replace_time_zone("UTC").alias("close_time"),
            pl.col("open_num").alias("open"),
            pl.col("high_num").alias("high"),
            pl.col("low_num").alias("low"),
            pl.col("close_num").alias("close"),
            pl.col("volume_num").alias("volume"),
            pl.col("quote_asset_volume_num").alias("quote_volume"),
            pl.col("number_of_trades").alias("trades"),
            pl.col("taker_buy_base_volume_num").alias("taker_buy_base_volume"),
            pl.col("taker_buy_quote_volume_num").alias("taker_buy_quote_volume"),
            "source",
        )
    )
    day_start = pl.col("date").cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    previous = pl.col("open_time").shift(1).over("symbol", "date")
    listing_day = pl.col("symbol").replace_strict(listing_days, default=None, return_dtype=pl.Date())
    gap = (
        pl.when(previous.is_null() & (pl.col("date") == listing_day))
        .then(0)
        .when(previous.is_null())
        .then((pl.col("open_time") - day_start).dt.total_microseconds() // step_us)
        .otherwise((pl.col("open_time") - previous).dt.total_microseconds() // step_us - 1)
    )
    return bars.with_columns(gap_before=gap.clip(lower_bound=0).cast(pl.Int32)).select(list(SILVER_OHLCV_SCHEMA))


def completeness(
    silver: pl.DataFrame, days: list[dt.date], symbols: list[str], interval: str, now: dt.datetime
) -> pl.DataFrame:
    """Per (date, symbol) of the run: expected (``partitions.expected_bars``), present and missing bars."""
    present = silver.group_by("date", "symbol").agg(present=pl.len(), first_bar=pl.col("open_time").min())
    grid = pl.DataFrame(
        [(day, symbol) for symbol in symbols for day in days],
        schema={"date": pl.Date, "symbol": pl.String},
        orient="row",
    ).with_columns(interval=pl.lit(interval))
    joined = grid.join(present, on=["date", "symbol"], how="left", maintain_order="left")
    return (
        with_expected_slots(joined, now)
        .with_columns(present=pl.col("present").fill_null(0).cast(pl.Int64))
        .with_columns(missing=(pl.col("expected") - pl.col("present")).clip(lower_bound=0))
        .select("date", "symbol", "expected", "present", "missing")
    )
