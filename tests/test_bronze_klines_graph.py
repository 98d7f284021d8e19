"""bronze/klines as a graph of two ops: the download holds no pool slot, the write holds ``duckdb``;
what was downloaded crosses the step boundary as Parquet (cryptolake_assets/bronze/staging.py).

Also pins what the split must keep: a permanent error (Binance -1121 Invalid symbol) fails the
download once, without retries, and nothing is written; a transient one (503) is retried by the
op's policy and the run then writes the day exactly once.
"""

import datetime as dt
import json
import os

import duckdb
import polars as pl
import pytest
from binance_fakes import ScriptedBinance, binance_error, klines_server, synthetic_klines
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    build_input_context,
    build_output_context,
    materialize,
)

from cryptolake_assets.bronze.klines import bronze_klines, download_klines, write_klines
from cryptolake_assets.bronze.staging import STAGING_IO_MANAGER_KEY, StagedFrame, StagingIOManager
from cryptolake_assets.medallion import POOL
from cryptolake_assets.retries import TRANSIENT_RETRY_POLICY
from resources.binance import BinanceClient
from resources.binance_archive import BinanceArchiveClient
from resources.duckdb_io import CryptoLakeDuckDBIOManager
from resources.kline_format import INTERVAL_MS, bronze_klines_frame

DAY = dt.date(2024, 3, 1)
DAY_MS = int(dt.datetime.combine(DAY, dt.time(), tzinfo=dt.UTC).timestamp() * 1000)
ROWS = synthetic_klines(DAY_MS, 24, INTERVAL_MS["1h"])
DOWNLOAD_STEP, WRITE_STEP = "bronze__klines.download_klines", "bronze__klines.write_klines"


def test_the_download_holds_no_pool_and_the_write_holds_duckdb():
    ops = {node.name: node.definition for node in bronze_klines.node_def.nodes}
    assert sorted(ops) == ["download_klines", "write_klines"]
    assert ops["download_klines"].pool is None
    assert ops["write_klines"].pool == POOL == "duckdb"
    assert ops["download_klines"].retry_policy == ops["write_klines"].retry_policy == TRANSIENT_RETRY_POLICY
    assert ops["download_klines"].outs["result"].io_manager_key == STAGING_IO_MANAGER_KEY
    assert ops["write_klines"].outs["result"].io_manager_key == "io_manager"
    assert download_klines is ops["download_klines"] and write_klines is ops["write_klines"]
    assert bronze_klines.keys == {AssetKey(["bronze", "klines"])}
    assert STAGING_IO_MANAGER_KEY in bronze_klines.resource_defs


def _frame() -> pl.DataFrame:
    ingested = dt.datetime(2024, 3, 2, 0, 5, tzinfo=dt.UTC)
    return bronze_klines_frame(ROWS, symbol="BTCUSDT", interval="1h", source="binance", ingested_at=ingested)


def test_staging_round_trips_frame_and_notes_under_the_producing_run(tmp_path):
    manager = StagingIOManager(root=str(tmp_path))
    staged = StagedFrame(_frame(), {"empty_partitions": ["2024-03-02|BTCUSDT (no data)"], "http_requests": 1})
    manager.handle_output(build_output_context(run_id="run-a", step_key="g.download", name="result"), staged)

    assert sorted(p.name for p in (tmp_path / "run-a").iterdir()) == [
        "g.download.result.json",
        "g.download.result.parquet",
    ]
    assert json.loads((tmp_path / "run-a" / "g.download.result.json").read_text()) == {
        "rows": 24,
        "notes": {"empty_partitions": ["2024-03-02|BTCUSDT (no data)"], "http_requests": 1},
    }
    # A write step of another run (re-execution from failure) loads what run-a downloaded.
    upstream = build_output_context(run_id="run-a", step_key="g.download", name="result")
    loaded = manager.load_input(build_input_context(upstream_output=upstream))
    assert loaded.notes == staged.notes
    assert loaded.frame.schema == staged.frame.schema
    assert loaded.frame.equals(staged.frame)


def test_staging_refuses_a_parquet_file_that_does_not_match_its_sidecar(tmp_path):
    manager = StagingIOManager(root=str(tmp_path))
    context = build_output_context(run_id="run-a", step_key="g.download", name="result")
    manager.handle_output(context, StagedFrame(_frame(), {}))
    _frame().head(3).write_parquet(tmp_path / "run-a" / "g.download.result.parquet")
    with pytest.raises(OSError, match="holds 3 rows, its sidecar says 24"):
        manager.load_input(build_input_context(upstream_output=context))


def test_staging_prunes_run_folders_older_than_the_retention(tmp_path):
    old, recent = tmp_path / "old-run", tmp_path / "recent-run"
    for folder, age_days in ((old, 8), (recent, 6)):
        folder.mkdir()
        (folder / "x.parquet").write_bytes(b"")
        stamp = dt.datetime.now().timestamp() - age_days * 86400
        os.utime(folder, (stamp, stamp))
    StagingIOManager(root=str(tmp_path), retention_days=7).handle_output(
        build_output_context(run_id="new-run", step_key="g.download", name="result"), StagedFrame(_frame(), {})
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new-run", "recent-run"]


def _run(tmp_path, steps, instance):
    binance = BinanceClient(max_retries=0).with_transport(ScriptedBinance(steps).transport)
    return materialize(
        [bronze_klines],
        instance=instance,
        partition_key=f"{DAY}|BTCUSDT",
        resources={
            "io_manager": CryptoLakeDuckDBIOManager(database=str(tmp_path / "lake.duckdb")),
            "binance": binance,
            "binance_archive": BinanceArchiveClient(enabled=False),
        },
        raise_on_error=False,
    )


def _events(instance, run_id, step_key):
    return [e.dagster_event_type for e in instance.all_logs(run_id) if e.step_key == step_key]


def test_an_invalid_symbol_fails_the_download_once_and_writes_nothing(tmp_path):
    with DagsterInstance.ephemeral() as instance:
        result = _run(tmp_path, [binance_error(400, -1121, "Invalid symbol.")], instance)
        download = _events(instance, result.run_id, DOWNLOAD_STEP)
        write = _events(instance, result.run_id, WRITE_STEP)
    assert not result.success
    assert download.count(DagsterEventType.STEP_START) == 1
    assert DagsterEventType.STEP_UP_FOR_RETRY not in download
    assert download.count(DagsterEventType.STEP_FAILURE) == 1
    assert DagsterEventType.STEP_START not in write
    assert not (tmp_path / "lake.duckdb").exists()


@pytest.mark.slow  # the policy's first retry waits 30 s ± 50 %
def test_a_503_is_retried_by_the_policy_and_the_day_is_written_once(tmp_path):
    with DagsterInstance.ephemeral() as instance:
        result = _run(tmp_path, [binance_error(503, -1001, "Service unavailable"), klines_server(ROWS)], instance)
        download = _events(instance, result.run_id, DOWNLOAD_STEP)
        write = _events(instance, result.run_id, WRITE_STEP)
        [materialization] = result.asset_materializations_for_node("bronze__klines")
    assert result.success
    assert download.count(DagsterEventType.STEP_UP_FOR_RETRY) == 1
    assert download.count(DagsterEventType.STEP_RESTARTED) == 1
    assert write.count(DagsterEventType.STEP_START) == 1
    with duckdb.connect(str(tmp_path / "lake.duckdb"), read_only=True) as connection:
        stored = connection.execute("select open_time, close from bronze.klines order by open_time").fetchall()
    assert stored == [(row[0], row[4]) for row in ROWS]
    assert materialization.metadata["rows"].value == 24
    assert materialization.metadata["http_requests"].value == 2
