"""Completeness of silver bars: the grid slots of a partition that have no bar, listed one per row.

The slots a (date, symbol) partition expects are ``partitions.expected_bars`` (the rule silver and
gold count with): the interval slots of its UTC day, clipped to the symbol's listing window (on the
listing day from the slot of the first bar seen) and, for today, to the slots that have closed. A slot counts as present when
a bar *opens* inside it, so an off-grid bar after exchange maintenance (09:28:14.789) fills its
hour; it is flagged separately by the grid check. Missing slots are reported, never filled.
"""

import datetime as dt
from collections.abc import Iterable

import polars as pl

from partitions.expected_bars import with_expected_slots
from resources.kline_format import interval_ms

MISSING_SCHEMA = pl.Schema({"date": pl.Date(), "symbol": pl.String(), "missing_open_time": pl.Datetime("us", "UTC")})


def missing_slots(
    silver: pl.DataFrame, partitions: Iterable[tuple[dt.date, str]], interval: str, now: dt.datetime
) -> pl.DataFrame:
    """One row per expected but absent bar of ``partitions`` (date, symbol, missing_open_time)."""
    every = f"{interval_ms(interval)}ms"
    first_bars = silver.group_by("date", "symbol").agg(first_bar=pl.col("open_time").min())
    checked = pl.DataFrame(sorted(set(partitions)), schema={"date": pl.Date, "symbol": pl.String}, orient="row")
    windows = with_expected_slots(
        checked.join(first_bars, on=["date", "symbol"], how="left", maintain_order="left").with_columns(
            interval=pl.lit(interval)
        ),
        now,
    ).filter(pl.col("expected") > 0)
    if windows.is_empty():
        return pl.DataFrame(schema=MISSING_SCHEMA)
    slots = (
        windows.with_columns(missing_open_time=pl.datetime_ranges("slot_start", "slot_last", interval=every))
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
