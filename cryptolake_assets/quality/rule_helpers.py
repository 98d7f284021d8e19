"""Rules of the catalog that are functions of the rows and the run rather than model checks: bar
completeness (needs the partition keys and the clock) and the referential rules (read gold's
dimensions through the I/O manager)."""

import datetime as dt
from typing import cast

import polars as pl

from cryptolake_assets.quality.completeness import missing_slots
from cryptolake_assets.quality.factory import RuleContext, Unverifiable, partition_date_symbol


def partitions_of(context: RuleContext) -> list[tuple[dt.date, str]]:
    return [cast(tuple[dt.date, str], partition_date_symbol(str(k))) for k in context.partition_keys]


def missing_bars(frame: pl.DataFrame, context: RuleContext) -> pl.DataFrame:
    interval = frame["interval"][0] if not frame.is_empty() else context.interval
    if interval is None:
        raise ValueError("completeness of an empty partition needs the configured interval")
    return missing_slots(frame, partitions_of(context), interval, context.now)


DIM_SYMBOL, DIM_DATE = "gold/dim_symbol", "gold/dim_date"


def dimension_table(context: RuleContext, path: str) -> pl.DataFrame:
    table = context.dimensions.get(path)
    if table is None:
        raise Unverifiable(f"{path} is not materialized yet; materialize it to check the references")
    return table


def symbols_in_dim_symbol(*columns: str):
    """Rows with a symbol column whose value is not a ``symbol`` of gold.dim_symbol."""

    def evaluate(frame: pl.DataFrame, context: RuleContext) -> pl.DataFrame:
        known = dimension_table(context, DIM_SYMBOL)["symbol"].implode()
        return frame.filter(pl.any_horizontal([~pl.col(c).is_in(known) for c in columns]))

    return evaluate


def date_in_dim_date(frame: pl.DataFrame, context: RuleContext) -> pl.DataFrame:
    """Rows whose date is not a ``date`` of gold.dim_date."""
    return frame.filter(~pl.col("date").is_in(dimension_table(context, DIM_DATE)["date"].implode()))


def every_row(frame: pl.DataFrame, context: RuleContext) -> pl.DataFrame:
    return frame
