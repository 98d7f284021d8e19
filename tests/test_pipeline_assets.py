"""bronze/klines → silver/ohlcv through Dagster into a temporary DuckDB, from the simulated exchange.

Covers what a backfill relies on: exact row counts (checked against the simulated market itself),
idempotent re-runs, a range run equal to single-partition runs, a real DATE column, an exchange
outage counted as missing bars (never filled), and a not-yet-listed symbol as an empty partition.
"""

import datetime as dt

import polars as pl
import pytest
from dagster import AssetKey, materialize

from cryptolake_assets.bronze.klines import bronze_klines
from cryptolake_assets.silver.ohlcv import silver_ohlcv
from resources.binance import BinanceClient
from resources.binance_archive import BinanceArchiveClient
from resources.dagster_internals import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from resources.duckdb_io import CryptoLakeDuckDBIOManager, connect_duckdb
from resources.simulated.market import SimulatedMarket, day_index, outage_window

SEED = 7
SYMBOLS = ("BTCUSDT", "ETHUSDT")
ASSETS = [bronze_klines, silver_ohlcv]


def _outage_day() -> dt.date:
    day = dt.date(2024, 1, 1)
    while outage_window(SEED, day_index(day)) is None:
        day += dt.timedelta(days=1)
    return day


OUTAGE_DAY = _outage_day()
FIRST, LAST = OUTAGE_DAY - dt.timedelta(days=1), OUTAGE_DAY + dt.timedelta(days=1)
DAYS = [FIRST + dt.timedelta(days=i) for i in range(3)]


def _ms(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC).timestamp() * 1000)


def _expected_rows(symbol: str) -> int:
    rows = SimulatedMarket(seed=SEED).klines(symbol, "1h", _ms(FIRST), _ms(LAST + dt.timedelta(days=1)))
    return len(rows)


def _resources(path) -> dict:
    return {
        "io_manager": CryptoLakeDuckDBIOManager(database=str(path)),
        "binance": BinanceClient(source="simulated", simulation_seed=SEED),
        "binance_archive": BinanceArchiveClient(source="simulated"),
    }


def _range_tags(first: dt.date, last: dt.date, symbols=SYMBOLS) -> dict[str, str]:
    return {
        ASSET_PARTITION_RANGE_START_TAG: f"{first}|{symbols[0]}",
        ASSET_PARTITION_RANGE_END_TAG: f"{last}|{symbols[-1]}",
    }


def _read(path, table: str, drop: tuple[str, ...] = ()) -> pl.DataFrame:
    with connect_duckdb(str(path), read_only=True) as con:
        frame = con.sql(f"select * from {table} order by symbol, open_time").pl()
    return frame.drop(list(drop))


@pytest.fixture(scope="module")
def range_lake(tmp_path_factory):
    path = tmp_path_factory.mktemp("range") / "lake.duckdb"
    result = materialize(ASSETS, resources=_resources(path), tags=_range_tags(FIRST, LAST))
    assert result.success
    return path, result


def test_range_run_writes_every_simulated_bar_once(range_lake):
    path, result = range_lake
    bronze = _read(path, "bronze.klines")
    silver = _read(path, "silver.ohlcv")
    for symbol in SYMBOLS:
        expected = _expected_rows(symbol)
        assert bronze.filter(pl.col("symbol") == symbol).height == expected
        assert silver.filter(pl.col("symbol") == symbol).height == expected
    assert silver.select(pl.struct("symbol", "open_time").is_unique().all()).item()
    assert sorted(silver["date"].unique().to_list()) == DAYS
    with connect_duckdb(str(path), read_only=True) as con:
        types = dict(
            con.sql(
                "select column_name, data_type from information_schema.columns where table_name = 'ohlcv'"
            ).fetchall()
        )
    assert types["date"] == "DATE" and types["open_time"] == "TIMESTAMP WITH TIME ZONE"


def test_outage_is_counted_as_missing_bars_not_filled(range_lake):
    path, result = range_lake
    start_minute, end_minute = outage_window(SEED, day_index(OUTAGE_DAY))
    lost_hours = len({m // 60 for m in range(start_minute, end_minute)})
    silver = _read(path, "silver.ohlcv").filter(pl.col("date") == OUTAGE_DAY)
    for symbol in SYMBOLS:
        assert silver.filter(pl.col("symbol") == symbol).height == 24 - lost_hours
    materialization = result.asset_materializations_for_node("silver_ohlcv")
    # Each partition of the range run carries its own figures, not the run's totals.
    ohlcv = {m.partition: m.metadata for m in materialization if m.asset_key == AssetKey(["silver", "ohlcv"])}
    assert len(ohlcv) == len(DAYS) * len(SYMBOLS)
    for key, metadata in ohlcv.items():
        day, symbol = dt.date.fromisoformat(key.keys_by_dimension["date"]), key.keys_by_dimension["symbol"]
        lost = lost_hours if day == OUTAGE_DAY else 0
        assert metadata["missing_bars"].value == lost and metadata["partitions_with_gaps"].value == int(lost > 0), key
        assert metadata["expected_bars"].value == 24 and metadata["partitions"].value == 1
        stored = silver.height // 2 if day == OUTAGE_DAY else 24
        assert metadata["rows"].value == metadata["dagster/partition_row_count"].value == stored, key
    if start_minute >= 60:  # a gap inside the day is flagged on the bar after it
        assert silver["gap_before"].sum() == 2 * lost_hours


def test_rerun_is_idempotent_and_equals_single_partition_runs(range_lake, tmp_path):
    path, _ = range_lake
    before_bronze = _read(path, "bronze.klines", drop=("ingested_at",))
    before_silver = _read(path, "silver.ohlcv")
    assert materialize(ASSETS, resources=_resources(path), tags=_range_tags(FIRST, LAST)).success
    assert _read(path, "bronze.klines", drop=("ingested_at",)).equals(before_bronze)
    assert _read(path, "silver.ohlcv").equals(before_silver)

    single = tmp_path / "single.duckdb"
    for day in DAYS:
        for symbol in SYMBOLS:
            assert materialize(ASSETS, resources=_resources(single), partition_key=f"{day}|{symbol}").success
    assert _read(single, "silver.ohlcv").equals(before_silver)
    assert _read(single, "bronze.klines", drop=("ingested_at",)).equals(before_bronze)


def test_symbol_before_listing_is_an_empty_partition(tmp_path):
    path = tmp_path / "lake.duckdb"
    result = materialize(ASSETS, resources=_resources(path), partition_key="2024-03-01|TAOUSDT")  # listed 2024-04-11
    assert result.success
    bronze = next(m for m in result.asset_materializations_for_node("bronze__klines"))
    assert bronze.metadata["rows"].value == 0
    assert bronze.metadata["empty_partitions"].value == 1
    assert "2024-03-01|TAOUSDT (not listed)" in bronze.metadata["empty_partition_examples"].value
    assert _read(path, "silver.ohlcv").height == 0


def test_range_run_row_counts_are_per_partition_and_the_digest_sums_them(tmp_path):
    """3 days × 2 symbols: each silver partition records its own bars; the digest adds them up once."""
    from dagster import DagsterInstance

    from cryptolake_assets.sensors.digest import build_digest

    path = tmp_path / "lake.duckdb"
    instance = DagsterInstance.ephemeral()
    since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    result = materialize(ASSETS, resources=_resources(path), tags=_range_tags(FIRST, LAST), instance=instance)
    assert result.success
    silver = _read(path, "silver.ohlcv")
    counts = {(str(d), s): n for d, s, n in silver.group_by("date", "symbol").len().iter_rows()}
    recorded = {
        (m.partition.keys_by_dimension["date"], m.partition.keys_by_dimension["symbol"]): m.metadata
        for m in result.asset_materializations_for_node("silver_ohlcv")
        if m.asset_key == AssetKey(["silver", "ohlcv"])
    }
    assert {k: v["rows"].value for k, v in recorded.items()} == counts
    assert {v["dagster/row_count"].value for v in recorded.values()} == {silver.height}  # the table, for the UI
    digest = build_digest(
        instance, [AssetKey(["silver", "ohlcv"])], [], since, dt.datetime.now(dt.UTC), stale=[], open_problems=0
    )
    assert f"6 partitions, {silver.height:,} rows" in digest.text


def test_range_run_events_carry_only_per_partition_figures(tmp_path):
    """A range run's partition events hold figures true for that partition: the run's HTTP requests,
    source and examples go to its log, previews are left out (issue 17: event log per partition)."""
    from dagster import DagsterInstance

    path = tmp_path / "lake.duckdb"
    instance = DagsterInstance.ephemeral()
    result = materialize(ASSETS, resources=_resources(path), tags=_range_tags(FIRST, LAST), instance=instance)
    assert result.success
    events = list(result.asset_materializations_for_node("bronze__klines"))
    assert len(events) == len(DAYS) * len(SYMBOLS)
    bronze = _read(path, "bronze.klines")
    for event in events:
        key = event.partition.keys_by_dimension
        rows = bronze.filter(
            (pl.col("date") == dt.date.fromisoformat(key["date"])) & (pl.col("symbol") == key["symbol"])
        )
        assert event.metadata["rows"].value == rows.height
        assert event.metadata["partitions"].value == 1
        run_wide = {"http_requests", "used_weight_1m", "source", "interval", "symbols", "empty_partition_examples"}
        assert not run_wide & set(event.metadata), event.metadata.keys()
        assert not {"preview", "previews"} & set(event.metadata)
        assert "dagster/table_name" not in event.metadata  # declared once on the asset instead
    spec = next(iter(bronze_klines.specs))
    assert spec.metadata["dagster/table_name"] == "bronze.klines"
    logged = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert any(f"{len(DAYS)} days) × {len(SYMBOLS)} symbol(s)" in m and "HTTP requests" in m for m in logged)
