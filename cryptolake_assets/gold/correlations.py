"""gold/correlations: 30-day Pearson correlation of daily log returns for every symbol pair."""

import polars as pl
from dagster import AssetExecutionContext, AssetIn, Output, TimeWindowPartitionMapping

from cryptolake_assets.gold import features
from cryptolake_assets.gold.charts import correlation_heatmap
from cryptolake_assets.gold.table_metadata import column_lineage
from cryptolake_assets.medallion import medallion_asset
from cryptolake_assets.metadata import markdown_preview, rich_metadata, run_wide
from partitions import daily_partitions
from resources.duckdb_io import partition_days

DAILY_RETURNS = ["gold", "daily_returns"]

COLUMNS = {
    "date": "UTC day D, the last day of the window (joins dim_date.date)",
    "symbol_a": "first symbol of the pair, symbol_a < symbol_b (joins dim_symbol.symbol)",
    "symbol_b": "second symbol of the pair (joins dim_symbol.symbol)",
    "corr_30d": "Pearson correlation of log_return_1d over [D−29, D]; null if a series is constant",
}


@medallion_asset(
    "gold",
    "correlations",
    schema=features.CORRELATIONS_SCHEMA,
    columns=COLUMNS,
    partitions_def=daily_partitions,
    ins={
        "daily_returns": AssetIn(
            key=DAILY_RETURNS,
            partition_mapping=TimeWindowPartitionMapping(start_offset=-(features.CORRELATION_DAYS - 1)),
            metadata={"columns": ["date", "symbol", "log_return_1d"]},
        )
    },
)
def correlations(context: AssetExecutionContext, daily_returns: pl.DataFrame) -> Output[pl.DataFrame]:
    """Correlation matrix of daily log returns over the 30 days ending on each date, in long format
    (one row per symbol pair); a pair appears only when both symbols have all 30 returns.

    A range run computes every day of the range in one call: a year of 300 symbols is 16.4 M rows
    (about 0.3 GB as this frame; benchmarks/correlations_bench.py, docs/performance.md)."""
    days = partition_days(*context.partition_time_window)
    # Categorical symbols: 4 bytes a cell instead of a 16-byte String view, and Arrow dictionary
    # columns the I/O manager and the Delta publish export without copying 2 × 16 M strings. DuckDB
    # stores them as VARCHAR and Delta as String (tests/test_gold_correlations.py), so the stored
    # tables keep CORRELATIONS_SCHEMA. Not Enum: the Delta files would carry Polars' enum metadata,
    # which pl.read_delta then refuses against the table's String schema.
    rows = features.correlations_30d(daily_returns, days, categorical_symbols=True)
    last_day = days[-1]
    return Output(
        rows,
        metadata={
            "rows": len(rows),
            "days": len(days),
            **run_wide({"pairs_on_last_day": rows.filter(pl.col("date") == last_day).height}),
            **rich_metadata(
                len(days),
                lambda: {
                    "heatmap": correlation_heatmap(rows, last_day),
                    "preview": markdown_preview(rows.sort("corr_30d", descending=True, nulls_last=True)),
                    "dagster/column_lineage": column_lineage(
                        {
                            "date": [(DAILY_RETURNS, "date")],
                            "symbol_a": [(DAILY_RETURNS, "symbol")],
                            "symbol_b": [(DAILY_RETURNS, "symbol")],
                            "corr_30d": [(DAILY_RETURNS, "log_return_1d")],
                        }
                    ),
                },
            ),
        },
    )
