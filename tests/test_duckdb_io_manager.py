"""The DuckDB I/O manager on today's releases.

Pins down three traps measured on dagster 1.13 / duckdb 2.0 (PLATFORM-NOTES): loads must not use the
removed ``.arrow()``; a date × symbol subset spanning several values in both dimensions must load and
replace exactly its rectangle; and a failed write must leave the previous rows in place.
"""

import datetime as dt

import duckdb
import polars as pl
import pytest
from dagster import (
    AssetExecutionContext,
    AssetIn,
    BackfillPolicy,
    DailyPartitionsDefinition,
    DimensionPartitionMapping,
    IdentityPartitionMapping,
    MultiPartitionMapping,
    MultiPartitionsDefinition,
    StaticPartitionsDefinition,
    TimeWindowPartitionMapping,
    asset,
    materialize,
)
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from resources.duckdb_io import CryptoLakeDuckDBIOManager, DuckDBWriteError

PARTS = MultiPartitionsDefinition(
    {
        "date": DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-02-01", timezone="UTC"),
        "symbol": StaticPartitionsDefinition(["AAAUSDT", "BBBUSDT", "CCCUSDT"]),
    }
)
EXPR = {"date": "date", "symbol": "symbol"}
BROKEN = {"enabled": False}


def _keys(context: AssetExecutionContext) -> list[tuple[dt.date, str]]:
    return sorted(
        (dt.date.fromisoformat(k.keys_by_dimension["date"]), k.keys_by_dimension["symbol"])
        for k in (PARTS.get_partition_key_from_str(s) for s in context.partition_keys)
    )


@asset(key=["raw", "prices"], partitions_def=PARTS, metadata={"partition_expr": EXPR}, backfill_policy=BackfillPolicy.single_run())
def prices(context: AssetExecutionContext) -> pl.DataFrame:
    rows = [
        {"date": day, "symbol": symbol, "price": float(day.day) * (1 + ord(symbol[0]) - ord("A"))}
        for day, symbol in _keys(context)
    ]
    if BROKEN["enabled"]:
        # A frame whose 'date' cannot be stored in the DATE column: the INSERT fails after the DELETE.
        return pl.DataFrame({"date": ["not a date"] * len(rows), "symbol": [r["symbol"] for r in rows], "price": [0.0] * len(rows)})
    return pl.DataFrame(rows, schema={"date": pl.Date, "symbol": pl.String, "price": pl.Float64})


WINDOW = MultiPartitionMapping(
    {
        "date": DimensionPartitionMapping("date", TimeWindowPartitionMapping(start_offset=-2)),
        "symbol": DimensionPartitionMapping("symbol", IdentityPartitionMapping()),
    }
)


@asset(
    key=["derived", "window_sum"],
    partitions_def=PARTS,
    metadata={"partition_expr": EXPR},
    backfill_policy=BackfillPolicy.single_run(),
    ins={"prices": AssetIn(key=["raw", "prices"], partition_mapping=WINDOW)},
)
def window_sum(context: AssetExecutionContext, prices: pl.DataFrame) -> pl.DataFrame:
    out = []
    for day, symbol in _keys(context):
        window = prices.filter(
            (pl.col("symbol") == symbol) & pl.col("date").is_between(day - dt.timedelta(days=2), day)
        )
        out.append({"date": day, "symbol": symbol, "window_sum": window["price"].sum(), "n": len(window)})
    return pl.DataFrame(out, schema={"date": pl.Date, "symbol": pl.String, "window_sum": pl.Float64, "n": pl.Int64})


def _range(start: str, end: str) -> dict[str, str]:
    return {ASSET_PARTITION_RANGE_START_TAG: start, ASSET_PARTITION_RANGE_END_TAG: end}


def _table(path, name: str) -> pl.DataFrame:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.sql(f"select * from {name} order by all").pl()


@pytest.fixture
def io_manager(tmp_path):
    BROKEN["enabled"] = False
    return CryptoLakeDuckDBIOManager(database=str(tmp_path / "lake.duckdb"))


def test_range_run_writes_rectangle_and_reads_windows_across_symbols(io_manager, tmp_path):
    result = materialize(
        [prices, window_sum],
        resources={"io_manager": io_manager},
        tags=_range("2024-01-01|AAAUSDT", "2024-01-04|BBBUSDT"),
    )
    assert result.success
    stored = _table(tmp_path / "lake.duckdb", "raw.prices")
    assert stored.height == 8  # 4 days × 2 symbols
    assert stored.filter(pl.col("symbol") == "BBBUSDT")["price"].to_list() == [2.0, 4.0, 6.0, 8.0]
    sums = _table(tmp_path / "lake.duckdb", "derived.window_sum")
    # 2024-01-03 AAAUSDT: days 1..3 -> 1+2+3; 2024-01-01: window clipped to one day.
    assert sums.filter((pl.col("symbol") == "AAAUSDT"))["window_sum"].to_list() == [1.0, 3.0, 6.0, 9.0]
    assert sums.filter((pl.col("symbol") == "AAAUSDT"))["n"].to_list() == [1, 2, 3, 3]
    with duckdb.connect(str(tmp_path / "lake.duckdb"), read_only=True) as con:
        assert con.sql("select data_type from information_schema.columns where table_name='prices' and column_name='date'").fetchall()[0][0] == "DATE"


def test_rematerializing_is_idempotent_and_single_runs_equal_range_runs(io_manager, tmp_path):
    tags = _range("2024-01-01|AAAUSDT", "2024-01-03|CCCUSDT")
    assert materialize([prices], resources={"io_manager": io_manager}, tags=tags).success
    first = _table(tmp_path / "lake.duckdb", "raw.prices")
    assert materialize([prices], resources={"io_manager": io_manager}, tags=tags).success
    assert _table(tmp_path / "lake.duckdb", "raw.prices").equals(first)
    other = CryptoLakeDuckDBIOManager(database=str(tmp_path / "single.duckdb"))
    for day in ("2024-01-01", "2024-01-02", "2024-01-03"):
        for symbol in ("AAAUSDT", "BBBUSDT", "CCCUSDT"):
            assert materialize([prices], resources={"io_manager": other}, partition_key=f"{day}|{symbol}").success
    assert _table(tmp_path / "single.duckdb", "raw.prices").equals(first)
    assert first.height == 9


def test_failed_write_rolls_back_and_keeps_previous_rows(io_manager, tmp_path):
    tags = _range("2024-01-01|AAAUSDT", "2024-01-02|BBBUSDT")
    assert materialize([prices], resources={"io_manager": io_manager}, tags=tags).success
    before = _table(tmp_path / "lake.duckdb", "raw.prices")
    BROKEN["enabled"] = True
    try:
        result = materialize([prices], resources={"io_manager": io_manager}, tags=tags, raise_on_error=False)
    finally:
        BROKEN["enabled"] = False
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "rolled back" in failure.event_specific_data.error.cause.message or "rolled back" in failure.event_specific_data.error.message
    assert _table(tmp_path / "lake.duckdb", "raw.prices").equals(before)
    assert before.height == 4


def test_replacing_one_partition_leaves_neighbours_untouched(io_manager, tmp_path):
    assert materialize([prices], resources={"io_manager": io_manager}, tags=_range("2024-01-01|AAAUSDT", "2024-01-02|CCCUSDT")).success
    assert materialize([prices], resources={"io_manager": io_manager}, partition_key="2024-01-02|BBBUSDT").success
    stored = _table(tmp_path / "lake.duckdb", "raw.prices")
    assert stored.height == 6
    assert stored.group_by("date", "symbol").len()["len"].to_list() == [1] * 6


SEEN: dict[str, object] = {}


@asset(key=["raw", "stamps"], partitions_def=PARTS, metadata={"partition_expr": EXPR}, backfill_policy=BackfillPolicy.single_run())
def stamps(context: AssetExecutionContext) -> pl.DataFrame:
    rows = [
        {"date": day, "symbol": symbol, "at": dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC), "hour": hour}
        for day, symbol in _keys(context)
        for hour in (0, 12)
    ]
    return pl.DataFrame(rows, schema={"date": pl.Date, "symbol": pl.String, "at": pl.Datetime("us", "UTC"), "hour": pl.Int64})


@asset(
    key=["derived", "lazy_reader"],
    partitions_def=PARTS,
    metadata={"partition_expr": EXPR},
    backfill_policy=BackfillPolicy.single_run(),
    ins={"stamps": AssetIn(key=["raw", "stamps"], partition_mapping=WINDOW, metadata={"columns": ["date", "symbol", "at"]})},
)
def lazy_reader(context: AssetExecutionContext, stamps: pl.LazyFrame) -> pl.DataFrame:
    SEEN["type"] = type(stamps)
    SEEN["schema"] = stamps.collect_schema()
    SEEN["all"] = stamps.collect().sort("symbol", "at")
    SEEN["bbb"] = stamps.filter(pl.col("symbol") == "BBBUSDT").collect().sort("at")
    return pl.DataFrame(
        [{"date": day, "symbol": symbol} for day, symbol in _keys(context)], schema={"date": pl.Date, "symbol": pl.String}
    )


def test_lazyframe_inputs_are_lazy_scans_of_the_same_slice(io_manager, tmp_path):
    assert materialize([stamps], resources={"io_manager": io_manager}, tags=_range("2024-01-01|AAAUSDT", "2024-01-05|CCCUSDT")).success
    SEEN.clear()
    result = materialize(
        [stamps.to_source_asset(), lazy_reader],
        resources={"io_manager": io_manager},
        tags=_range("2024-01-04|AAAUSDT", "2024-01-04|BBBUSDT"),
    )
    assert result.success
    assert SEEN["type"] is pl.LazyFrame
    # The declared columns only; TIMESTAMPTZ comes back as UTC, as in DataFrame loads.
    assert SEEN["schema"] == pl.Schema({"date": pl.Date, "symbol": pl.String, "at": pl.Datetime("us", "UTC")})
    # Window 01-02..01-04 (start_offset=-2) × AAA, BBB: 3 days × 2 symbols × 2 stamps.
    everything = SEEN["all"]
    assert everything.height == 12 and sorted(set(everything["symbol"])) == ["AAAUSDT", "BBBUSDT"]
    assert SEEN["bbb"]["at"].to_list() == [
        dt.datetime(2024, 1, d, h, tzinfo=dt.UTC) for d in (2, 3, 4) for h in (0, 12)
    ]
    # No connection is left open after the run: a read-only connection can open the file.
    assert _table(tmp_path / "lake.duckdb", "derived.lazy_reader").height == 2
