"""What run-log retention frees: ``python benchmarks/run_log_retention_bench.py [--runs 20]``.

Runs ``--runs`` in-process runs shaped like an hourly schedule run (four chained partitioned assets
of one symbol-day, each logging two lines and printing one, and a check on each) on a fresh
instance with the project's dagster.yaml, then purges them all as if 31 days had passed
(resources/run_log_retention.py) and prints, as JSON: events per run before and after, bytes of
the event log (``history/runs``) and of the compute logs (``storage``) before and after, and the
purge time per run. Nothing of the project's data is touched.
"""

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def _shard_bytes(directory: Path) -> int:
    """Mean size of a run shard (the index shard left out)."""
    sizes = [p.stat().st_size for p in directory.glob("*.db") if p.name != "index.db"]
    return sum(sizes) // len(sizes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="retention-bench-")) / "home"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)

    from dagster import (
        AssetCheckResult,
        AssetKey,
        DagsterInstance,
        DailyPartitionsDefinition,
        asset,
        asset_check,
        materialize,
    )

    from resources.run_log_retention import purge_all

    days = DailyPartitionsDefinition(start_date="2024-01-01")
    layers = ["bronze", "silver", "gold", "features"]

    def layer_asset(layer: str, deps: list[AssetKey]):
        @asset(key=AssetKey(["bench", layer]), partitions_def=days, deps=deps)
        def compute(context) -> None:
            """One layer of the bench chain."""
            context.log.info(f"{layer}: read the partition")
            print(f"{layer}: 24 rows")
            context.log.info(f"{layer}: wrote 24 rows")
            context.add_output_metadata({"rows": 24})

        @asset_check(asset=compute, name=f"{layer}_rows")
        def check() -> AssetCheckResult:
            return AssetCheckResult(passed=True)

        return compute, check

    assets, checks = [], []
    for index, layer in enumerate(layers):
        node, check = layer_asset(layer, [AssetKey(["bench", layers[index - 1]])] if index else [])
        assets.append(node)
        checks.append(check)

    instance = DagsterInstance.get()
    for run in range(args.runs):
        day = (dt.date(2024, 1, 1) + dt.timedelta(days=run)).isoformat()
        assert materialize([*assets, *checks], instance=instance, partition_key=day, raise_on_error=True).success
    run_ids = [r.run_id for r in instance.get_runs()]
    events_before = sum(len(instance.all_logs(run_id)) for run_id in run_ids)
    history, storage = home / "history" / "runs", home / "storage"
    before = {
        "event_log_bytes": _bytes(history),
        "run_shard_bytes_mean": _shard_bytes(history),
        "compute_log_bytes": _bytes(storage),
    }

    started = time.perf_counter()
    total = purge_all(instance, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=31), echo=lambda _: None)
    seconds = time.perf_counter() - started
    events_after = sum(len(instance.all_logs(run_id)) for run_id in run_ids)
    print(
        json.dumps(
            {
                "runs": len(run_ids),
                "events_per_run_before": events_before / len(run_ids),
                "events_per_run_after": events_after / len(run_ids),
                "before": before,
                "after": {
                    "event_log_bytes": _bytes(history),
                    "run_shard_bytes_mean": _shard_bytes(history),
                    "compute_log_bytes": _bytes(storage),
                },
                "reported": total.metadata(),
                "purge_seconds_per_run": round(seconds / len(run_ids), 4),
            },
            indent=1,
        )
    )
    shutil.rmtree(home.parent)


if __name__ == "__main__":
    main()
