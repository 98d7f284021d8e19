"""Completeness of silver bars: the grid slots of a partition that have no bar, listed one per row.

A (date, symbol) partition expects one bar per interval slot of its UTC day, clipped to the symbol's
listing window (on the listing day from the slot of the first bar seen, because the listing hour is
not known in advance) and, for today, to the slots that have closed. A slot counts as present when
a bar *opens* inside it, so an off-grid bar after exchange maintenance (09:28:14.789) fills its
hour; it is flagged separately by the grid check. Missing slots are reported, never filled.
"""

import datetime as dt
from collections.abc import Iterable

import polars as pl

from partitions import symbol_info
from resources.kline_format import interval_ms

MISSING_SCHEMA = {"date": pl.Date(), "symbol": pl.String(), "missing_open_time": pl.Datetime("us", "UTC")}


def missing_slots(
    silver: pl.DataFrame, partitions: Iterable[tuple[dt.date, str]], interval: str, now: dt.datetime
) -> pl.DataFrame:
    """One row per expected but absent bar of ``partitions`` (date, symbol, missing_open_time)."""
    step = dt.timedelta(milliseconds=interval_ms(interval))
    every = f"{interval_ms(interval)}ms"
    first_bars = {
        (row["date"], row["symbol"]): row["first"]
        for row in silver.group_by("date", "symbol").agg(first=pl.col("open_time").min()).iter_rows(named=True)
    }
    windows = []
    for day, symbol in sorted(set(partitions)):
        info = symbol_info(symbol)
        if not info.is_listed_on(day):
            continue
        start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        end = min(start + dt.timedelta(days=1), now)
        first = first_bars.get((day, symbol))
        if day == info.listed_on and first is not None:
            start = max(start, _floor(first, step))
        last_slot = end - step  # a slot is due once it has closed
        if last_slot >= start:
            windows.append({"date": day, "symbol": symbol, "start": start, "last": last_slot})
    if not windows:
        return pl.DataFrame(schema=MISSING_SCHEMA)
    slots = (
        pl.DataFrame(windows, schema={"date": pl.Date, "symbol": pl.String, "start": pl.Datetime("us", "UTC"), "last": pl.Datetime("us", "UTC")})
        .with_columns(missing_open_time=pl.datetime_ranges("start", "last", interval=every))
        .explode("missing_open_time")
        .select(list(MISSING_SCHEMA))
    )
    present = silver.select(
        "date", "symbol", pl.col("open_time").dt.truncate(every).dt.cast_time_unit("us").alias("missing_open_time")
    ).unique()
    return (
        slots.join(present, on=["date", "symbol", "missing_open_time"], how="anti")
        .cast(MISSING_SCHEMA)
        .sort("symbol", "missing_open_time")
    )


def _floor(value: dt.datetime, step: dt.timedelta) -> dt.datetime:
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return epoch + ((value - epoch) // step) * step
