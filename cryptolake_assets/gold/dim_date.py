"""gold/dim_date: the calendar dimension of the star schema, one row per UTC day partition."""

import datetime as dt

import polars as pl
from dagster import AssetExecutionContext, Output

from cryptolake_assets.medallion import medallion_asset
from cryptolake_assets.metadata import markdown_preview, rich_metadata
from partitions import daily_partitions
from resources.duckdb_io import partition_days

DIM_DATE_SCHEMA = pl.Schema(
    {
        "date": pl.Date(),
        "year": pl.Int32(),
        "quarter": pl.Int8(),
        "month": pl.Int8(),
        "month_name": pl.String(),
        "day_of_month": pl.Int8(),
        "day_of_year": pl.Int16(),
        "iso_year": pl.Int32(),
        "iso_week": pl.Int8(),
        "day_of_week": pl.Int8(),
        "day_name": pl.String(),
        "is_weekend": pl.Boolean(),
        "is_month_end": pl.Boolean(),
    }
)

COLUMNS = {
    "date": "UTC day, the key facts join on",
    "year": "calendar year",
    "quarter": "quarter 1-4",
    "month": "month 1-12",
    "month_name": "English month name",
    "day_of_month": "day of month 1-31",
    "day_of_year": "day of year 1-366",
    "iso_year": "ISO 8601 week-numbering year",
    "iso_week": "ISO 8601 week 1-53",
    "day_of_week": "ISO weekday, Monday = 1 .. Sunday = 7",
    "day_name": "English weekday name",
    "is_weekend": "Saturday or Sunday",
    "is_month_end": "last day of its month",
}


def date_dimension(days: list[dt.date]) -> pl.DataFrame:
    """Calendar attributes of ``days``."""
    date = pl.col("date")
    return (
        pl.DataFrame({"date": days}, schema={"date": pl.Date()})
        .with_columns(
            year=date.dt.year(),
            quarter=date.dt.quarter(),
            month=date.dt.month(),
            month_name=date.dt.strftime("%B"),
            day_of_month=date.dt.day(),
            day_of_year=date.dt.ordinal_day(),
            iso_year=date.dt.iso_year(),
            iso_week=date.dt.week(),
            day_of_week=date.dt.weekday(),
            day_name=date.dt.strftime("%A"),
            is_weekend=date.dt.weekday() >= 6,
            is_month_end=date == date.dt.month_end(),
        )
        .select(list(DIM_DATE_SCHEMA))
        .cast(DIM_DATE_SCHEMA)
        .sort("date")
    )


@medallion_asset("gold", "dim_date", schema=DIM_DATE_SCHEMA, columns=COLUMNS, partitions_def=daily_partitions)
def dim_date(context: AssetExecutionContext) -> Output[pl.DataFrame]:
    """Date dimension: year, quarter, month, ISO week, weekday and month-end flags per UTC day
    (date-partitioned, so it grows with the daily partitions the facts use)."""
    days = partition_days(*context.partition_time_window)
    rows = date_dimension(days)
    return Output(
        rows, metadata={"rows": len(rows), **rich_metadata(len(days), lambda: {"preview": markdown_preview(rows)})}
    )
