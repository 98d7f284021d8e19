"""silver/ohlcv and silver/ohlcv_quarantine: clean, typed bars and the rows that failed a rule."""

import datetime as dt

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    BackfillPolicy,
    MetadataValue,
    Output,
    multi_asset,
)

from cryptolake_assets.medallion import POOL, medallion_out
from cryptolake_assets.metadata import (
    add_partition_figures,
    markdown_preview,
    rich_metadata,
    time_span,
)
from cryptolake_assets.partition_scope import run_scope
from cryptolake_assets.silver.transform import (
    QUARANTINE_SCHEMA,
    SILVER_OHLCV_SCHEMA,
    completeness,
    split_valid_rows,
    to_silver,
)
from partitions import daily_symbol_partitions, symbol_info
from resources.binance import BinanceClient

OHLCV_KEY = AssetKey(["silver", "ohlcv"])


@multi_asset(
    outs={
        "ohlcv": medallion_out(
            "silver",
            "ohlcv",
            schema=SILVER_OHLCV_SCHEMA,
            columns={"gap_before": "missing grid bars right before this bar within its UTC day (0 = none)"},
            partitions_def=daily_symbol_partitions,
            description=(
                "Typed OHLCV bars: UTC timestamps, float prices and volumes, a DATE column, "
                "de-duplicated on (symbol, open_time), sorted, with gap_before counting missing bars "
                "(gaps are flagged, never filled)."
            ),
        ),
        "ohlcv_quarantine": medallion_out(
            "silver",
            "ohlcv_quarantine",
            schema=QUARANTINE_SCHEMA,
            columns={"rule": "id of the first rule the row broke", "reason": "every rule it broke"},
            partitions_def=daily_symbol_partitions,
            description=(
                "Bronze klines that failed a silver row rule, with the rule id, the reason and the "
                "original values, per partition. Nothing is dropped silently or 'fixed'."
            ),
        ),
    },
    ins={"bronze_klines": AssetIn(key=["bronze", "klines"])},
    partitions_def=daily_symbol_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    pool=POOL,
    can_subset=False,
)
def silver_ohlcv(context: AssetExecutionContext, bronze_klines: pl.DataFrame, binance: BinanceClient):
    """Clean bronze klines into typed silver bars and quarantine the rows that break a rule."""
    scope = run_scope(context)
    now = dt.datetime.now(dt.UTC)
    valid, quarantine = split_valid_rows(bronze_klines, quarantined_at=now)
    listing_days = {symbol: symbol_info(symbol).listed_on for symbol in scope.symbols}
    bars = to_silver(valid, listing_days)
    interval = bars["interval"][0] if not bars.is_empty() else binance.interval
    coverage = completeness(bars, list(scope.days), list(scope.symbols), interval, now)
    gaps = coverage.filter(pl.col("missing") > 0)
    duplicates = len(valid) - len(bars)
    _add_partition_figures(context, coverage, valid, bars, quarantine)
    yield Output(
        bars,
        output_name="ohlcv",
        metadata={
            "rows": len(bars),
            "partitions": len(coverage),
            "expected_bars": int(coverage["expected"].sum()),
            "missing_bars": int(coverage["missing"].sum()),
            "partitions_with_gaps": len(gaps),
            "bars_after_a_gap": int((bars["gap_before"] > 0).sum()) if not bars.is_empty() else 0,
            "duplicates_removed": duplicates,
            "quarantined_rows": len(quarantine),
            **time_span(bars, "open_time"),
            **rich_metadata(
                len(coverage),
                lambda: {
                    "gaps": markdown_preview(gaps.sort("missing", descending=True), rows=15),
                    "preview": markdown_preview(
                        bars,
                        columns=["date", "symbol", "open_time", "open", "high", "low", "close", "volume", "gap_before"],
                    ),
                },
            ),
        },
    )
    yield Output(
        quarantine,
        output_name="ohlcv_quarantine",
        metadata={
            "rows": len(quarantine),
            "by_rule": MetadataValue.json(
                {r["rule"]: r["len"] for r in quarantine.group_by("rule").len().iter_rows(named=True)}
            ),
            **rich_metadata(
                len(coverage),
                lambda: {
                    "preview": markdown_preview(quarantine, columns=["date", "symbol", "open_time", "rule", "reason"])
                },
            ),
        },
    )


def _add_partition_figures(
    context: AssetExecutionContext,
    coverage: pl.DataFrame,
    valid: pl.DataFrame,
    bars: pl.DataFrame,
    quarantine: pl.DataFrame,
) -> None:
    """Each partition's own coverage, gap, duplicate and quarantine counts (not the run's totals)."""
    keys = ["date", "symbol"]

    def per_partition(frame: pl.DataFrame, name: str, expr: pl.Expr) -> pl.DataFrame:
        if frame.is_empty():
            return pl.DataFrame(schema={"date": pl.Date, "symbol": pl.String, name: pl.Int64})
        return frame.group_by(keys).agg(expr.cast(pl.Int64).alias(name))

    figures = (
        coverage.select(*keys, expected_bars="expected", missing_bars="missing")
        .with_columns(partitions_with_gaps=(pl.col("missing_bars") > 0).cast(pl.Int64))
        .join(per_partition(bars, "bars_after_a_gap", (pl.col("gap_before") > 0).sum()), on=keys, how="left")
        .join(per_partition(valid, "_valid", pl.len()), on=keys, how="left")
        .join(per_partition(bars, "_bars", pl.len()), on=keys, how="left")
        .join(per_partition(quarantine, "quarantined_rows", pl.len()), on=keys, how="left")
        .with_columns(duplicates_removed=pl.col("_valid").fill_null(0) - pl.col("_bars").fill_null(0))
        .drop("_valid", "_bars")
        .fill_null(0)
    )
    add_partition_figures(context, OHLCV_KEY, figures, {"date": "date", "symbol": "symbol"})
