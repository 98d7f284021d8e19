"""bronze/trades, bronze/quotes, bronze/trades_quarantine and bronze/trades_compacted: the live stream's
landed files as tables, one partition per UTC day × symbol, and each day's trades as one Parquet file."""

import datetime as dt
import hashlib
import os
from pathlib import Path
from typing import Any

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetOut,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    MultiPartitionKey,
    Output,
    asset,
    multi_asset,
)

from cryptolake_assets.bronze.stream_parse import (
    QUARANTINE_SCHEMA,
    QUOTES_SCHEMA,
    TRADES_SCHEMA,
    id_gaps,
    parse_landing,
)
from cryptolake_assets.medallion import POOL, medallion_out
from cryptolake_assets.metadata import markdown_preview, table_schema_of, time_span
from cryptolake_assets.partition_scope import run_scope
from partitions import DAILY_SYMBOL_PARTITION_EXPR, daily_symbol_partitions
from resources.landing import StreamLanding
from resources.partition_metadata import add_asset_metadata_by_partition

STREAM_TAGS = {"layer": "bronze", "source": "binance_stream", "pipeline": "stream"}


def _out(key: str, description: str, schema: pl.Schema, columns: dict[str, str]) -> AssetOut:
    return medallion_out(
        "bronze",
        key,
        schema=schema,
        description=description,
        columns=columns,
        partitions_def=daily_symbol_partitions,
        source="binance_stream",
        tags={"pipeline": "stream"},
        kinds={"websocket"},
        fetches=False,
    )


@multi_asset(
    outs={
        "trades": _out(
            "trades",
            "Binance spot trades from the live stream (and REST gap fills), every trade once (de-duplicated on trade id), prices as received.",
            TRADES_SCHEMA,
            {
                "trade_id": "Binance trade id (consecutive per symbol)",
                "trade_time": "trade time, epoch ms UTC (the partition's day)",
                "event_time": "stream event time, epoch ms (null for REST fills)",
                "recv_ms": "when the collector received it, epoch ms",
                "source": "ws (stream) | rest (historicalTrades gap fill)",
            },
        ),
        "quotes": _out(
            "quotes",
            "Top-of-book quotes (bookTicker) from the live stream, de-duplicated on update id; the day is the receive day.",
            QUOTES_SCHEMA,
            {
                "update_id": "order book update id",
                "recv_ms": "receive time, epoch ms (spot bookTicker has no event time)",
            },
        ),
        "trades_quarantine": _out(
            "trades_quarantine",
            "Landed lines that are no valid trade or quote, with file, line, reason and the raw text.",
            QUARANTINE_SCHEMA,
            {"reason": "why the line was held back", "raw": "the line or message as landed (first 2000 characters)"},
        ),
    },
    partitions_def=daily_symbol_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    pool=POOL,
    can_subset=False,
)
def bronze_trades(context: AssetExecutionContext, stream_landing: StreamLanding):
    """Parse the closed landing files of each partition into trades, quotes and a quarantine."""
    scope = run_scope(context)
    parsed = [parse_landing(Path(stream_landing.root), day, symbol) for day in scope.days for symbol in scope.symbols]
    trades = pl.concat([p.trades for p in parsed]) if parsed else pl.DataFrame(schema=TRADES_SCHEMA)
    quotes = pl.concat([p.quotes for p in parsed]) if parsed else pl.DataFrame(schema=QUOTES_SCHEMA)
    quarantine = pl.concat([p.quarantine for p in parsed]) if parsed else pl.DataFrame(schema=QUARANTINE_SCHEMA)
    open_gaps = pl.concat([p.gaps for p in parsed]) if parsed else None
    jumps = id_gaps(trades)
    yield Output(
        trades,
        output_name="trades",
        metadata={
            "rows": len(trades),
            "files": sum(p.files for p in parsed),
            "lines": sum(p.lines for p in parsed),
            "duplicates_removed": sum(p.duplicates for p in parsed),
            "rest_filled": int((trades["source"] == "rest").sum()),
            "id_gaps": len(jumps),
            "missing_ids": int(jumps["missing_ids"].sum()) if len(jumps) else 0,
            "gaps_recorded": 0 if open_gaps is None else len(open_gaps),
            "gap_ranges": markdown_preview(open_gaps if open_gaps is not None else pl.DataFrame()),
            **time_span(trades, "trade_time"),
            "preview": markdown_preview(trades, columns=["symbol", "trade_id", "price", "qty", "trade_time", "source"]),
        },
    )
    yield Output(quotes, output_name="quotes", metadata={"rows": len(quotes), **time_span(quotes, "recv_ms")})
    by_reason = {r["reason"]: r["len"] for r in quarantine.group_by("reason").len().iter_rows(named=True)}
    yield Output(
        quarantine,
        output_name="trades_quarantine",
        metadata={
            "rows": len(quarantine),
            "by_reason": MetadataValue.json(by_reason),
            "preview": markdown_preview(quarantine, columns=["file", "line", "reason"]),
        },
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def compacted_path(root: Path, day: dt.date, symbol: str) -> Path:
    return Path(root) / "trades" / f"date={day.isoformat()}" / f"{symbol}.parquet"


def write_compacted(trades: pl.DataFrame, path: Path) -> tuple[str, int]:
    """Write one Parquet file atomically (temp file, fsync, rename); returns (sha256, bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    trades.sort("trade_id").write_parquet(temporary, compression="zstd", statistics=True)
    with open(temporary, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return _sha256(path), path.stat().st_size


# Not a medallion table: it exports files outside the I/O manager (its own kinds, no DuckDB table).
@asset(
    key=["bronze", "trades_compacted"],
    ins={"trades": AssetIn(key=["bronze", "trades"])},
    partitions_def=daily_symbol_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    pool="duckdb",
    group_name="bronze",
    kinds={"parquet", "polars"},
    owners=["team:market-data"],
    tags=STREAM_TAGS,
    metadata={
        "partition_expr": DAILY_SYMBOL_PARTITION_EXPR,  # one file per date=<day>/<SYMBOL>.parquet
        "dagster/column_schema": table_schema_of(TRADES_SCHEMA, {"trade_id": "sorted; one file per day and symbol"}),
        "path": MetadataValue.text("<CRYPTOLAKE_COMPACTED>/trades/date=<day>/<SYMBOL>.parquet"),
    },
)
def trades_compacted(
    context: AssetExecutionContext, trades: pl.DataFrame, stream_landing: StreamLanding
) -> MaterializeResult:
    """Each day's trades of a symbol as one Parquet file, its SHA-256 in the metadata."""
    scope = run_scope(context)
    files: dict[str, dict[str, Any]] = {}
    for day in scope.days:
        for symbol in scope.symbols:
            path = compacted_path(Path(stream_landing.compacted_root), day, symbol)
            rows = trades.filter((pl.col("date") == day) & (pl.col("symbol") == symbol))
            sha256, size = write_compacted(rows, path)
            files[MultiPartitionKey({"date": str(day), "symbol": symbol})] = {
                "path": MetadataValue.path(str(path)),
                "sha256": MetadataValue.text(sha256),
                "rows": len(rows),
                "bytes": size,
            }
    if len(files) == 1:
        return MaterializeResult(metadata=next(iter(files.values())))
    add_asset_metadata_by_partition(
        context.get_step_execution_context(), AssetKey(["bronze", "trades_compacted"]), files
    )
    return MaterializeResult(metadata={"files": len(files), "rows": len(trades)})
