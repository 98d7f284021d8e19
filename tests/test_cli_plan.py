"""`cryptolake backfill` run planning: as few rectangular runs as memory allows."""

import datetime as dt

import click
import pytest

from cryptolake_assets import cli
from cryptolake_assets.cli import RunChunk, plan_runs

ALL = ["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT"]
D = dt.date


def test_contiguous_symbols_share_one_run_per_day_chunk(monkeypatch):
    monkeypatch.setattr(cli, "ROWS_PER_RUN", 24 * 3 * 10)  # 10 days of 3 hourly symbols per run
    chunks = plan_runs(D(2024, 1, 1), D(2024, 1, 25), ["BBBUSDT", "AAAUSDT", "CCCUSDT"], ALL, bars_per_day=24)
    assert chunks == [
        RunChunk(D(2024, 1, 1), D(2024, 1, 10), ("AAAUSDT", "BBBUSDT", "CCCUSDT")),
        RunChunk(D(2024, 1, 11), D(2024, 1, 20), ("AAAUSDT", "BBBUSDT", "CCCUSDT")),
        RunChunk(D(2024, 1, 21), D(2024, 1, 25), ("AAAUSDT", "BBBUSDT", "CCCUSDT")),
    ]
    assert sum(c.days for c in chunks) == 25


def test_non_contiguous_symbols_split_into_blocks():
    chunks = plan_runs(D(2024, 1, 1), D(2024, 12, 31), ["DDDUSDT", "AAAUSDT"], ALL, bars_per_day=24)
    assert chunks == [
        RunChunk(D(2024, 1, 1), D(2024, 12, 31), ("AAAUSDT",)),
        RunChunk(D(2024, 1, 1), D(2024, 12, 31), ("DDDUSDT",)),
    ]


def test_two_years_hourly_whole_universe_is_one_run():
    symbols = [f"S{i:02d}USDT" for i in range(35)]
    chunks = plan_runs(D(2023, 1, 1), D(2024, 12, 31), symbols, symbols, bars_per_day=24)
    assert len(chunks) == 1 and chunks[0].days == 731


def test_bad_input_is_a_clear_error():
    with pytest.raises(click.BadParameter, match="unknown symbol.*XYZUSDT"):
        plan_runs(D(2024, 1, 1), D(2024, 1, 2), ["XYZUSDT"], ALL, bars_per_day=24)
    with pytest.raises(click.BadParameter, match="before --start"):
        plan_runs(D(2024, 1, 2), D(2024, 1, 1), ["AAAUSDT"], ALL, bars_per_day=24)


def test_a_backfill_of_another_interval_is_refused_before_any_run(tmp_path):
    import duckdb

    path = str(tmp_path / "lake.duckdb")
    cli.refuse_other_interval(path, "1m")  # no file yet: nothing to refuse
    with duckdb.connect(path) as connection:
        connection.execute("create schema bronze; create table bronze.klines as select '1h' as interval")
    cli.refuse_other_interval(path, "1h")
    with pytest.raises(
        click.ClickException, match=r"holds 1h klines; CRYPTOLAKE_INTERVAL=1m would mix intervals.*--interval 1h"
    ):
        cli.refuse_other_interval(path, "1m")


def test_workers_cut_each_block_into_contiguous_sub_blocks_of_near_equal_size():
    symbols = [f"S{i}USDT" for i in range(5)]
    chunks = plan_runs(D(2024, 1, 1), D(2024, 1, 31), symbols, symbols, bars_per_day=24, workers=2)
    assert chunks == [
        RunChunk(D(2024, 1, 1), D(2024, 1, 31), ("S0USDT", "S1USDT", "S2USDT")),
        RunChunk(D(2024, 1, 1), D(2024, 1, 31), ("S3USDT", "S4USDT")),
    ]
    one = plan_runs(D(2024, 1, 1), D(2024, 1, 31), ["S2USDT"], symbols, bars_per_day=24, workers=2)
    assert one == [RunChunk(D(2024, 1, 1), D(2024, 1, 31), ("S2USDT",))]  # a lone symbol is not split


def test_worker_queues_keep_a_block_with_one_worker_and_balance_partitions(monkeypatch):
    monkeypatch.setattr(cli, "ROWS_PER_RUN", 24 * 2 * 10)  # 10 days of 2 hourly symbols per run
    symbols = [f"S{i}USDT" for i in range(4)]
    chunks = plan_runs(D(2024, 1, 1), D(2024, 1, 15), symbols, symbols, bars_per_day=24, workers=2)
    queues = cli._worker_queues(chunks, 2)
    assert [[(c.first_day.day, c.last_day.day, c.symbols) for c in q] for q in queues] == [
        [(1, 10, ("S0USDT", "S1USDT")), (11, 15, ("S0USDT", "S1USDT"))],
        [(1, 10, ("S2USDT", "S3USDT")), (11, 15, ("S2USDT", "S3USDT"))],
    ]
    assert cli._worker_queues(chunks, 1) == [chunks]
    assert chunks[0].range_tags() == {
        "dagster/asset_partition_range_start": "2024-01-01|S0USDT",
        "dagster/asset_partition_range_end": "2024-01-10|S1USDT",
    }
