"""Measured steps, each run in a fresh interpreter: ``python -m benchmarks.steps NAME 'JSON params'``.

The step times only its work (imports and interpreter start are excluded) and prints one JSON line
with ``seconds``, ``rows_in``, ``rows_out`` and ``peak_rss_mb`` (the process's VmHWM, i.e. the high
water mark of resident memory over its whole life, imports included).
"""

import json
import sys
import time
from pathlib import Path


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _silver_columns_loaded_by_gold() -> list[str] | None:
    """The silver columns the gold asset asks its I/O manager for (``AssetIn(metadata={"columns": ...})``);
    None = every column (``SELECT *``)."""
    from cryptolake_assets.gold.daily_features import daily_features

    for input_def in daily_features.node_def.input_defs:
        if input_def.name == "silver_ohlcv":
            return (input_def.metadata or {}).get("columns")
    return None


def features_project(params: dict) -> dict:
    """The project's code path: the frame the gold asset receives from the DuckDB I/O manager (the
    columns its input declares, else all of them), then ``daily_bars`` and ``daily_features``."""
    import polars as pl

    from cryptolake_assets.gold import features

    columns = _silver_columns_loaded_by_gold()
    started = time.perf_counter()
    silver = pl.read_parquet(params["silver"], columns=columns)
    rows_in = len(silver)
    result = features.daily_features(features.daily_bars(silver))
    del silver
    result.write_parquet(params["output"])
    return {"seconds": time.perf_counter() - started, "rows_in": rows_in, "rows_out": len(result)}


def features_polars_floor(params: dict) -> dict:
    import polars as pl

    from benchmarks.features_polars_floor import daily_features

    started = time.perf_counter()
    result = daily_features(params["silver"], params["universe"])
    result.write_parquet(params["output"])
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows_in": pl.scan_parquet(params["silver"]).select(pl.len()).collect().item(), "rows_out": len(result)}


def features_pandas(params: dict) -> dict:
    import pyarrow.parquet as pq

    from benchmarks.features_pandas import daily_features

    started = time.perf_counter()
    result = daily_features(params["silver"], params["universe"])
    result.to_parquet(params["output"], index=False)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows_in": pq.ParquetFile(params["silver"]).metadata.num_rows, "rows_out": len(result)}


STEPS = {
    "features_project": features_project,
    "features_polars_floor": features_polars_floor,
    "features_pandas": features_pandas,
}


def main(argv: list[str]) -> None:
    name, params = argv[1], json.loads(argv[2])
    outcome = STEPS[name](params)
    outcome["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(json.dumps(outcome))


if __name__ == "__main__":
    main(sys.argv)
