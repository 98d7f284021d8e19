"""The same small pipeline on each storage: ``CRYPTOLAKE_STORAGE=duckdb`` against ``lake``.

Dimensions, ``--days`` × ``--symbols`` (the universe's first) date × symbol partitions (simulated source, every check),
the daily and reference assets: the five runs ``cryptolake backfill`` makes, in process on an
ephemeral instance, each storage in its own interpreter (so neither warms the other's imports).
Prints wall seconds per run and the size of what each storage wrote.

    python -m benchmarks.lake_storage_bench --days 7 --symbols 4
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one(storage: str, root: str, days: int, symbols: int) -> dict:
    """Runs the pipeline on ``storage`` in this process; returns seconds per run and bytes stored."""
    import datetime as dt

    os.environ.update(
        CRYPTOLAKE_STORAGE=storage,
        CRYPTOLAKE_SOURCE="simulated",
        CRYPTOLAKE_DUCKDB=f"{root}/cryptolake.duckdb",
        CRYPTOLAKE_LAKE=f"{root}/lake",
    )
    from dagster import AssetKey, DagsterInstance, Definitions

    from cryptolake_assets.definitions import ASSET_CHECKS, ASSETS
    from cryptolake_assets.schedules import JOBS
    from resources.dagster_internals import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
    from resources.definitions import build_resources

    first = dt.date(2024, 2, 1)
    last = first + dt.timedelta(days=days - 1)
    from partitions import symbol_partitions

    chosen = symbol_partitions.get_partition_keys()[:symbols]  # a range runs in the dimension's order
    days_tags = {ASSET_PARTITION_RANGE_START_TAG: str(first), ASSET_PARTITION_RANGE_END_TAG: str(last)}
    runs = [
        ("reference_assets", {}, [AssetKey(["gold", "dim_symbol"])]),
        ("daily_assets", days_tags, [AssetKey(["gold", "dim_date"])]),
        (
            "daily_symbol_assets",
            {
                ASSET_PARTITION_RANGE_START_TAG: f"{first}|{chosen[0]}",
                ASSET_PARTITION_RANGE_END_TAG: f"{last}|{chosen[-1]}",
            },
            None,
        ),
        ("daily_assets", days_tags, None),
        ("reference_assets", {}, None),
    ]
    defs = Definitions(assets=ASSETS, asset_checks=ASSET_CHECKS, jobs=JOBS, resources=build_resources())
    instance = DagsterInstance.ephemeral()
    seconds = {}
    for index, (job, tags, selection) in enumerate(runs):
        started = time.perf_counter()
        result = defs.resolve_job_def(job).execute_in_process(
            instance=instance, tags=tags, asset_selection=selection, raise_on_error=False
        )
        if not result.success:
            raise SystemExit(f"{storage}: {job} failed")
        seconds[f"{index + 1}:{job}"] = round(time.perf_counter() - started, 2)
    stored = sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file())
    return {"storage": storage, "seconds": seconds, "total": round(sum(seconds.values()), 2), "bytes": stored}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--symbols", type=int, default=4, choices=range(1, 11))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        with tempfile.TemporaryDirectory() as root:
            print(json.dumps(one(args.one, root, args.days, args.symbols)))
        return
    print(f"{args.days} days × {args.symbols} symbols, simulated source, every check; seconds per run")
    for storage in ("duckdb", "lake"):
        out = (
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.lake_storage_bench",
                    "--one",
                    storage,
                    "--days",
                    str(args.days),
                    "--symbols",
                    str(args.symbols),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        report = json.loads(out)
        runs = "  ".join(f"{k}={v}" for k, v in report["seconds"].items())
        print(f"{storage:>6}: total {report['total']:6.1f} s  stored {report['bytes'] / 1e6:5.2f} MB  ({runs})")


if __name__ == "__main__":
    main()
