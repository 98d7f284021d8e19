"""What the batched event log saves on SQLite and on PostgreSQL: one range run, four instances.

``python benchmarks/postgres_event_log_bench.py [--days 100] [--symbols 10] [--json out.json]``

Starts a throw-away PostgreSQL server (the Debian package, as the tests do: tests/postgres_server.py)
and runs the same in-process range run (one date × symbol asset over days × symbols partitions, with
a check that reports one result for the range, as the project's checks do past 40 partitions) on:

* Dagster's stock SQLite instance, and the project's (``BatchedSqliteEventLogStorage``);
* dagster-postgres' stock ``storage: postgres`` (also with Dagster's public
  ``DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=true``: ``--instances postgres-subset-env``),
  and deploy/postgres/dagster.yaml's storage (``BatchedPostgresEventLogStorage``).

Reports per instance: the run's wall time, the event-log rows (and planned events) it wrote, the
check-execution rows and the bytes of the planned rows' stored events. The server runs with
``fsync=off`` (a test server): absolute Postgres times are a lower bound for a durable server.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import sqlalchemy as db  # noqa: E402
from dagster import (  # noqa: E402
    AssetCheckResult,
    AssetCheckSpec,
    AssetKey,
    BackfillPolicy,
    DagsterInstance,
    DailyPartitionsDefinition,
    MultiPartitionsDefinition,
    StaticPartitionsDefinition,
    asset,
    materialize,
    multi_asset_check,
)
from postgres_server import PostgresServer, postgres_bin_dir  # noqa: E402

from resources.dagster_internals import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG  # noqa: E402

INSTANCES = {
    "sqlite": "sqlite (Dagster's)",
    "sqlite-batched": "sqlite (BatchedSqliteEventLogStorage)",
    "postgres": "postgres (Dagster's)",
    "postgres-subset-env": "postgres (Dagster's, DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=true)",
    "postgres-batched": "postgres (BatchedPostgresEventLogStorage)",
}


def _definitions(days: int, symbols: int):
    import datetime as dt

    start = dt.date(2024, 1, 1)
    end = start + dt.timedelta(days=days)
    names = [f"S{i:03d}USDT" for i in range(symbols)]
    grid = MultiPartitionsDefinition(
        {
            "date": DailyPartitionsDefinition(start_date=str(start), end_date=str(end)),
            "symbol": StaticPartitionsDefinition(names),
        }
    )
    key = AssetKey(["bench", "bars"])

    @asset(key=key, partitions_def=grid, backfill_policy=BackfillPolicy.single_run())
    def bars(context) -> None:
        """Range-level metadata only (the run is about the event log)."""
        context.add_output_metadata({"rows": 24 * len(context.partition_keys)})

    @multi_asset_check(specs=[AssetCheckSpec("rows_ok", asset=key, partitions_def=grid)], can_subset=True)
    def rows_ok(context):
        """One result for the whole range, as the project's checks report ranges of more than 40 partitions."""
        yield AssetCheckResult(asset_key=key, check_name="rows_ok", passed=True)

    tags = {
        ASSET_PARTITION_RANGE_START_TAG: f"{start}|{names[0]}",
        ASSET_PARTITION_RANGE_END_TAG: f"{end - dt.timedelta(days=1)}|{names[-1]}",
    }
    return [bars, rows_ok], tags


def _counts(instance: DagsterInstance) -> dict:
    storage = instance.event_log_storage
    from resources.dagster_internals import AssetCheckExecutionsTable, SqlEventLogStorageTable

    with storage.index_connection() as conn:
        events = conn.execute(db.select(db.func.count()).select_from(SqlEventLogStorageTable)).scalar()
        planned = conn.execute(
            db.select(db.func.count())
            .select_from(SqlEventLogStorageTable)
            .where(SqlEventLogStorageTable.c.dagster_event_type == "ASSET_MATERIALIZATION_PLANNED")
        ).scalar()
        checks, check_bytes = conn.execute(
            db.select(db.func.count(), db.func.sum(db.func.length(AssetCheckExecutionsTable.c.evaluation_event)))
        ).one()
    return {
        "index_event_rows": int(events or 0),
        "planned_events": int(planned or 0),
        "check_execution_rows": int(checks or 0),
        "check_execution_event_bytes": int(check_bytes or 0),
    }


def _run(name: str, home: Path, config: str | None, assets, tags) -> dict:
    home.mkdir(parents=True)
    if config is not None:
        (home / "dagster.yaml").write_text(config)
    os.environ["DAGSTER_HOME"] = str(home)
    with DagsterInstance.from_config(str(home)) as instance:
        started = time.perf_counter()
        result = materialize(assets, instance=instance, tags=tags)
        seconds = time.perf_counter() - started
        assert result.success
        return {"instance": name, "run_seconds": round(seconds, 2), **_counts(instance)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument(
        "--instances",
        default="sqlite,sqlite-batched,postgres,postgres-batched",
        help="comma-separated, of: " + ", ".join(INSTANCES),
    )
    args = parser.parse_args()
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise SystemExit("PostgreSQL server binaries not found: apt-get install -y postgresql")
    assets, tags = _definitions(args.days, args.symbols)
    project_sqlite = (REPO / "dagster.yaml").read_text()
    project_postgres = (REPO / "deploy" / "postgres" / "dagster.yaml").read_text()
    results = []
    # Warm-up (imports, first materialize) on an ephemeral instance, so no timed run pays it.
    warm_assets, warm_tags = _definitions(1, 1)
    assert materialize(warm_assets, instance=DagsterInstance.ephemeral(), tags=warm_tags).success
    server = PostgresServer(bin_dir).start()
    try:
        with tempfile.TemporaryDirectory(prefix="cryptolake-pg-bench-") as tmp:
            stock_url, batched_url = server.new_database(), server.new_database()
            stock_postgres = f"storage:\n  postgres:\n    postgres_url: {stock_url}\n"
            configs = {
                "sqlite": None,
                "sqlite-batched": project_sqlite,
                "postgres": stock_postgres,
                "postgres-subset-env": stock_postgres,
                "postgres-batched": project_postgres,
            }
            os.environ["DAGSTER_POSTGRES_URL"] = batched_url
            for index, key in enumerate(args.instances.split(",")):
                if key == "postgres-subset-env":  # Dagster's public switch for one planned event per range
                    os.environ["DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"] = "true"
                try:
                    results.append(_run(INSTANCES[key], Path(tmp) / str(index), configs[key], assets, tags))
                finally:
                    os.environ.pop("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", None)
                print(json.dumps(results[-1]), flush=True)
    finally:
        server.stop()
    partitions = args.days * args.symbols
    print(f"\n{partitions} partitions ({args.days} days × {args.symbols} symbols), one range run:")
    print("| instance | run (s) | index event rows | planned events | check rows | check rows' event bytes |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['instance']} | {r['run_seconds']} | {r['index_event_rows']:,} | {r['planned_events']:,} "
            f"| {r['check_execution_rows']:,} | {r['check_execution_event_bytes']:,} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"partitions": partitions, "results": results}, indent=2))


if __name__ == "__main__":
    main()
