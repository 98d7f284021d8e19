"""silver/fear_greed: the Fear & Greed Index per UTC day, missing days present and flagged."""

import datetime as dt
from typing import cast

import polars as pl
from dagster import AssetExecutionContext, AssetIn, MetadataValue, Output

from cryptolake_assets.medallion import medallion_asset
from cryptolake_assets.metadata import markdown_preview, rich_metadata, run_wide
from partitions import daily_partitions
from resources.duckdb_io import partition_days

BRONZE = ["bronze", "fear_greed"]

SILVER_FEAR_GREED_SCHEMA = pl.Schema(
    {
        "date": pl.Date(),
        "value": pl.Int64(),
        "value_classification": pl.String(),
        "published_at": pl.Datetime("us", "UTC"),
        "is_missing": pl.Boolean(),
        "ingested_at": pl.Datetime("us", "UTC"),
    }
)


def silver_fear_greed(bronze: pl.DataFrame, days: list[dt.date]) -> pl.DataFrame:
    """One row per day of ``days``: the integer value and the API's classification as given; a day
    the index did not publish keeps null value/classification and ``is_missing = true`` (never
    interpolated)."""
    grid = pl.DataFrame({"date": days}, schema={"date": pl.Date()})
    typed = bronze.select(
        "date",
        pl.col("value").cast(pl.Int64, strict=True),
        "value_classification",
        pl.from_epoch(pl.col("timestamp").cast(pl.Int64, strict=True), time_unit="s")
        .dt.replace_time_zone("UTC")
        .alias("published_at"),
        "ingested_at",
    )
    return (
        grid.join(typed, on="date", how="left")
        .with_columns(is_missing=pl.col("value").is_null())
        .select(list(SILVER_FEAR_GREED_SCHEMA))
        .cast(SILVER_FEAR_GREED_SCHEMA)
        .sort("date")
    )


@medallion_asset(
    "silver",
    "fear_greed",
    schema=SILVER_FEAR_GREED_SCHEMA,
    partitions_def=daily_partitions,
    source="alternative.me",
    ins={"bronze": AssetIn(key=BRONZE)},
)
def fear_greed(context: AssetExecutionContext, bronze: pl.DataFrame) -> Output[pl.DataFrame]:
    """Daily Fear & Greed value (0-100) and classification; every day of the window has a row and
    days the index did not publish are flagged ``is_missing`` with null value."""
    days = partition_days(*context.partition_time_window)
    rows = silver_fear_greed(bronze, days)
    missing = rows.filter(pl.col("is_missing"))["date"].to_list()
    latest = rows.drop_nulls("value").tail(1)
    return Output(
        rows,
        metadata={
            "rows": len(rows),
            "missing_days": len(missing),
            **run_wide(
                {
                    "missing_day_list": MetadataValue.text(", ".join(map(str, missing[:100])) or "-"),
                    "mean_value": float(cast(float, rows["value"].mean())) if rows["value"].count() else 0.0,
                    "latest": MetadataValue.text(
                        f"{latest['date'][0]}: {latest['value'][0]} ({latest['value_classification'][0]})"
                        if len(latest)
                        else "-"
                    ),
                }
            ),
            **rich_metadata(
                len(days),
                lambda: {
                    "preview": markdown_preview(rows.sort("date", descending=True)),
                },
            ),
        },
    )
