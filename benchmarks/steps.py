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


def _silver_input_is_lazy() -> bool:
    """True when the gold asset annotates its silver input ``pl.LazyFrame`` (the I/O manager then
    hands it a lazy scan of the slice instead of a loaded DataFrame)."""
    import polars as pl

    from cryptolake_assets.gold.daily_features import daily_features

    for input_def in daily_features.node_def.input_defs:
        if input_def.name == "silver_ohlcv":
            return input_def.dagster_type.typing_type is pl.LazyFrame
    return False


def features_project(params: dict) -> dict:
    """The project's code path: the input the gold asset receives from the DuckDB I/O manager (the
    columns its input declares, else all of them; a lazy scan when the asset annotates its input
    ``pl.LazyFrame``, else a loaded DataFrame), then ``daily_bars`` and ``daily_features``."""
    import polars as pl

    from cryptolake_assets.gold import features

    columns = _silver_columns_loaded_by_gold()
    lazy = _silver_input_is_lazy()
    started = time.perf_counter()
    if lazy:
        scan = pl.scan_parquet(params["silver"])
        silver = scan.select(columns) if columns else scan
    else:
        silver = pl.read_parquet(params["silver"], columns=columns)
    result = features.daily_features(features.daily_bars(silver))
    del silver
    result.write_parquet(params["output"])
    seconds = time.perf_counter() - started
    rows_in = pl.scan_parquet(params["silver"]).select(pl.len()).collect().item()
    return {
        "seconds": seconds,
        "rows_in": rows_in,
        "rows_out": len(result),
        "input": "LazyFrame" if lazy else "DataFrame",
    }


def features_polars_floor(params: dict) -> dict:
    import polars as pl

    from benchmarks.features_polars_floor import daily_features

    started = time.perf_counter()
    result = daily_features(params["silver"], params["universe"])
    result.write_parquet(params["output"])
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows_in": pl.scan_parquet(params["silver"]).select(pl.len()).collect().item(),
        "rows_out": len(result),
    }


def features_pandas(params: dict) -> dict:
    import pyarrow.parquet as pq

    from benchmarks.features_pandas import daily_features

    started = time.perf_counter()
    result = daily_features(params["silver"], params["universe"])
    result.to_parquet(params["output"], index=False)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows_in": pq.ParquetFile(params["silver"]).metadata.num_rows, "rows_out": len(result)}


def _month_starts(first: str, end: str) -> list:
    import datetime as dt

    day, stop, out = dt.date.fromisoformat(first), dt.date.fromisoformat(end), []
    while day < stop:
        out.append(day)
        day = dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return out + [stop]


def rest_ingest(params: dict) -> dict:
    """The bronze ingestion path over REST: ``BinanceClient.fetch_klines`` per symbol and month,
    sequentially as the bronze asset does, against ``base_url`` (the rate-limited fake)."""
    import datetime as dt

    from resources.binance import BinanceClient

    client = BinanceClient(source="binance", base_url=params["base_url"], interval="1m")
    months = _month_starts(params["start"], params["end"])
    started = time.perf_counter()
    rows = 0
    for symbol in params["symbols"]:
        for first, stop in zip(months, months[1:]):
            frame = client.fetch_klines(
                symbol,
                dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC),
                dt.datetime.combine(stop, dt.time(), tzinfo=dt.UTC),
            )
            rows += len(frame)
    seconds = time.perf_counter() - started
    client.close()
    return {"seconds": seconds, "rows_in": rows, "rows_out": rows, "client": client.stats()}


def archive_ingest(params: dict) -> dict:
    """The bronze ingestion path from monthly dumps: ``BinanceArchiveClient.fetch`` per symbol over
    the whole range (download, SHA-256 check, unzip, parse), against ``base_url``."""
    import datetime as dt

    from resources.binance_archive import BinanceArchiveClient

    client = BinanceArchiveClient(source="live", base_url=params["base_url"], interval="1m")
    start = dt.datetime.combine(dt.date.fromisoformat(params["start"]), dt.time(), tzinfo=dt.UTC)
    end = dt.datetime.combine(dt.date.fromisoformat(params["end"]), dt.time(), tzinfo=dt.UTC)
    started = time.perf_counter()
    rows, files, missing = 0, 0, 0
    for symbol in params["symbols"]:
        fetched = client.fetch(symbol, start, end)
        rows += len(fetched.frame)
        files += len(fetched.files)
        missing += len(fetched.missing)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows_in": rows, "rows_out": rows, "files": files, "ranges_not_covered": missing}


STEPS = {
    "archive_ingest": archive_ingest,
    "rest_ingest": rest_ingest,
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
