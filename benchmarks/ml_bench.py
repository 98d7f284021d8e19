"""gold/predictions at full-history scale: walk-forward fits over a synthetic ml_features table.

Issue 17 targets the predictions step of a full-history backfill (50 symbols × 2017-08-17..today,
about 3,400 days) in ≤ 150 s on the 2-core machine. This script builds a seeded synthetic
``gold.ml_features`` table of that shape (symbols listed on staggered days as in the real universe,
features with nulls, a weak signal in the target), runs
``cryptolake_assets.ml.walk_forward.walk_forward_predictions`` over every day as one range run would,
and prints wall seconds, peak RSS (VmHWM of this process), rows and refits. Run it as its own process:

    .venv/bin/python benchmarks/ml_bench.py                       # 50 symbols × 3,400 days
    .venv/bin/python benchmarks/ml_bench.py --symbols 35 --days 365 --json out.json
"""

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptolake_assets.ml import walk_forward as wf
from cryptolake_assets.ml.features import FEATURE_COLUMNS, ML_FEATURES_SCHEMA

START = dt.date(2017, 8, 17)


def synthetic_ml_features(symbols: int, days: int, seed: int = 0, start: dt.date = START) -> pl.DataFrame:
    """A ``gold.ml_features``-shaped table: one row per listed (day, symbol). Symbol k is listed from
    day ``k × days / (2 × symbols)`` (the first from day 0, the last half-way), features are seeded
    noise with about 3 % nulls (``market_cap_rank`` 30 %), and the target carries a weak linear and
    non-linear signal from three features; the newest day has no target (D + 1 not closed)."""
    rng = np.random.default_rng(seed)
    listed = [k * days // (2 * symbols) for k in range(symbols)]
    day_index = np.concatenate([np.arange(first, days) for first in listed])
    symbol_index = np.concatenate([np.full(days - first, k) for k, first in enumerate(listed)])
    n = len(day_index)
    values = {c: rng.normal(0.0, 1.0, n) for c in FEATURE_COLUMNS}
    values["rsi_14"] = rng.uniform(0, 100, n)
    values["market_breadth"] = rng.uniform(-1, 1, n)
    values["fear_greed"] = rng.integers(0, 101, n).astype(float)
    values["market_cap_rank"] = rng.integers(1, symbols + 1, n).astype(float)
    for c in FEATURE_COLUMNS:
        share = 0.3 if c == "market_cap_rank" else 0.03
        values[c][rng.uniform(0, 1, n) < share] = np.nan
    signal = 0.002 * np.nan_to_num(values["ret_1d"]) - 0.001 * np.nan_to_num(values["ret_7d"]) ** 2
    target = signal + rng.normal(0.0, 0.03, n)
    target[day_index == days - 1] = np.nan
    frame = pl.DataFrame(
        {
            "date": pl.Series([start + dt.timedelta(days=int(d)) for d in range(days)])[day_index],
            "symbol": pl.Series([f"S{k:02d}USDT" for k in range(symbols)])[symbol_index],
            "category": pl.Series(["Layer 1"] * n),
            **{c: pl.Series(c, values[c]).fill_nan(None) for c in FEATURE_COLUMNS},
            "target_log_return_1d": pl.Series(target).fill_nan(None),
        }
    ).with_columns(target_up=pl.col("target_log_return_1d") > 0)
    return frame.select(ML_FEATURES_SCHEMA.names()).cast(ML_FEATURES_SCHEMA).sort("date", "symbol")


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--days", type=int, default=3400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retrain-every-days", type=int, default=wf.DEFAULT_RETRAIN_EVERY_DAYS)
    parser.add_argument("--last-days", type=int, help="predict only the newest N days (default: every day)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)

    features = synthetic_ml_features(args.symbols, args.days, args.seed)
    days = features["date"].unique().sort().to_list()[-(args.last_days or args.days) :]
    load_before = os.getloadavg()[0]
    started, cpu_started = time.perf_counter(), time.process_time()
    rows = wf.walk_forward_predictions(features, days, args.retrain_every_days)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    result = {
        "symbols": args.symbols,
        "days": args.days,
        "seed": args.seed,
        "predicted_days": len(days),
        "feature_rows": features.height,
        "prediction_rows": rows.height,
        "retrains": rows.select("model", "trained_on").n_unique(),
        "retrain_days": rows["trained_on"].n_unique(),
        "wall_seconds": round(seconds, 2),
        # CPU seconds of this process: on a machine shared with other work, wall time ≥ CPU time.
        "cpu_seconds": round(cpu_seconds, 2),
        "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "mean_prob_up": round(float(rows["prob_up"].mean() or 0.0), 6),
    }
    print(
        f"gold/predictions: {args.symbols} symbols × {args.days} days ({features.height:,} feature rows), "
        f"{len(days)} days predicted: "
        f"{seconds:.1f} s wall ({cpu_seconds:.1f} s CPU; 1-min load average {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after), peak RSS {result['peak_rss_mb']:.0f} MB, {rows.height:,} prediction rows, "
        f"{result['retrains']} model fits ({result['retrain_days']} retrain days × models)"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
