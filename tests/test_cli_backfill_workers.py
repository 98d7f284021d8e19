"""`cryptolake backfill --workers N`: the date × symbol runs of a backfill in N processes at once
write exactly what one process writes (issue 17: a full-history backfill on both cores)."""

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
from dagster import DagsterInstance, RunsFilter

pytestmark = pytest.mark.slow

SYMBOLS = "BTCUSDT,ETHUSDT,SOLUSDT,AVAXUSDT"  # contiguous in the universe (Layer 1)
DAILY_SYMBOL_TABLES = ("bronze.klines", "silver.ohlcv", "gold.daily_features")


def _backfill(tmp_path, monkeypatch, name: str, workers: int) -> str:
    """The CLI in its own process, as a user runs it (the code location reads the environment once
    per process, so an in-process CliRunner would reuse whatever an earlier test loaded)."""
    database = str(tmp_path / f"{name}.duckdb")
    env = {
        "DAGSTER_HOME": str(tmp_path / f"home_{name}"),
        "CRYPTOLAKE_DUCKDB": database,
        "CRYPTOLAKE_LAKE": str(tmp_path / f"lake_{name}"),
        "CRYPTOLAKE_START_DATE": "2024-03-01",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)  # the test reads the same instance afterwards
    result = subprocess.run(
        [str(Path(sys.executable).with_name("cryptolake")), "backfill", "--start", "2024-03-01", "--end", "2024-03-03"]
        + ["--symbols", SYMBOLS, "--source", "simulated", "--interval", "1h", "--workers", str(workers)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return database


def _table(database: str, table: str) -> pl.DataFrame:
    with duckdb.connect(database, read_only=True) as connection:
        frame = connection.sql(f"SELECT * FROM {table}").pl()
    frame = frame.drop([c for c in ("ingested_at", "quarantined_at") if c in frame.columns])
    return frame.sort([c for c in ("symbol", "date", "open_time") if c in frame.columns])


def test_two_workers_write_what_one_writes_in_two_runs(tmp_path, monkeypatch):
    single = _backfill(tmp_path, monkeypatch, "single", workers=1)
    parallel = _backfill(tmp_path, monkeypatch, "parallel", workers=2)
    for table in DAILY_SYMBOL_TABLES:
        expected, got = _table(single, table), _table(parallel, table)
        assert got.height == expected.height > 0
        assert got.equals(expected), table
    # The parallel instance: the date × symbol assets ran as two runs, one per half of the symbols.
    with DagsterInstance.get() as instance:
        records = instance.get_run_records(RunsFilter(job_name="daily_symbol_assets"))
        ranges = sorted(
            (
                r.dagster_run.tags["dagster/asset_partition_range_start"],
                r.dagster_run.tags["dagster/asset_partition_range_end"],
            )
            for r in records
        )
        assert all(r.dagster_run.is_success for r in records)
    assert ranges == [
        ("2024-03-01|BTCUSDT", "2024-03-03|ETHUSDT"),
        ("2024-03-01|SOLUSDT", "2024-03-03|AVAXUSDT"),
    ]


def test_a_failing_worker_reports_its_error_and_the_other_worker_still_finishes(tmp_path, monkeypatch):
    """Workers leave with ``os._exit`` (a full-history run's objects are not freed one by one); what
    they report still arrives: a failure's message, and the other worker's finished run."""
    import datetime as dt

    import click

    from cryptolake_assets.cli import RunChunk, _run_chunk_queues, ensure_dagster_home

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CRYPTOLAKE_DUCKDB", str(tmp_path / "w.duckdb"))
    monkeypatch.setenv("CRYPTOLAKE_LAKE", str(tmp_path / "lake"))
    monkeypatch.setenv("CRYPTOLAKE_START_DATE", "2024-03-01")
    monkeypatch.setenv("CRYPTOLAKE_SOURCE", "simulated")
    ensure_dagster_home()
    DagsterInstance.get().dispose()  # the instance's tables exist before the workers start, as in the CLI
    day = dt.date(2024, 3, 1)
    good = RunChunk(day, day, ("BTCUSDT",))
    bad = RunChunk(day, day, ("NOSUCHUSDT",))  # not a partition: the run cannot be created
    with pytest.raises(click.ClickException) as failure:
        _run_chunk_queues([[good], [bad]])
    assert "NOSUCHUSDT" in failure.value.format_message()
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as connection:
        landed = connection.sql("SELECT symbol, count(*) FROM bronze.klines GROUP BY symbol").fetchall()
    assert landed == [("BTCUSDT", 24)]
