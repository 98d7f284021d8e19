"""`cryptolake backfill` on the Postgres instance (CRYPTOLAKE_INSTANCE=postgres), against the session's real server.

Two days × two symbols of the simulated source: the CLI copies deploy/postgres/dagster.yaml into
DAGSTER_HOME, and every run, event and check result lands in PostgreSQL (no SQLite file).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetCheckKey, AssetKey, DagsterInstance, DagsterRunStatus

from resources.dagster_event_log import BatchedPostgresEventLogStorage

REPO_ROOT = Path(__file__).resolve().parents[1]
KEYS = {f"{day}|{symbol}" for day in ("2024-03-01", "2024-03-02") for symbol in ("BTCUSDT", "ETHUSDT")}


@pytest.mark.slow
def test_a_cli_backfill_runs_through_the_postgres_instance(tmp_path, postgres_url):
    home = tmp_path / "home"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "CRYPTOLAKE_INSTANCE": "postgres",
        "DAGSTER_POSTGRES_URL": postgres_url,
        "CRYPTOLAKE_SOURCE": "simulated",
    }
    command = [
        sys.executable,
        "-m",
        "cryptolake_assets.cli",
        "backfill",
        "--start",
        "2024-03-01",
        "--end",
        "2024-03-02",
        "--symbols",
        "BTCUSDT,ETHUSDT",
        "--source",
        "simulated",
        "--duckdb",
        str(tmp_path / "lake.duckdb"),
    ]
    done = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Backfill done" in done.stdout

    assert (home / "dagster.yaml").read_text() == (REPO_ROOT / "deploy" / "postgres" / "dagster.yaml").read_text()
    assert not (home / "history").exists() and not (home / "schedules").exists()  # nothing on SQLite
    os.environ["DAGSTER_POSTGRES_URL"] = postgres_url  # read by the instance's config (env: DAGSTER_POSTGRES_URL)
    try:
        with DagsterInstance.from_config(str(home)) as instance:
            assert isinstance(instance.event_log_storage, BatchedPostgresEventLogStorage)
            runs = instance.get_runs()
            assert runs and {run.status for run in runs} == {DagsterRunStatus.SUCCESS}
            for key in (["bronze", "klines"], ["silver", "ohlcv"], ["gold", "daily_features"]):
                assert instance.get_materialized_partitions(AssetKey(key)) == KEYS, key
            # Per-partition check results of the range run, each partition passing.
            infos = instance.event_log_storage.get_asset_check_partition_info(
                [AssetCheckKey(AssetKey(["silver", "ohlcv"]), "unique_symbol_open_time")]
            )
            assert {i.partition_key: i.latest_execution_status.value for i in infos} == dict.fromkeys(KEYS, "SUCCEEDED")
    finally:
        del os.environ["DAGSTER_POSTGRES_URL"]
