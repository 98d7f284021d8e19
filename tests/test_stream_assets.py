"""The live stream's Dagster side: landing files → bronze/trades (+ quotes, quarantine) → silver/bars_1s →
gold/bars_1m and the daily Parquet compaction, with their checks, in real Dagster runs; the landing
sensor; the definitions (own job, kline jobs unchanged); and ``cryptolake collect --duration 5
--materialize`` against the simulated server filling all three tables."""

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterEventType, DagsterInstance, build_sensor_context, materialize

from cryptolake_assets.bronze.trades import bronze_trades, trades_compacted
from cryptolake_assets.gold.bars_1m import bars_1m
from cryptolake_assets.quality.catalog import MEDALLION_CHECKS
from cryptolake_assets.sensors.landing import STREAM_LANDING_SENSOR_NAME, landing_requests, stream_landing_sensor
from cryptolake_assets.silver.bars import build_bars_1m, build_bars_1s
from cryptolake_assets.silver.bars_1s import bars_1s
from partitions import daily_symbol_partitions
from resources.dagster_internals import ASSET_PARTITION_RANGE_END_TAG as RANGE_END
from resources.dagster_internals import ASSET_PARTITION_RANGE_START_TAG as RANGE_START
from resources.duckdb_io import CryptoLakeDuckDBIOManager
from resources.landing import LandingWriter, StreamLanding
from resources.simulated.trade_tape import book_ticker_message, tape_for, trade_message

PROJECT = Path(__file__).resolve().parents[1]
DAY = dt.date(2024, 5, 1)
MIDNIGHT = int(dt.datetime(2024, 5, 2, tzinfo=dt.UTC).timestamp() * 1000)
STREAM_KEYS = {
    AssetKey(["bronze", "trades"]),
    AssetKey(["bronze", "quotes"]),
    AssetKey(["bronze", "trades_quarantine"]),
    AssetKey(["bronze", "trades_compacted"]),
    AssetKey(["silver", "bars_1s"]),
    AssetKey(["gold", "bars_1m"]),
}


def land_last_minutes(root: Path) -> list:
    """The last 90 s of 2024-05-01 and first 30 s of 05-02 of BTCUSDT as the collector lands them
    (receive time = trade time + 40 ms, so trades of 23:59:59.96+ land in the next day's first file),
    plus one malformed message. Returns the tape's trades of May 1 in that window."""
    tape = tape_for("BTCUSDT")
    writer = LandingWriter(root, rotate_seconds=60)
    first, last = tape.last_id_at(MIDNIGHT - 90_000) + 1, tape.last_id_at(MIDNIGHT + 30_000)
    for trade in tape.trades(first, last):
        recv = trade.time + 40
        writer.write_message("BTCUSDT", recv, trade_message("BTCUSDT", trade, trade.time + 1), is_json=True)
        writer.write_message("BTCUSDT", recv, book_ticker_message("BTCUSDT", trade), is_json=True)
        if trade.id == first + 10:
            writer.write_message("BTCUSDT", recv, '{"stream":"btcusdt@trade","data":{"e":"tr', is_json=False)
    writer.close_all()
    return [t for t in tape.trades(first, last) if t.time < MIDNIGHT]


@pytest.fixture(scope="module")
def stream_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("stream")
    expected = land_last_minutes(base / "landing")
    resources = {
        "io_manager": CryptoLakeDuckDBIOManager(database=str(base / "lake.duckdb")),
        "stream_landing": StreamLanding(root=str(base / "landing"), compacted_root=str(base / "compacted")),
    }
    checks = [c for c in MEDALLION_CHECKS if {k.asset_key for k in c.check_keys} <= STREAM_KEYS]
    instance = DagsterInstance.ephemeral()
    result = materialize(
        [bronze_trades, trades_compacted, bars_1s, bars_1m, *checks],
        resources=resources,
        instance=instance,
        partition_key=f"{DAY}|BTCUSDT",
    )
    return base, expected, result, instance


def _table(base: Path, name: str) -> pl.DataFrame:
    with duckdb.connect(str(base / "lake.duckdb"), read_only=True) as connection:
        return connection.sql(f"select * from {name}").pl()


def test_the_stream_tables_hold_the_days_trades_once_and_the_bars_built_from_them(stream_run):
    base, expected, result, _ = stream_run
    assert result.success
    trades = _table(base, "bronze.trades").sort("trade_id")
    assert trades["trade_id"].to_list() == [t.id for t in expected]  # the late ones from 05-02's file too
    assert trades["price"].to_list() == [t.price for t in expected] and set(trades["date"]) == {DAY}
    quarantine = _table(base, "bronze.trades_quarantine")
    assert quarantine.select("line", "reason").to_dicts() == [{"line": 23, "reason": "message is not JSON"}]
    quotes = _table(base, "bronze.quotes")
    bars = (
        _table(base, "silver.bars_1s")
        .with_columns(pl.col("window_start").dt.convert_time_zone("UTC"))
        .sort("window_start")
    )
    assert bars.equals(build_bars_1s(trades, quotes))
    minutes = (
        _table(base, "gold.bars_1m")
        .with_columns(pl.col("window_start").dt.convert_time_zone("UTC"))
        .sort("window_start")
    )
    assert minutes.equals(build_bars_1m(bars)) and len(minutes) == 2


def test_every_check_of_the_stream_tables_ran_and_passed(stream_run):
    _, _, result, _ = stream_run
    evaluations = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    checked = {(e.asset_key.to_user_string(), e.check_name) for e in evaluations}
    assert {a for a, _ in checked} == {"bronze/trades", "silver/bars_1s", "gold/bars_1m"} and len(checked) == 15
    assert [(e.asset_key.to_user_string(), e.check_name) for e in evaluations if not e.passed] == []


def test_compaction_writes_one_parquet_file_with_its_sha256(stream_run):
    base, expected, _, instance = stream_run
    path = base / "compacted" / "trades" / f"date={DAY}" / "BTCUSDT.parquet"
    event = instance.get_latest_materialization_event(AssetKey(["bronze", "trades_compacted"]))
    metadata = event.asset_materialization.metadata
    assert metadata["sha256"].value == hashlib.sha256(path.read_bytes()).hexdigest()
    assert metadata["rows"].value == len(expected) == len(pl.read_parquet(path))
    assert not list(path.parent.glob("*.tmp"))


def test_the_landing_sensor_requests_each_changed_partition_once_in_blocks_of_neighbours(tmp_path, monkeypatch):
    now = dt.datetime.now(dt.UTC)
    today = now.date()
    writer = LandingWriter(tmp_path, rotate_seconds=60)
    now_ms = int(now.timestamp() * 1000)
    for symbol in ("BTCUSDT", "ETHUSDT", "XRPUSDT", "NOTASYMBOL"):
        writer.write(symbol, now_ms - 120_000, '{"recv_ms":1}')
    writer.close_all()
    writer.write("BTCUSDT", now_ms, '{"recv_ms":1}')  # still open: not a reason to run

    requests, cursor = landing_requests(tmp_path, now, None)
    order = daily_symbol_partitions.get_partitions_def_for_dimension("symbol").get_partition_keys()
    assert order.index("ETHUSDT") == order.index("BTCUSDT") + 1 and order.index("XRPUSDT") < order.index("BTCUSDT") - 1
    ranges = sorted(((r.partition_key, r.tags.get(RANGE_START), r.tags.get(RANGE_END)) for r in requests), key=str)
    assert ranges == sorted([(None, f"{today}|BTCUSDT", f"{today}|ETHUSDT"), (f"{today}|XRPUSDT", None, None)], key=str)
    assert landing_requests(tmp_path, now, cursor)[0] == []
    writer.close_all()
    [again], _ = landing_requests(tmp_path, now, cursor)
    assert again.partition_key == f"{today}|BTCUSDT" and again.run_key.startswith(
        f"stream:{today}|BTCUSDT...{today}|BTCUSDT:"
    )

    monkeypatch.setenv("CRYPTOLAKE_LANDING", str(tmp_path))
    result = stream_landing_sensor(build_sensor_context(sensor_name=STREAM_LANDING_SENSOR_NAME))
    assert len(result.run_requests) == 2 and set(json.loads(result.cursor)) == {
        f"{today}|{s}" for s in ("BTCUSDT", "ETHUSDT", "XRPUSDT")
    }


def test_a_range_run_equals_single_partition_runs_and_compacts_each_partition(tmp_path):
    tape = tape_for("ETHUSDT")
    writer = LandingWriter(tmp_path / "landing", rotate_seconds=60)
    for symbol in ("BTCUSDT", "ETHUSDT"):
        tape = tape_for(symbol)
        for trade in tape.trades(tape.last_id_at(MIDNIGHT - 30_000) + 1, tape.last_id_at(MIDNIGHT - 1)):
            writer.write_message(symbol, trade.time + 5, trade_message(symbol, trade, trade.time), is_json=True)
            writer.write_message(symbol, trade.time + 5, book_ticker_message(symbol, trade), is_json=True)
    writer.close_all()
    assets = [bronze_trades, trades_compacted, bars_1s, bars_1m]
    tables = {}
    for name, runs in {
        "range": [{RANGE_START: f"{DAY}|BTCUSDT", RANGE_END: f"{DAY}|ETHUSDT"}],
        "single": [None, None],
    }.items():
        resources = {
            "io_manager": CryptoLakeDuckDBIOManager(database=str(tmp_path / f"{name}.duckdb")),
            "stream_landing": StreamLanding(root=str(tmp_path / "landing"), compacted_root=str(tmp_path / name)),
        }
        instance = DagsterInstance.ephemeral()
        for tags, symbol in zip(runs, ("BTCUSDT", "ETHUSDT")):
            key = None if tags else f"{DAY}|{symbol}"
            assert materialize(
                assets, resources=resources, instance=instance, tags=tags or {}, partition_key=key
            ).success
        with duckdb.connect(str(tmp_path / f"{name}.duckdb"), read_only=True) as connection:
            tables[name] = {
                t: connection.sql(f"select * from {t} order by all").pl()
                for t in ("bronze.trades", "silver.bars_1s", "gold.bars_1m")
            }
        for symbol in ("BTCUSDT", "ETHUSDT"):
            path = tmp_path / name / "trades" / f"date={DAY}" / f"{symbol}.parquet"
            [record] = instance.fetch_materializations(
                AssetRecordsFilter(
                    asset_key=AssetKey(["bronze", "trades_compacted"]), asset_partitions=[f"{DAY}|{symbol}"]
                ),
                limit=1,
            ).records
            metadata = record.asset_materialization.metadata
            assert (
                metadata["sha256"].value == hashlib.sha256(path.read_bytes()).hexdigest() and metadata["rows"].value > 0
            )
    for table in tables["range"]:
        assert tables["range"][table].equals(tables["single"][table]) and len(tables["range"][table]) > 0


def test_definitions_hold_the_stream_job_and_sensor_and_the_kline_jobs_leave_them_out():
    from cryptolake_assets.definitions import defs

    stream = defs.resolve_job_def("stream_assets").asset_layer.selected_asset_keys
    assert stream == STREAM_KEYS
    assert not stream & defs.resolve_job_def("daily_symbol_assets").asset_layer.selected_asset_keys
    assert AssetKey(["bronze", "klines"]) in defs.resolve_job_def("daily_symbol_assets").asset_layer.selected_asset_keys
    assert defs.resolve_sensor_def(STREAM_LANDING_SENSOR_NAME).job_name == "stream_assets"
    assert "stream_landing" in defs.resources


@pytest.mark.slow  # a CLI subprocess: 5 s of collection, then a Dagster run (~12 s)
def test_collect_materialize_fills_all_three_tables_from_the_simulated_server(tmp_path, monkeypatch):
    env = {
        **os.environ,
        "CRYPTOLAKE_SOURCE": "simulated",
        "CRYPTOLAKE_LANDING": str(tmp_path / "landing"),
        "CRYPTOLAKE_LANDING_ROTATE_SECONDS": "2",
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "CRYPTOLAKE_DUCKDB": str(tmp_path / "lake.duckdb"),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cryptolake_assets.cli",
            "collect",
            "--symbols",
            "BTCUSDT,ETHUSDT",
            "--duration",
            "5",
            "--materialize",
        ],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    counts = {}
    with duckdb.connect(str(tmp_path / "lake.duckdb"), read_only=True) as connection:
        for table in ("bronze.trades", "silver.bars_1s", "gold.bars_1m"):
            counts[table] = dict(connection.sql(f"select symbol, count(*) from {table} group by 1").fetchall())
    assert {table: sorted(by_symbol) for table, by_symbol in counts.items()} == {
        t: ["BTCUSDT", "ETHUSDT"] for t in counts
    }
    assert all(n > 0 for by_symbol in counts.values() for n in by_symbol.values())
    assert "gold.bars_1m" in done.stdout and "closed files:" in done.stdout
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    instance = DagsterInstance.from_config(str(tmp_path / "dagster_home"))
    runs = instance.get_runs()
    assert len(runs) == 1 and all(
        run.job_name == "stream_assets" and run.is_success for run in runs
    )  # BTC..ETH: one range run
    evaluations = [
        e.dagster_event.event_specific_data
        for run in runs
        for e in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
    ]
    assert len(evaluations) == 30 and not [
        e.check_name for e in evaluations if not e.passed and e.severity.value == "ERROR"
    ]
