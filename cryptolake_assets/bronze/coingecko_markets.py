"""bronze/coingecko_markets: CoinGecko's market snapshot of the universe's coins, one partition per capture day."""

import datetime as dt
from pathlib import Path

import polars as pl
from dagster import AssetExecutionContext, BackfillPolicy, MetadataValue, Output, asset

from cryptolake_assets.metadata import table_schema_of
from resources.coingecko import BRONZE_COINGECKO_SCHEMA
from cryptolake_assets.metadata import markdown_preview
from cryptolake_assets.retries import TRANSIENT_RETRY_POLICY, permanent_errors
from partitions import daily_partitions, load_universe
from resources.coingecko import CoinGeckoAuthError, CoinGeckoClient, CoinGeckoPayloadError, empty_coingecko_markets
from resources.duckdb_io import as_utc, connect_duckdb, partition_days
from resources.settings import duckdb_path

TABLE = ("bronze", "coingecko_markets")


def stored_rows(database: str, table: tuple[str, str], days: list[dt.date], schema: dict) -> pl.DataFrame:
    """Rows already stored for ``days`` (the I/O manager replaces the whole run window, so days a
    run cannot re-fetch are carried over unchanged instead of being emptied)."""
    if not days or database == ":memory:" or database.startswith("md:") or not Path(database).exists():
        return pl.DataFrame(schema=schema)
    connection = connect_duckdb(database, read_only=True)
    try:
        exists = connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", list(table)
        ).fetchall()[0][0]
        if not exists:
            return pl.DataFrame(schema=schema)
        frame = connection.sql(
            f'SELECT * FROM "{table[0]}"."{table[1]}" WHERE date >= ? AND date <= ?', params=[min(days), max(days)]
        ).pl()
    finally:
        connection.close()
    return as_utc(frame).filter(pl.col("date").is_in(days)).select(list(schema)).cast(schema)


@asset(
    key=list(TABLE),
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    pool="duckdb",
    group_name="bronze",
    kinds={"httpx", "polars", "duckdb"},
    owners=["team:market-data"],
    tags={"layer": "bronze", "source": "coingecko"},
    metadata={"partition_expr": "date", "dagster/column_schema": table_schema_of(BRONZE_COINGECKO_SCHEMA)},
    retry_policy=TRANSIENT_RETRY_POLICY,
)
def bronze_coingecko_markets(context: AssetExecutionContext, coingecko: CoinGeckoClient) -> Output[pl.DataFrame]:
    """CoinGecko /coins/markets (USD) for the universe's coins: the 26 standard fields as received
    (nulls kept), partitioned by the UTC day the snapshot was taken. CoinGecko has no history in
    this endpoint: only today's partition gets a new snapshot; other days of a run keep what was
    captured on them (or stay empty). Nothing is invented for past dates."""
    days = partition_days(*context.partition_time_window)
    today = coingecko.now().astimezone(dt.UTC).date()
    ids = sorted({info.coingecko_id for info in load_universe() if info.coingecko_id})
    kept = stored_rows(duckdb_path(), TABLE, [day for day in days if day != today], empty_coingecko_markets().schema)
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
        context.log.info(f"{days[0]}..{days[-1]} does not include today ({today}): CoinGecko has no history; nothing fetched")
    rows = pl.concat(frames, how="vertical").sort("date", "market_cap_rank", "id", nulls_last=True)
    return Output(
        rows,
        metadata={
            "rows": len(rows),
            "coins_requested": len(ids),
            "coins_fetched": fetched,
            "snapshot_day": MetadataValue.text(str(today) if today in days else "- (not in this run's window)"),
            "days_with_snapshots": rows["date"].n_unique(),
            "days_without_snapshot": len(days) - rows["date"].n_unique(),
            "http_requests": coingecko.stats()["requests"],
            "source": MetadataValue.text(coingecko.source),
            "preview": markdown_preview(
                rows.filter(pl.col("date") == rows["date"].max()) if len(rows) else rows,
                columns=["date", "id", "market_cap_rank", "current_price", "market_cap", "price_change_percentage_24h", "last_updated"],
            ),
        },
    )
