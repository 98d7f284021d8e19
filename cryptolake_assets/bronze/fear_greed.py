"""bronze/fear_greed: the Alternative.me Crypto Fear & Greed Index as received, one partition per UTC day."""

import polars as pl
from dagster import AssetExecutionContext, MetadataValue, Output

from cryptolake_assets.medallion import medallion_asset
from cryptolake_assets.metadata import markdown_preview, rich_metadata, run_wide, time_span
from cryptolake_assets.retries import permanent_errors
from partitions import daily_partitions
from resources.duckdb_io import partition_days
from resources.fear_greed import BRONZE_FEAR_GREED_SCHEMA, FearGreedClient, FearGreedPayloadError, limit_for


@medallion_asset(
    "bronze", "fear_greed", schema=BRONZE_FEAR_GREED_SCHEMA, partitions_def=daily_partitions, source="alternative.me"
)
def bronze_fear_greed(context: AssetExecutionContext, fear_greed: FearGreedClient) -> Output[pl.DataFrame]:
    """Fear & Greed entries exactly as the API sent them (value, classification and timestamp as
    strings) with their UTC day and ingestion time. The whole run window comes from one request
    (``limit`` reaching back to its first day, ``limit=0`` for the full history); days the index
    did not publish have no row here (silver flags them)."""
    days = partition_days(*context.partition_time_window)
    with permanent_errors(FearGreedPayloadError):
        rows = fear_greed.history_frame(days[0]).filter(pl.col("date").is_in(days))
    absent = sorted(set(days) - set(rows["date"].to_list()))
    if absent:
        context.log.info(f"Fear & Greed has no value for {len(absent)} day(s): {', '.join(map(str, absent[:20]))}")
    return Output(
        rows,
        metadata={
            "rows": len(rows),
            "days": len(days),
            "days_without_value": len(absent),
            **run_wide(
                {
                    "days_without_value_list": MetadataValue.text(", ".join(map(str, absent[:100])) or "-"),
                    "request_limit": limit_for(days[0], fear_greed.now().date()),
                    "http_requests": fear_greed.stats()["requests"],
                    "source": MetadataValue.text(fear_greed.source),
                }
            ),
            **time_span(rows, "date"),
            **rich_metadata(
                len(days),
                lambda: {
                    "preview": markdown_preview(rows.sort("date", descending=True)),
                },
            ),
        },
    )
