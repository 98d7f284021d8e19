"""The expected-bars rule: which interval slots of a (date, symbol) partition must hold a bar.

The one implementation silver's completeness metadata, gold's ``missing_bars`` and the
``complete_bars`` check all use. A partition expects one bar per grid slot of its UTC day:

* outside the symbol's listing window (before ``listed_on``, after ``delisted_on``): none;
* on the listing day the listing hour is not known in advance, so slots start at the grid slot the
  first bar seen opens in (a first bar off the grid, 09:28:14.789, fills the 09:00 slot: it is the
  bar of that slot); with no bar seen the whole day is expected;
* a slot is due once it has closed: today counts only slots that end by ``now``.
"""

import datetime as dt

import polars as pl

from partitions.universe import load_universe, symbol_info
from resources.kline_format import INTERVAL_MS, interval_ms

UTC_US = pl.Datetime("us", "UTC")

# Columns added by ``with_expected_slots``.
SLOTS_SCHEMA = {"slot_start": UTC_US, "slot_last": UTC_US, "expected": pl.Int64()}


def _listing_windows() -> pl.DataFrame:
    return pl.DataFrame(
        [(info.symbol, info.listed_on, info.delisted_on) for info in load_universe()],
        schema={"symbol": pl.String, "_listed_on": pl.Date, "_delisted_on": pl.Date},
        orient="row",
    )


def with_expected_slots(frame: pl.DataFrame, now: dt.datetime) -> pl.DataFrame:
    """``frame`` (``date``, ``symbol``, ``interval``, ``first_bar`` — the partition's earliest
    open_time or null) plus ``slot_start`` / ``slot_last`` (the first and last due slot, null when
    none is due) and ``expected`` (the number of due slots). Row order is kept; an unknown interval
    or symbol is a clear error."""
    for interval in frame["interval"].unique().to_list():
        interval_ms(interval)  # an unknown interval is a clear error, not a null
    windows = _listing_windows()
    unknown = sorted(set(frame["symbol"].unique().to_list()) - set(windows["symbol"].to_list()))
    if unknown:
        symbol_info(unknown[0])  # raises the universe's clear "unknown symbol" error
    step_us = pl.col("interval").replace_strict(INTERVAL_MS, return_dtype=pl.Int64) * 1000
    day_start_us = pl.col("date").cast(pl.Datetime("us")).dt.replace_time_zone("UTC").dt.epoch("us")
    first_us = pl.col("first_bar").cast(UTC_US).dt.epoch("us")
    first_slot_us = (first_us // step_us) * step_us
    start_us = (
        pl.when((pl.col("date") == pl.col("_listed_on")) & pl.col("first_bar").is_not_null())
        .then(pl.max_horizontal(day_start_us, first_slot_us))
        .otherwise(day_start_us)
    )
    now_us = int(now.astimezone(dt.UTC).timestamp() * 1_000_000)
    end_us = pl.min_horizontal(day_start_us + 86_400_000_000, pl.lit(now_us, dtype=pl.Int64))
    listed = (pl.col("date") >= pl.col("_listed_on")) & (
        pl.col("_delisted_on").is_null() | (pl.col("date") <= pl.col("_delisted_on"))
    )
    due = pl.when(listed).then(((end_us - start_us) // step_us).clip(lower_bound=0)).otherwise(0)
    to_time = lambda us: pl.from_epoch(us, time_unit="us").dt.replace_time_zone("UTC")  # noqa: E731
    return (
        frame.with_columns(pl.col("first_bar").cast(UTC_US))
        .join(windows, on="symbol", how="left", maintain_order="left")
        .with_columns(_start=start_us, expected=due.cast(pl.Int64))
        .with_columns(
            slot_start=pl.when(pl.col("expected") > 0).then(to_time(pl.col("_start"))),
            slot_last=pl.when(pl.col("expected") > 0).then(
                to_time(pl.col("_start") + (pl.col("expected") - 1) * step_us)
            ),
        )
        .drop("_start", "_listed_on", "_delisted_on")
    )


def expected_bars(symbol: str, day: dt.date, interval: str, now: dt.datetime, first_bar: dt.datetime | None) -> int:
    """The due slots of one partition (``with_expected_slots`` for one row)."""
    row = pl.DataFrame(
        {"date": [day], "symbol": [symbol], "interval": [interval], "first_bar": [first_bar]},
        schema={"date": pl.Date, "symbol": pl.String, "interval": pl.String, "first_bar": UTC_US},
    )
    return with_expected_slots(row, now)["expected"].item()
