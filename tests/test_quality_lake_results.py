"""Check results published to the lake (quality/check_results): the latest outcome of every
(asset, check, partition), replaced by a re-run and never duplicated, on the single-partition,
small-range and large-range paths alike."""

import datetime as dt
import json

import polars as pl
import pytest
from dagster import DagsterInstance, materialize
from test_quality_pipeline import BAD, DAY, GOOD, SILVER_BY_PARTITION, _bars, stub_silver

from cryptolake_assets.quality.catalog import SILVER_OHLCV
from cryptolake_assets.quality.factory import PER_PARTITION_RESULTS_MAX, build_table_checks
from cryptolake_assets.quality.lake_results import replace_predicate
from resources.binance import BinanceClient
from resources.dagster_internals import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from resources.duckdb_io import CryptoLakeDuckDBIOManager
from resources.lake import DeltaLake

CHECKS = [rule.name for rule in SILVER_OHLCV.rules]
assert len(CHECKS) == 11


def _run(tmp_path, first: str, last: str, instance) -> bool:
    resources = {
        "io_manager": CryptoLakeDuckDBIOManager(
            database=str(tmp_path / "c.duckdb"), lake=DeltaLake(root=str(tmp_path / "lake"))
        ),
        "binance": BinanceClient(source="simulated", simulation_seed=7),
    }
    tags = {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}
    result = materialize(
        [stub_silver, build_table_checks(SILVER_OHLCV)],
        resources=resources,
        tags=tags,
        instance=instance,
        raise_on_error=False,
    )
    return result.success


def _results(tmp_path) -> pl.DataFrame:
    return pl.read_delta(str(tmp_path / "lake" / "quality" / "check_results")).sort("date", "symbol", "check_name")


def _failing(results: pl.DataFrame) -> set[tuple[str, str, str, int]]:
    rows = results.filter(~pl.col("passed")).select("date", "symbol", "check_name", "failing_rows").iter_rows()
    return {(f"{d}|{s}", c, f"{n}") for d, s, c, n in rows}


def test_a_range_run_publishes_every_partition_outcome_and_a_rerun_replaces_it(tmp_path, monkeypatch):
    instance = DagsterInstance.ephemeral()
    assert not _run(tmp_path, BAD, GOOD, instance)  # BTCUSDT's duplicate bar fails a blocking check
    results = _results(tmp_path)
    assert results.height == 2 * 11
    assert set(results["asset"]) == {"silver/ohlcv"} and set(results["layer"]) == {"silver"}
    assert set(results["run_id"].unique()) == {instance.get_runs()[0].run_id}
    # BTCUSDT repeats its 07:00 bar (ERROR, 2 rows); ETHUSDT misses its 05:00 bar (WARN, 1 slot).
    assert _failing(results) == {(BAD, "unique_symbol_open_time", "2"), (GOOD, "complete_bars", "1")}
    duplicate = results.filter(
        (pl.col("symbol") == "BTCUSDT") & (pl.col("check_name") == "unique_symbol_open_time")
    ).row(0, named=True)
    assert (duplicate["severity"], duplicate["rows_checked"]) == ("ERROR", 25)
    assert [row["open_time"] for row in json.loads(duplicate["sample"])] == ["2024-01-15T07:00:00+00:00"] * 2
    assert duplicate["description"].startswith("2 failing row(s): Exactly one bar per (symbol, open_time)")
    missing = results.filter((pl.col("symbol") == "ETHUSDT") & (pl.col("check_name") == "complete_bars")).row(
        0, named=True
    )
    assert json.loads(missing["sample"]) == [
        {"date": "2024-01-15", "symbol": "ETHUSDT", "missing_open_time": "2024-01-15T05:00:00+00:00"}
    ]
    assert results.filter(pl.col("passed"))["sample"].is_null().all()

    # ETHUSDT's missing bar arrives: re-checking that partition alone replaces its rows only.
    monkeypatch.setitem(SILVER_BY_PARTITION, GOOD, _bars("ETHUSDT", range(24)))
    assert _run(tmp_path, GOOD, GOOD, instance)
    again = _results(tmp_path)
    assert again.height == 2 * 11  # no duplicates
    assert _failing(again) == {(BAD, "unique_symbol_open_time", "2")}
    assert again.filter(pl.col("symbol") == "BTCUSDT").equals(results.filter(pl.col("symbol") == "BTCUSDT"))


def test_a_large_range_records_each_partitions_own_outcome(tmp_path):
    days = [DAY - dt.timedelta(days=i) for i in range(16)][::-1]  # 16 days x 3 symbols > the per-partition limit
    assert 16 * 3 > PER_PARTITION_RESULTS_MAX
    assert not _run(tmp_path, f"{days[0]}|BTCUSDT", f"{days[-1]}|SOLUSDT", DagsterInstance.ephemeral())
    results = _results(tmp_path)
    assert results.height == 16 * 3 * 11
    assert _failing(results) == {(BAD, "unique_symbol_open_time", "2"), (GOOD, "complete_bars", "1")}
    per_partition = results.group_by("date", "symbol").agg(pl.col("rows_checked").unique())
    expected = {(DAY, "BTCUSDT"): [25], (DAY, "ETHUSDT"): [23]}
    for day, symbol, rows in per_partition.iter_rows():
        assert rows == expected.get((day, symbol), [24]), (day, symbol)


@pytest.mark.parametrize(
    ("partitions", "expected"),
    [
        (
            ["2024-01-15|BTCUSDT", "2024-01-16|ETHUSDT"],
            "(asset = 'silver/ohlcv') AND (check_name IN ('schema', 'complete_bars')) AND "
            "(month >= '2024-01-01' AND month <= '2024-01-01') AND "
            "(date >= '2024-01-15' AND date <= '2024-01-16') AND (symbol IN ('BTCUSDT', 'ETHUSDT'))",
        ),
        ([], "(asset = 'silver/ohlcv') AND (check_name IN ('schema', 'complete_bars'))"),
    ],
)
def test_a_check_step_replaces_its_asset_checks_and_partitions(partitions, expected):
    assert replace_predicate(SILVER_OHLCV, ["schema", "complete_bars"], partitions) == expected


def test_the_table_is_partitioned_by_month_and_crowded_months_are_compacted(tmp_path):
    """One file per check step and month at most MAX_FILES_PER_PARTITION deep: the table a new day
    opens some 80 times stays small (ADR 0005), and compaction changes no row."""
    from deltalake import DeltaTable

    from resources.lake import MAX_FILES_PER_PARTITION

    instance = DagsterInstance.ephemeral()
    for _ in range(MAX_FILES_PER_PARTITION + 2):  # each re-run replaces its rows: one file more a month
        assert not _run(tmp_path, f"{DAY}|BTCUSDT", f"{DAY}|ETHUSDT", instance)  # BAD fails its checks
    table = DeltaTable(str(tmp_path / "lake" / "quality" / "check_results"))
    assert table.metadata().partition_columns == ["month"]
    assert 1 <= len(table.file_uris()) <= MAX_FILES_PER_PARTITION
    results = _results(tmp_path)
    assert results["month"].unique().to_list() == [DAY.replace(day=1)]
    # Still one row per (partition, check): BTC and ETH, 11 checks each.
    assert results.height == 2 * len(CHECKS)
    assert results.select("date", "symbol", "check_name").is_duplicated().sum() == 0


def test_a_lake_written_before_month_partitioning_keeps_working(tmp_path):
    """A check_results table partitioned by day (before the month column) gains the column and is
    still replaced, not appended to, by a re-run."""
    from deltalake import DeltaTable, write_deltalake

    _run(tmp_path, f"{DAY}|BTCUSDT", f"{DAY}|ETHUSDT", DagsterInstance.ephemeral())
    uri = str(tmp_path / "lake" / "quality" / "check_results")
    old = _results(tmp_path).drop("month")
    write_deltalake(uri, old.to_arrow(), mode="overwrite", partition_by=["date"], schema_mode="overwrite")
    assert DeltaTable(uri).metadata().partition_columns == ["date"]
    _run(tmp_path, f"{DAY}|BTCUSDT", f"{DAY}|ETHUSDT", DagsterInstance.ephemeral())
    results = _results(tmp_path)
    assert results.height == old.height == 2 * len(CHECKS)
    assert results["month"].null_count() == 0  # every row was replaced by the re-run
