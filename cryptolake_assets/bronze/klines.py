"""bronze/klines: Binance spot klines exactly as received, one partition per UTC day × symbol."""

import datetime as dt

import polars as pl
from dagster import AssetExecutionContext, MetadataValue, Output

from cryptolake_assets.medallion import medallion_asset
from cryptolake_assets.metadata import markdown_preview, rich_metadata, time_span
from cryptolake_assets.partition_scope import run_scope
from cryptolake_assets.retries import permanent_errors
from partitions import daily_symbol_partitions, symbol_info
from resources.binance import BinanceClient, InvalidIntervalError, InvalidSymbolError
from resources.binance_archive import ArchiveChecksumError, BinanceArchiveClient, fetch_klines_archive_first
from resources.kline_format import BRONZE_KLINES_SCHEMA, empty_bronze_klines


@medallion_asset(
    "bronze",
    "klines",
    schema=BRONZE_KLINES_SCHEMA,
    columns={
        "open_time": "candle open, epoch milliseconds UTC (dump µs normalised)",
        "close_time": "candle close, epoch milliseconds UTC",
        "open": "exact string sent by the exchange",
        "ignore": "Binance's unused 12th field, kept as received",
        "source": "binance | simulated | archive provenance",
        "ingested_at": "when CryptoLake fetched the row",
    },
    partitions_def=daily_symbol_partitions,
    source="binance",
)
def bronze_klines(
    context: AssetExecutionContext, binance: BinanceClient, binance_archive: BinanceArchiveClient
) -> Output[pl.DataFrame]:
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
        with permanent_errors(InvalidSymbolError, InvalidIntervalError, ArchiveChecksumError):
            # Whole past months from checksum-verified archive dumps, the rest over REST.
            fetched = fetch_klines_archive_first(binance, binance_archive, symbol, start, end, warn=context.log.warning)
            frame = fetched.frame.filter(pl.col("date").is_in(listed_days))
        present = set(frame["date"].unique().to_list())
        empty_partitions += [f"{day}|{symbol} (no data)" for day in listed_days if day not in present]
        frames.append(frame)
        context.log.info(
            f"{symbol}: {len(frame)} klines for {listed_days[0]}..{listed_days[-1]} ({len(listed_days)} listed days)"
        )
    klines = pl.concat(frames, how="vertical").sort("symbol", "open_time")
    stats = binance.stats()
    partitions = len(scope.days) * len(scope.symbols)
    run_figures = {
        "symbols": MetadataValue.text(
            scope.symbols[0]
            if len(scope.symbols) == 1
            else f"{len(scope.symbols)} symbols: {scope.symbols[0]}..{scope.symbols[-1]}"
        ),
        "interval": MetadataValue.text(binance.interval),
        "source": MetadataValue.text(binance.source),
        "empty_partition_examples": MetadataValue.text("\n".join(empty_partitions[:10]) or "-"),
        "http_requests": stats.get("requests", 0),
        "used_weight_1m": stats.get("used_weight", 0),
    }
    if partitions > 1:
        # Figures of the whole run, not of any one partition: Dagster would copy them onto every
        # partition's event (docs/performance.md, event log per partition), so they go to the run's log.
        context.log.info(
            f"{scope.describe()}: {len(klines)} klines from {binance.source} ({binance.interval}), "
            f"{run_figures['http_requests']} HTTP requests, used weight {run_figures['used_weight_1m']}, "
            f"{len(empty_partitions)} empty partitions" + (f" e.g. {empty_partitions[0]}" if empty_partitions else "")
        )
        run_figures = {}
    return Output(
        klines,
        metadata={
            "rows": len(klines),
            "partitions": partitions,
            "empty_partitions": len(empty_partitions),
            **run_figures,
            **time_span(klines.with_columns(pl.from_epoch("open_time", time_unit="ms")), "open_time"),
            **rich_metadata(
                partitions,
                lambda: {
                    "preview": markdown_preview(
                        klines, columns=["date", "symbol", "open_time", "open", "high", "low", "close", "volume"]
                    )
                },
            ),
        },
    )
