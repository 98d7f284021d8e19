"""bronze/klines: Binance spot klines exactly as received, one partition per UTC day × symbol."""

import datetime as dt

import polars as pl
from dagster import AssetExecutionContext, BackfillPolicy, MetadataValue, Output, asset

from cryptolake_assets.metadata import markdown_preview, time_span
from cryptolake_assets.partition_scope import run_scope
from partitions import DAILY_SYMBOL_PARTITION_EXPR, daily_symbol_partitions, symbol_info
from resources.binance import BinanceClient
from resources.kline_format import empty_bronze_klines


@asset(
    key=["bronze", "klines"],
    partitions_def=daily_symbol_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    pool="duckdb",
    group_name="bronze",
    kinds={"httpx", "polars", "duckdb"},
    owners=["team:market-data"],
    tags={"layer": "bronze", "source": "binance"},
    metadata={"partition_expr": DAILY_SYMBOL_PARTITION_EXPR},
)
def bronze_klines(context: AssetExecutionContext, binance: BinanceClient) -> Output[pl.DataFrame]:
    """Raw Binance spot klines (all 12 fields as received, times normalised to epoch ms) plus
    ingestion time, source and interval. One paginated request series per symbol covers the whole
    run; days outside a symbol's listing window are written as empty partitions."""
    scope = run_scope(context)
    frames = [empty_bronze_klines()]
    empty_partitions: list[str] = []
    for symbol in scope.symbols:
        info = symbol_info(symbol)
        listed_days = [day for day in scope.days if info.is_listed_on(day)]
        empty_partitions += [f"{day}|{symbol} (not listed)" for day in scope.days if not info.is_listed_on(day)]
        if not listed_days:
            continue
        start = dt.datetime.combine(listed_days[0], dt.time(), tzinfo=dt.UTC)
        end = dt.datetime.combine(listed_days[-1] + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        frame = binance.fetch_klines(symbol, start, end).filter(pl.col("date").is_in(listed_days))
        present = set(frame["date"].unique().to_list())
        empty_partitions += [f"{day}|{symbol} (no data)" for day in listed_days if day not in present]
        frames.append(frame)
        context.log.info(f"{symbol}: {len(frame)} klines for {scope.describe()}")
    klines = pl.concat(frames, how="vertical").sort("symbol", "open_time")
    stats = binance.stats()
    return Output(
        klines,
        metadata={
            "rows": len(klines),
            "partitions": len(scope.days) * len(scope.symbols),
            "symbols": MetadataValue.text(", ".join(scope.symbols)),
            "interval": MetadataValue.text(binance.interval),
            "source": MetadataValue.text(binance.source),
            "empty_partitions": len(empty_partitions),
            "empty_partition_list": MetadataValue.text("\n".join(empty_partitions[:200]) or "-"),
            "http_requests": stats.get("requests", 0),
            "used_weight_1m": stats.get("used_weight", 0),
            **time_span(klines.with_columns(pl.from_epoch("open_time", time_unit="ms")), "open_time"),
            "preview": markdown_preview(klines, columns=["date", "symbol", "open_time", "open", "high", "low", "close", "volume"]),
        },
    )
