"""bronze/coingecko_markets: CoinGecko's market snapshot of the universe's coins, one partition per capture day."""

import datetime as dt

import polars as pl
from dagster import AssetExecutionContext, MetadataValue, Output

from cryptolake_assets.medallion import medallion_asset
from cryptolake_assets.metadata import markdown_preview, rich_metadata, run_wide
from cryptolake_assets.retries import permanent_errors
from partitions import daily_partitions, load_universe
from resources.coingecko import (
    BRONZE_COINGECKO_SCHEMA,
    CoinGeckoAuthError,
    CoinGeckoClient,
    CoinGeckoPayloadError,
    empty_coingecko_markets,
)
from resources.duckdb_io import partition_days

TABLE = ("bronze", "coingecko_markets")


def stored_rows(io_manager, table: tuple[str, str], days: list[dt.date], schema: dict) -> pl.DataFrame:
    """Rows already stored for ``days``, read through the run's I/O manager (the database it writes,
    whatever ``CRYPTOLAKE_DUCKDB`` says): the I/O manager replaces the whole run window, so days a
    run cannot re-fetch are carried over unchanged instead of being emptied."""
    reader = getattr(io_manager, "stored_rows", None)
    if reader is None:
        raise TypeError(
            f"{'/'.join(table)} carries earlier snapshots over through its I/O manager; "
            f"{type(io_manager).__name__} cannot read them (use CryptoLake's DuckDB I/O manager)"
        )
    frame = reader(table[0], table[1], days)
    if frame is None:
        return pl.DataFrame(schema=schema)
    return frame.select(list(schema)).cast(schema)


@medallion_asset(
    TABLE[0],
    TABLE[1],
    schema=BRONZE_COINGECKO_SCHEMA,
    partitions_def=daily_partitions,
    source="coingecko",
    required_resource_keys={"coingecko", "io_manager"},
)
def bronze_coingecko_markets(context: AssetExecutionContext) -> Output[pl.DataFrame]:
    """CoinGecko /coins/markets (USD) for the universe's coins: the 26 standard fields as received
    (nulls kept), partitioned by the UTC day the snapshot was taken. CoinGecko has no history in
    this endpoint: only today's partition gets a new snapshot; other days of a run keep what was
    captured on them (or stay empty). Nothing is invented for past dates."""
    coingecko: CoinGeckoClient = context.resources.coingecko
    days = partition_days(*context.partition_time_window)
    today = coingecko.now().astimezone(dt.UTC).date()
    ids = sorted({info.coingecko_id for info in load_universe() if info.coingecko_id})
    kept = stored_rows(
        context.resources.io_manager, TABLE, [day for day in days if day != today], empty_coingecko_markets().schema
    )
    frames = [kept]
    fetched = 0
    if today in days:
        with permanent_errors(CoinGeckoAuthError, CoinGeckoPayloadError):
            snapshot = coingecko.markets_frame(ids, snapshot_date=today)
        fetched = len(snapshot)
        frames.append(snapshot)
        absent = sorted(set(ids) - set(snapshot["id"].to_list()))
        if absent:
            context.log.warning(f"CoinGecko returned no market data for: {', '.join(absent)}")
    else:
        context.log.info(
            f"{days[0]}..{days[-1]} does not include today ({today}): CoinGecko has no history; nothing fetched"
        )
    rows = pl.concat(frames, how="vertical").sort("date", "market_cap_rank", "id", nulls_last=True)
    return Output(
        rows,
        metadata={
            "rows": len(rows),
            **run_wide(
                {
                    "coins_requested": len(ids),
                    "coins_fetched": fetched,
                    "snapshot_day": MetadataValue.text(str(today) if today in days else "- (not in this run's window)"),
                }
            ),
            "days_with_snapshots": rows["date"].n_unique(),
            "days_without_snapshot": len(days) - rows["date"].n_unique(),
            **run_wide(
                {
                    "http_requests": coingecko.stats()["requests"],
                    "source": MetadataValue.text(coingecko.source),
                }
            ),
            **rich_metadata(
                len(days),
                lambda: {
                    "preview": markdown_preview(
                        rows.filter(pl.col("date") == rows["date"].max()) if len(rows) else rows,
                        columns=[
                            "date",
                            "id",
                            "market_cap_rank",
                            "current_price",
                            "market_cap",
                            "price_change_percentage_24h",
                            "last_updated",
                        ],
                    ),
                },
            ),
        },
    )
