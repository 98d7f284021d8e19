"""Check that two feature outputs agree: same (date, symbol) rows, same nulls, values within 1e-9."""

import polars as pl

KEYS = ["date", "symbol"]
TOLERANCE = 1e-9


def agreement(reference_path: str, other_path: str) -> dict:
    reference = pl.read_parquet(reference_path)
    other = pl.read_parquet(other_path).with_columns(pl.col("date").cast(pl.Date))
    value_columns = [c for c in reference.columns if c not in KEYS]
    joined = reference.join(other, on=KEYS, how="full", suffix="_other", coalesce=True)
    only_one_side = joined.filter(pl.col("close").is_null() | pl.col("close_other").is_null()).height
    both = joined.filter(pl.col("close").is_not_null() & pl.col("close_other").is_not_null())
    null_mismatches, worst = {}, 0.0
    for column in value_columns:
        a, b = pl.col(column).cast(pl.Float64), pl.col(f"{column}_other").cast(pl.Float64)
        stats = both.select(
            nulls=(a.is_null() != b.is_null()).sum(),
            rel=((a - b).abs() / pl.max_horizontal(a.abs(), b.abs(), pl.lit(1.0))).max(),
        ).row(0, named=True)
        if stats["nulls"]:
            null_mismatches[column] = stats["nulls"]
        worst = max(worst, stats["rel"] or 0.0)
    return {
        "rows_reference": reference.height,
        "rows_other": other.height,
        "rows_on_one_side_only": only_one_side,
        "null_mismatches": null_mismatches,
        "max_relative_difference": worst,
        "agrees": only_one_side == 0 and not null_mismatches and worst <= TOLERANCE,
    }
