"""gold/correlations kernel (``features.correlations_30d``): wall time and peak RSS per case.

Each case runs in a fresh interpreter (``python -m benchmarks.correlations_bench --step SYMBOLS DAYS``):
the child builds synthetic daily log returns for SYMBOLS symbols over DAYS + 29 calendar days
(seeded NumPy: one market factor plus noise, every symbol complete, so every pair is emitted on
every day — the worst case for the output size), which is not timed, then times the kernel for the
last DAYS days and prints one JSON line: ``seconds`` (the kernel only), ``peak_rss_mb`` (the
process's VmHWM, imports and input included), ``rows`` (= SYMBOLS·(SYMBOLS−1)/2·DAYS).

Cases: ``year`` (300 symbols × 365 days, the issue-17 target: ≤ 60 s, ≤ 2 GB) and ``block`` (200
symbols × 31 days, the case the old cross-join kernel needed 55 s and 3.6 GB for).

``--asset`` measures the whole asset instead: the same returns stored as ``gold.daily_returns`` in a
temporary DuckDB file (not timed), then ONE Dagster range run of ``gold/correlations`` over the
DAYS partitions (``materialize`` on an ephemeral instance) with the project's DuckDB I/O manager
publishing to a local Delta lake, as ``resources/definitions.py`` configures it; ``seconds`` is the
run, ``rows`` what the DuckDB table holds afterwards.

    .venv/bin/python benchmarks/correlations_bench.py                  # both kernel cases
    .venv/bin/python benchmarks/correlations_bench.py --asset --case year=300,365
    .venv/bin/python benchmarks/correlations_bench.py --case 20x40=20,40 --output out.json
"""

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.measure import run_process  # noqa: E402
from benchmarks.steps import peak_rss_mb  # noqa: E402

CASES = {"year": (300, 365), "block": (200, 31)}
SEED = 17
FIRST_DAY = dt.date(2024, 1, 1)


def synthetic_returns(symbols: int, days: int, seed: int = SEED):
    """Daily log returns of ``symbols`` symbols on ``days`` + 29 consecutive days (a full window for the
    first of the last ``days`` days): beta × market + idiosyncratic noise."""
    import numpy as np
    import polars as pl

    from cryptolake_assets.gold.features import CORRELATION_DAYS

    rng = np.random.default_rng(seed)
    calendar = days + CORRELATION_DAYS - 1
    market = rng.normal(0.0, 0.03, calendar)
    betas = rng.uniform(0.2, 1.5, symbols)
    returns = market[:, None] * betas[None, :] + rng.normal(0.0, 0.02, (calendar, symbols))
    names = [f"SYN{index:03d}USDT" for index in range(symbols)]
    dates = pl.date_range(FIRST_DAY, FIRST_DAY + dt.timedelta(days=calendar - 1), "1d", eager=True)
    return pl.DataFrame(
        {
            "date": dates.gather(np.repeat(np.arange(calendar), symbols)),
            "symbol": pl.Series(names * calendar, dtype=pl.String),
            "log_return_1d": returns.ravel(),
        }
    )


def step(symbols: int, days: int) -> dict:
    """In this (fresh) process: build the input (untimed), time the kernel for the last ``days`` days."""
    from cryptolake_assets.gold import features

    returns = synthetic_returns(symbols, days)
    first = FIRST_DAY + dt.timedelta(days=features.CORRELATION_DAYS - 1)
    wanted = [first + dt.timedelta(days=k) for k in range(days)]
    started = time.perf_counter()
    result = features.correlations_30d(returns, wanted)
    seconds = time.perf_counter() - started
    return {
        "symbols": symbols,
        "days": days,
        "input_rows": returns.height,
        "rows": result.height,
        "null_correlations": result["corr_30d"].null_count(),
        "seconds": round(seconds, 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "estimated_size_mb": round(result.estimated_size("mb"), 1),
    }


def asset_step(symbols: int, days: int) -> dict:
    """In this (fresh) process: store the input in DuckDB (untimed), time one range run of the asset."""
    import shutil
    import tempfile

    import duckdb
    from dagster import AssetSpec, materialize

    from cryptolake_assets.gold import features
    from cryptolake_assets.gold.correlations import DAILY_RETURNS, correlations
    from partitions import daily_partitions
    from resources.duckdb_io import CryptoLakeDuckDBIOManager
    from resources.lake import DeltaLake

    workdir = Path(tempfile.mkdtemp(prefix="cryptolake-corr-bench-"))
    try:
        database = workdir / "cryptolake.duckdb"
        returns = synthetic_returns(symbols, days)
        input_rows = returns.height
        with duckdb.connect(str(database)) as connection:
            connection.execute("CREATE SCHEMA gold")
            connection.register("returns", returns.to_arrow())
            connection.execute("CREATE TABLE gold.daily_returns AS SELECT * FROM returns")
        del returns
        first = FIRST_DAY + dt.timedelta(days=features.CORRELATION_DAYS - 1)
        last = first + dt.timedelta(days=days - 1)
        io_manager = CryptoLakeDuckDBIOManager(database=str(database), lake=DeltaLake(root=str(workdir / "lake")))
        upstream = AssetSpec(DAILY_RETURNS, partitions_def=daily_partitions, metadata={"partition_expr": "date"})
        started = time.perf_counter()
        result = materialize(
            [upstream, correlations],
            selection=[correlations],
            resources={"io_manager": io_manager},
            # The tags a range run carries (what `dagster asset materialize --partition-range` sets).
            tags={"dagster/asset_partition_range_start": str(first), "dagster/asset_partition_range_end": str(last)},
        )
        seconds = time.perf_counter() - started
        if not result.success:
            raise RuntimeError("the gold/correlations range run failed")
        with duckdb.connect(str(database), read_only=True) as connection:
            [row] = connection.sql("SELECT count(*), count(corr_30d) FROM gold.correlations").fetchall()
        return {
            "symbols": symbols,
            "days": days,
            "input_rows": input_rows,
            "rows": int(row[0]),
            "null_correlations": int(row[0]) - int(row[1]),
            "seconds": round(seconds, 3),
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_case(name: str, symbols: int, days: int, asset: bool = False) -> dict:
    mode = "--asset-step" if asset else "--step"
    outcome = run_process([sys.executable, str(Path(__file__).resolve()), mode, str(symbols), str(days)])
    result = json.loads(outcome.stdout.strip().splitlines()[-1])
    return {
        "case": name,
        "measured": "asset" if asset else "kernel",
        **result,
        "process_seconds": round(outcome.wall_seconds, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--step", nargs=2, type=int, metavar=("SYMBOLS", "DAYS"), help=argparse.SUPPRESS)
    parser.add_argument("--asset-step", nargs=2, type=int, metavar=("SYMBOLS", "DAYS"), help=argparse.SUPPRESS)
    parser.add_argument("--asset", action="store_true", help="measure the asset's range run, not the kernel")
    parser.add_argument(
        "--case",
        action="append",
        default=[],
        metavar="NAME=SYMBOLS,DAYS",
        help="run this case instead of the default ones",
    )
    parser.add_argument("--output", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.step:
        print(json.dumps(step(*args.step)))
        return 0
    if args.asset_step:
        print(json.dumps(asset_step(*args.asset_step)))
        return 0
    cases = dict(CASES)
    if args.case:
        cases = {}
        for spec in args.case:
            name, sizes = spec.split("=", 1)
            symbols, days = (int(n) for n in sizes.split(","))
            cases[name] = (symbols, days)
    results = []
    timed = "asset s" if args.asset else "kernel s"
    print(f"{'case':<8} {'symbols':>7} {'days':>5} {'rows':>12} {timed:>9} {'process s':>9} {'peak RSS MB':>11}")
    for name, (symbols, days) in cases.items():
        result = run_case(name, symbols, days, asset=args.asset)
        results.append(result)
        print(
            f"{name:<8} {symbols:>7} {days:>5} {result['rows']:>12,} {result['seconds']:>9.2f} "
            f"{result['process_seconds']:>9.2f} {result['peak_rss_mb']:>11.0f}",
            flush=True,
        )
    if args.output:
        args.output.write_text(json.dumps({"date": dt.datetime.now(dt.UTC).isoformat(), "cases": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
