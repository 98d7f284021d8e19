"""Section (2): a full bronze → gold backfill through Dagster (simulated exchange, DuckDB I/O manager).

Launched twice, each on a fresh instance and DuckDB file:
* the way the UI launches it: ``dagster dev`` (webserver + daemons), a ``launchPartitionBackfill``
  GraphQL mutation with per-asset partition ranges (what the UI's backfill dialog sends), then the
  backfill daemon plans and queues the runs;
* ``cryptolake backfill --source simulated`` (in-process range runs planned by ``cli.plan_runs``).
Wall time is from submission until the backfill (or the command) is done.
"""

import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.dagster_dev import DagsterDev
from benchmarks.measure import _tree_rss_kb, run_process
from benchmarks.run_stats import run_statistics

# The backfill daemon ticks every 30 s, so polling its status faster adds load, not precision.
STATUS_POLL_SECONDS = 2
TERMINAL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}

ASSET_NODES = "{ assetNodes { assetKey { path } partitionDefinition { type } tags { key value } } }"
#: The live stream's tables are filled from landing files by their own sensor, not by a backfill of
#: market history (``cryptolake backfill`` leaves them out too): the UI launch selects the rest.
STREAM_TAG = {"key": "pipeline", "value": "stream"}
LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  }
}
"""
STATUS = """
query Status($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status numPartitions error { message } }
    ... on PythonError { message }
  }
}
"""


def _symbols(count: int | None) -> list[str]:
    from partitions.universe import DEFAULT_UNIVERSE_PATH, read_universe

    symbols = [info.symbol for info in read_universe(DEFAULT_UNIVERSE_PATH)]
    return symbols if count is None else symbols[:count]


def _env(workdir: Path, name: str, start_date: str = "2023-01-01") -> dict[str, str]:
    return {
        "DAGSTER_HOME": str(workdir / f"home_{name}"),
        "CRYPTOLAKE_SOURCE": "simulated",
        "CRYPTOLAKE_INTERVAL": "1h",
        "CRYPTOLAKE_START_DATE": start_date,
        "CRYPTOLAKE_DUCKDB": str(workdir / f"{name}.duckdb"),
        "CRYPTOLAKE_UNIVERSE": "",
        # No schedule or sensor of the new instance may add runs beside the measured backfill (the
        # hourly refresh would ingest today for every symbol while the backfill runs).
        "CRYPTOLAKE_AUTOMATION": "off",
    }


def _tables(database: str) -> dict[str, int]:
    from cryptolake_assets.cli import table_summary

    return {name: rows for name, rows, _ in table_summary(database)}


def via_cli(scale, workdir: Path, log=print) -> dict:
    env = _env(workdir, "cli")
    symbols = _symbols(scale.backfill_symbols)
    command = [
        str(Path(sys.executable).with_name("cryptolake")),
        "backfill",
        "--source",
        "simulated",
        "--interval",
        "1h",
        "--start",
        str(scale.backfill_start),
        "--end",
        str(scale.backfill_end),
    ]
    if scale.backfill_symbols is not None:
        command += ["--symbols", ",".join(symbols)]
    Path(env["DAGSTER_HOME"]).mkdir(parents=True)
    log(f"(2) cryptolake backfill: {len(symbols)} symbols × {scale.backfill_start}..{scale.backfill_end} ...")
    outcome = run_process(command, env=env, sample_tree=True, timeout=scale.backfill_timeout, check=False)
    if outcome.returncode != 0 and not outcome.timed_out:
        raise RuntimeError(f"cryptolake backfill failed ({outcome.returncode}):\n{outcome.stderr[-6000:]}")
    stats = run_statistics(Path(env["DAGSTER_HOME"]))
    log(f"    {outcome.wall_seconds:.1f}s, {stats['runs']} runs{' (TIMED OUT, killed)' if outcome.timed_out else ''}")
    return {
        "launch": "cryptolake backfill",
        "symbols": len(symbols),
        "finished": not outcome.timed_out,
        "timeout_seconds": scale.backfill_timeout,
        "wall_seconds": round(outcome.wall_seconds, 2),
        "peak_rss_mb_process_tree": round(outcome.tree_peak_rss_mb),
        **stats,
        "tables": _tables(env["CRYPTOLAKE_DUCKDB"]),
    }


def via_daemon(
    scale, workdir: Path, log=print, start_date: str = "2023-01-01", extra_env: dict[str, str] | None = None
) -> dict:
    env = {**_env(workdir, "daemon", start_date), **(extra_env or {})}
    symbols = _symbols(scale.backfill_symbols)
    first, last = str(scale.backfill_start), str(scale.backfill_end)
    log(f"(2) daemon backfill via GraphQL: {len(symbols)} symbols × {first}..{last} (starting dagster dev) ...")
    with DagsterDev(Path(env["DAGSTER_HOME"]), env) as dev:
        selectors = []
        for node in dev.graphql(ASSET_NODES)["assetNodes"]:
            if STREAM_TAG in (node.get("tags") or []):
                continue
            kind = (node["partitionDefinition"] or {}).get("type")
            key = {"path": node["assetKey"]["path"]}
            if kind == "MULTIPARTITIONED":
                selectors.append(
                    {
                        "assetKey": key,
                        "partitions": {"range": {"start": f"{first}|{symbols[0]}", "end": f"{last}|{symbols[-1]}"}},
                    }
                )
            elif kind == "TIME_WINDOW":
                selectors.append({"assetKey": key, "partitions": {"range": {"start": first, "end": last}}})
            elif kind is None:
                selectors.append({"assetKey": key, "partitions": None})
            else:
                raise RuntimeError(
                    f"asset {key['path']} has a {kind} partitions definition the benchmark does not know how to range"
                )

        submitted = time.perf_counter()
        launched = dev.graphql(LAUNCH, {"params": {"partitionsByAssets": selectors, "title": "benchmark"}})[
            "launchPartitionBackfill"
        ]
        if launched["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(f"backfill not launched: {launched}")
        backfill_id, status, peak_kb = launched["backfillId"], None, 0
        while time.perf_counter() - submitted < scale.backfill_timeout:
            state = dev.graphql(STATUS, {"id": backfill_id})["partitionBackfillOrError"]
            status = state.get("status")
            peak_kb = max(peak_kb, _tree_rss_kb(dev.process.pid))
            if status in TERMINAL:
                break
            time.sleep(STATUS_POLL_SECONDS)
        wall = time.perf_counter() - submitted
        log(f"    {wall:.1f}s, backfill {status}")
    # The instance's dagster.yaml may read its storage URL from the environment (PostgreSQL).
    saved = {name: os.environ.get(name) for name in extra_env or {}}
    os.environ.update(extra_env or {})
    try:
        stats = run_statistics(Path(env["DAGSTER_HOME"]), tags={"dagster/backfill": backfill_id})
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    log(f"    {stats['runs']} runs")
    return {
        "launch": "daemon backfill (UI GraphQL)",
        "symbols": len(symbols),
        "backfill_status": status,
        "finished": status in TERMINAL,
        "timeout_seconds": scale.backfill_timeout,
        "wall_seconds": round(wall, 2),
        "peak_rss_mb_process_tree": round(peak_kb / 1024),
        "assets": len(selectors),
        **stats,
        "tables": _tables(env["CRYPTOLAKE_DUCKDB"]),
    }


def run(scale, log=print) -> dict:
    with tempfile.TemporaryDirectory(prefix="cryptolake-backfill-") as tmp:
        workdir = Path(tmp)
        results = [via_daemon(scale, workdir, log), via_cli(scale, workdir, log)]
    days = (scale.backfill_end - scale.backfill_start).days + 1
    label = f"(2) backfill {results[0]['symbols']} sym × {days}d 1h"
    rows = []
    for result in results:
        bronze = result["tables"].get("bronze.klines", 0)
        rows.append(
            [
                label,
                result["launch"],
                f"{bronze:,}",
                f"{result['wall_seconds']:.1f}",
                f"{round(bronze / result['wall_seconds']):,}",
                f"{result['peak_rss_mb_process_tree']:,}",
            ]
        )
        ok = result["finished"] and result["wall_seconds"] <= 300
        unfinished = "" if result["finished"] else f"NOT FINISHED, stopped after {result['timeout_seconds']} s; "
        rows.append(
            [
                "",
                f"  {unfinished}{result['runs']} runs; mean run {result['mean_run_seconds']}s of which overhead "
                f"{result['mean_overhead_seconds_per_run']}s; target ≤300 s: {'met' if ok else 'MISSED'}",
                "",
                "",
                "",
                "",
            ]
        )
    return {"days": days, "results": results, "table_rows": rows}
