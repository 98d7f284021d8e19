"""The quality checks inside real Dagster runs: a blocking ERROR failure in one partition stops that
partition's gold step while another partition proceeds; WARN failures never block; the quarantine
holds exactly the rows that broke a row rule (queried the way docs/data-quality.md documents); and the
pipeline's own output on the simulated exchange passes every ERROR check.
"""

import datetime as dt
import re
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetKey, BackfillPolicy, DagsterInstance, asset, materialize

from cryptolake_assets.bronze.klines import bronze_klines
from cryptolake_assets.gold.daily_features import daily_features
from cryptolake_assets.quality.catalog import (
    BRONZE_KLINES,
    GOLD_DAILY_FEATURES,
    MEDALLION_CHECKS,
    SILVER_OHLCV,
    SILVER_QUARANTINE,
)
from cryptolake_assets.quality.factory import build_table_checks
from cryptolake_assets.silver.ohlcv import silver_ohlcv
from cryptolake_assets.silver.transform import SILVER_OHLCV_SCHEMA
from partitions import DAILY_SYMBOL_PARTITION_EXPR, daily_symbol_partitions
from resources.binance import BinanceClient
from resources.binance_archive import BinanceArchiveClient
from resources.dagster_internals import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from resources.duckdb_io import CryptoLakeDuckDBIOManager, connect_duckdb
from resources.kline_format import bronze_klines_frame

DAY = dt.date(2024, 1, 15)
DAY_MS = int(dt.datetime.combine(DAY, dt.time(), tzinfo=dt.UTC).timestamp() * 1000)
H = 3_600_000
INGESTED = dt.datetime(2024, 1, 16, 0, 30, tzinfo=dt.UTC)
BAD, GOOD = f"{DAY}|BTCUSDT", f"{DAY}|ETHUSDT"

QUALITY_PAGE = Path(__file__).resolve().parents[1] / "docs" / "data-quality.md"


def documented_quarantine_query() -> str:
    """The documented query listing the quarantined rows of a partition (docs/data-quality.md)."""
    section = QUALITY_PAGE.read_text().split("<!-- section:quality -->")[1].split("<!-- /section:quality -->")[0]
    [query] = re.findall(r"```sql\n(.*?)```", section, flags=re.S)
    return query


def _bars(symbol: str, hours: range, day: dt.date = DAY) -> pl.DataFrame:
    rows = []
    for hour in hours:
        open_time = dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)
        price = 100.0 + hour % 2
        rows.append(
            {
                "date": day,
                "symbol": symbol,
                "interval": "1h",
                "open_time": open_time,
                "close_time": open_time + dt.timedelta(hours=1, milliseconds=-1),
                "open": price,
                "high": price + 1,
                "low": price - 1,
                "close": price,
                "volume": 1.0,
                "quote_volume": price,
                "trades": 3,
                "taker_buy_base_volume": 0.5,
                "taker_buy_quote_volume": price / 2,
                "gap_before": 0,
                "source": "test",
            }
        )
    return pl.DataFrame(rows, schema=SILVER_OHLCV_SCHEMA)


# BTCUSDT repeats a bar (ERROR: unique_symbol_open_time); ETHUSDT misses its 05:00 bar (WARN only).
SILVER_BY_PARTITION = {
    BAD: pl.concat([_bars("BTCUSDT", range(24)), _bars("BTCUSDT", range(7, 8))]),
    GOOD: _bars("ETHUSDT", range(24))
    .filter(pl.col("open_time").dt.hour() != 5)
    .with_columns(gap_before=pl.when(pl.col("open_time").dt.hour() == 6).then(1).otherwise(0).cast(pl.Int32)),
}


@asset(
    key=["silver", "ohlcv"],
    partitions_def=daily_symbol_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    metadata={"partition_expr": DAILY_SYMBOL_PARTITION_EXPR},
)
def stub_silver(context) -> pl.DataFrame:
    """Silver bars from the table above; any other partition gets a clean day (a range run gets all)."""
    frames = []
    for key in map(str, context.partition_keys):
        day, symbol = key.split("|")
        frames.append(SILVER_BY_PARTITION.get(key, _bars(symbol, range(24), dt.date.fromisoformat(day))))
    return pl.concat(frames)


def _evaluations(result) -> dict[tuple[str, str], object]:
    return {
        (e.event_specific_data.asset_key.to_user_string(), e.event_specific_data.check_name): e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def _resources(path) -> dict:
    return {
        "io_manager": CryptoLakeDuckDBIOManager(database=str(path)),
        "binance": BinanceClient(source="simulated", simulation_seed=7),
        "binance_archive": BinanceArchiveClient(source="simulated"),
    }


def _read(path, sql: str, params: list | None = None) -> pl.DataFrame:
    with connect_duckdb(str(path), read_only=True) as con:
        return con.sql(sql, params=params).pl()


def materialize_dimensions(path, instance, days: list[dt.date]) -> None:
    """gold/dim_symbol and gold/dim_date (for ``days``), which the referential checks read."""
    from cryptolake_assets.gold.dim_date import dim_date
    from cryptolake_assets.gold.dim_symbol import dim_symbol

    assert materialize([dim_symbol], resources=_resources(path), instance=instance).success
    for day in days:
        assert materialize([dim_date], partition_key=str(day), resources=_resources(path), instance=instance).success


def test_blocking_error_stops_gold_of_that_partition_only(tmp_path):
    path = tmp_path / "lake.duckdb"
    instance = DagsterInstance.ephemeral()
    materialize_dimensions(path, instance, [DAY])
    assets = [stub_silver, daily_features, build_table_checks(SILVER_OHLCV), build_table_checks(GOLD_DAILY_FEATURES)]
    bad = materialize(assets, partition_key=BAD, resources=_resources(path), instance=instance, raise_on_error=False)
    good = materialize(assets, partition_key=GOOD, resources=_resources(path), instance=instance, raise_on_error=False)

    assert not bad.success
    assert [e.asset_key for e in bad.get_asset_materialization_events()] == [AssetKey(["silver", "ohlcv"])]
    failed = _evaluations(bad)[("silver/ohlcv", "unique_symbol_open_time")]
    assert (failed.passed, failed.partition, failed.blocking, failed.severity.value) == (False, BAD, True, "ERROR")
    assert failed.metadata["failing_rows"].value == 2
    assert "unique_symbol_open_time [ERROR]" in failed.metadata["rule"].value
    sample = failed.metadata["failing_sample"].value
    assert sample.count("2024-01-15 07:00:00+00:00") == 2 and sample.startswith(
        "| date | symbol | interval | open_time"
    )
    others = {
        name: e.passed
        for (key, name), e in _evaluations(bad).items()
        if key == "silver/ohlcv" and name != "unique_symbol_open_time"
    }
    assert others == {name: True for name in others} and len(others) == 10

    assert good.success
    assert {e.asset_key for e in good.get_asset_materialization_events()} == {
        AssetKey(["silver", "ohlcv"]),
        AssetKey(["gold", "daily_features"]),
    }
    warned = _evaluations(good)[("silver/ohlcv", "complete_bars")]
    assert (warned.passed, warned.severity.value, warned.blocking, warned.partition) == (False, "WARN", False, GOOD)
    assert warned.metadata["failing_rows"].value == 1
    assert "2024-01-15 05:00:00+00:00" in warned.metadata["failing_sample"].value
    assert all(e.passed for (key, _), e in _evaluations(good).items() if key == "gold/daily_features")

    gold = _read(path, "SELECT date, symbol, bars FROM gold.daily_features ORDER BY symbol")
    assert gold.rows() == [(DAY, "ETHUSDT", 23)]  # BTCUSDT's gold never ran


def _kline(hour: int, **override) -> list:
    fields = {
        "open_time": DAY_MS + hour * H,
        "open": "100.0",
        "high": "101.0",
        "low": "99.0",
        "close": "100.5",
        "volume": "2.0",
        "close_time": DAY_MS + (hour + 1) * H - 1,
        "quote": "200.0",
        "trades": 5,
        "taker_base": "1.0",
        "taker_quote": "100.0",
        "ignore": "0",
    }
    fields.update(override)
    return list(fields.values())


# Hour 3 closes before it opens, hour 9 is inconsistent (quote volume above high × volume),
# hour 23 was still open at ingestion (INGESTED is 00:30 the next day, so make it close later).
BRONZE_ROWS = [
    _kline(h)
    if h not in (3, 9, 23)
    else _kline(3, close_time=DAY_MS + 3 * H - 1000)
    if h == 3
    else _kline(9, quote="500.0")
    if h == 9
    else _kline(23, close_time=int(INGESTED.timestamp() * 1000) + 1)
    for h in range(24)
]


@asset(
    key=["bronze", "klines"],
    partitions_def=daily_symbol_partitions,
    metadata={"partition_expr": DAILY_SYMBOL_PARTITION_EXPR},
)
def stub_bronze(context) -> pl.DataFrame:
    """Bronze klines as a fetch would have stored them."""
    return bronze_klines_frame(BRONZE_ROWS, symbol="BTCUSDT", interval="1h", source="test", ingested_at=INGESTED)


def test_quarantine_holds_exactly_the_bad_rows_with_their_original_values(tmp_path):
    path = tmp_path / "lake.duckdb"
    checks = [build_table_checks(t) for t in (BRONZE_KLINES, SILVER_OHLCV, SILVER_QUARANTINE)]
    result = materialize(
        [stub_bronze, silver_ohlcv, *checks], partition_key=BAD, resources=_resources(path), raise_on_error=False
    )
    assert result.success  # bronze rules that silver handles are WARN, and silver is clean
    query = documented_quarantine_query()
    assert "DATE '2024-01-15' AND symbol = 'BTCUSDT'" in query  # the partition this test quarantines into
    quarantined = _read(path, query)
    assert quarantined.rows() == [
        (
            DAY,
            "BTCUSDT",
            DAY_MS + 3 * H,
            "close_before_open",
            "close_time is not after open_time (not a valid bar)",
            "100.0",
            "101.0",
            "99.0",
            "100.5",
            "2.0",
            DAY_MS + 3 * H - 1000,
        ),
        (
            DAY,
            "BTCUSDT",
            DAY_MS + 9 * H,
            "volume_inconsistent",
            "quote volume outside [low, high] × volume, or a taker-buy volume above its total",
            "100.0",
            "101.0",
            "99.0",
            "100.5",
            "2.0",
            DAY_MS + 10 * H - 1,
        ),
        (
            DAY,
            "BTCUSDT",
            DAY_MS + 23 * H,
            "unclosed_candle",
            "the candle was still open when fetched (close_time not before ingested_at): its values are partial",
            "100.0",
            "101.0",
            "99.0",
            "100.5",
            "2.0",
            int(INGESTED.timestamp() * 1000) + 1,
        ),
    ]
    silver = _read(path, "SELECT open_time FROM silver.ohlcv ORDER BY open_time")
    assert [t.hour for t in silver["open_time"]] == [h for h in range(24) if h not in (3, 9, 23)]
    evaluations = _evaluations(result)
    assert {k: e.metadata["failing_rows"].value for k, e in evaluations.items() if not e.passed} == {
        ("bronze/klines", "close_after_open"): 1,
        ("silver/ohlcv", "complete_bars"): 3,
        ("silver/ohlcv_quarantine", "quarantine_empty"): 3,
    }
    materialized = {
        e.asset_key.to_user_string(): e.event_specific_data.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    assert materialized["silver/ohlcv_quarantine"]["rows"].value == 3


def test_simulated_pipeline_passes_every_error_check_in_a_range_run(tmp_path):
    path = tmp_path / "lake.duckdb"
    checks = [c for c in MEDALLION_CHECKS if {k.asset_key.path[0] for k in c.check_keys} <= {"bronze", "silver"}]
    result = materialize(
        [bronze_klines, silver_ohlcv, *checks],
        resources=_resources(path),
        tags={
            ASSET_PARTITION_RANGE_START_TAG: "2024-03-01|BTCUSDT",
            ASSET_PARTITION_RANGE_END_TAG: "2024-03-02|ETHUSDT",
        },
    )
    assert result.success
    evaluations = _evaluations(result)
    keys = {f"2024-03-0{d}|{s}" for d in (1, 2) for s in ("BTCUSDT", "ETHUSDT")}
    per_partition = [e for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert len(per_partition) == (5 + 11 + 3) * 4  # one result per check and partition
    assert {e.event_specific_data.partition for e in per_partition} == keys
    assert [k for k, e in evaluations.items() if not e.passed and e.severity.value == "ERROR"] == []
    schema = [
        e.event_specific_data
        for e in per_partition
        if e.event_specific_data.check_name == "schema"
        and e.event_specific_data.asset_key == AssetKey(["silver", "ohlcv"])
    ]
    assert [e.metadata["rows_checked"].value for e in schema] == [24] * 4


def _features_run(path, first: str, last: str):
    assets = [stub_silver, daily_features, build_table_checks(SILVER_OHLCV)]
    tags = {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}
    return materialize(assets, resources=_resources(path), tags=tags, raise_on_error=False)


def test_small_range_run_records_each_partition_and_blocks_the_whole_range(tmp_path):
    result = _features_run(
        tmp_path / "lake.duckdb", f"{DAY - dt.timedelta(days=1)}|BTCUSDT", f"{DAY + dt.timedelta(days=1)}|BTCUSDT"
    )
    assert not result.success
    unique = {
        e.event_specific_data.partition: e.event_specific_data.passed
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.event_specific_data.check_name == "unique_symbol_open_time"
    }
    assert unique == {
        f"{DAY - dt.timedelta(days=1)}|BTCUSDT": True,
        BAD: False,
        f"{DAY + dt.timedelta(days=1)}|BTCUSDT": True,
    }
    assert {e.asset_key for e in result.get_asset_materialization_events()} == {AssetKey(["silver", "ohlcv"])}


def test_large_range_run_records_one_result_naming_the_failing_partitions(tmp_path):
    first, last = DAY - dt.timedelta(days=40), DAY + dt.timedelta(days=1)  # 42 partitions > 40
    result = _features_run(tmp_path / "lake.duckdb", f"{first}|BTCUSDT", f"{last}|BTCUSDT")
    assert not result.success
    failed = _evaluations(result)[("silver/ohlcv", "unique_symbol_open_time")]
    assert (failed.passed, failed.partition) == (False, None)
    assert failed.metadata["failing_rows"].value == 2 and failed.metadata["partitions_checked"].value == 42
    assert failed.metadata["failing_partitions"].value == BAD


@pytest.mark.parametrize("check", MEDALLION_CHECKS, ids=lambda c: "/".join(next(iter(c.check_keys)).asset_key.path))
def test_checks_run_in_the_duckdb_pool_with_blocking_exactly_for_errors(check):
    for spec in check.check_specs:
        assert spec.blocking == (spec.metadata["severity"] == "ERROR")
        assert spec.description.startswith(f"[{spec.metadata['severity']}]")
    assert check.node_def.pool == "duckdb"


def test_large_range_whose_dimensions_are_not_materialized_says_so_once_per_check(tmp_path):
    """A UI backfill runs gold/dim_symbol and gold/dim_date beside the facts: a large range checked
    before they exist gets one "cannot verify" result per referential check for the range, not one
    stored evaluation per partition (a symbol's full history made 3,398 per check)."""
    first, last = DAY - dt.timedelta(days=40), DAY + dt.timedelta(days=1)  # 42 partitions > 40
    path = tmp_path / "lake.duckdb"
    tags = {ASSET_PARTITION_RANGE_START_TAG: f"{first}|ETHUSDT", ASSET_PARTITION_RANGE_END_TAG: f"{last}|ETHUSDT"}
    assets = [stub_silver, daily_features, build_table_checks(GOLD_DAILY_FEATURES)]
    result = materialize(assets, resources=_resources(path), tags=tags, raise_on_error=False)
    referential = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.event_specific_data.check_name in ("date_in_dim_date", "symbol_in_dim_symbol")
    ]
    assert sorted((e.check_name, e.partition, e.passed, e.severity.value) for e in referential) == [
        ("date_in_dim_date", None, False, "WARN"),
        ("symbol_in_dim_symbol", None, False, "WARN"),
    ]
    assert {e.check_name: e.metadata["unverifiable"].value for e in referential} == {
        "date_in_dim_date": "gold/dim_date is not materialized yet; materialize it to check the references",
        "symbol_in_dim_symbol": "gold/dim_symbol is not materialized yet; materialize it to check the references",
    }
