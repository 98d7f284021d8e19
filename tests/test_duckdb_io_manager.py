"""The DuckDB I/O manager on today's releases.

Pins down three traps measured on dagster 1.13 / duckdb 2.0 (PLATFORM-NOTES): loads must not use the
removed ``.arrow()``; a date × symbol subset spanning several values in both dimensions must load and
replace exactly its rectangle; and a failed write must leave the previous rows in place.
"""

import datetime as dt
import subprocess
import sys

import duckdb
import polars as pl
import pytest
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    BackfillPolicy,
    DailyPartitionsDefinition,
    DimensionPartitionMapping,
    IdentityPartitionMapping,
    MultiPartitionMapping,
    MultiPartitionsDefinition,
    Output,
    RetryPolicy,
    StaticPartitionsDefinition,
    TimeWindowPartitionMapping,
    asset,
    materialize,
)

from cryptolake_assets.metadata import time_span
from resources.dagster_internals import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from resources.duckdb_io import CryptoLakeDuckDBIOManager, stored_identity

PARTS = MultiPartitionsDefinition(
    {
        "date": DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-02-01", timezone="UTC"),
        "symbol": StaticPartitionsDefinition(["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT"]),
    }
)
EXPR = {"date": "date", "symbol": "symbol"}
BROKEN = {"enabled": False}


def _keys(context: AssetExecutionContext) -> list[tuple[dt.date, str]]:
    return sorted(
        (dt.date.fromisoformat(k.keys_by_dimension["date"]), k.keys_by_dimension["symbol"])
        for k in (PARTS.get_partition_key_from_str(s) for s in context.partition_keys)
    )


@asset(
    key=["raw", "prices"],
    partitions_def=PARTS,
    metadata={"partition_expr": EXPR},
    backfill_policy=BackfillPolicy.single_run(),
)
def prices(context: AssetExecutionContext) -> pl.DataFrame:
    rows = [
        {"date": day, "symbol": symbol, "price": float(day.day) * (1 + ord(symbol[0]) - ord("A"))}
        for day, symbol in _keys(context)
    ]
    if BROKEN["enabled"]:
        # A frame whose 'date' cannot be stored in the DATE column: the INSERT fails after the DELETE.
        return pl.DataFrame(
            {"date": ["not a date"] * len(rows), "symbol": [r["symbol"] for r in rows], "price": [0.0] * len(rows)}
        )
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
    assert sums.filter(pl.col("symbol") == "AAAUSDT")["window_sum"].to_list() == [1.0, 3.0, 6.0, 9.0]
    assert sums.filter(pl.col("symbol") == "AAAUSDT")["n"].to_list() == [1, 2, 3, 3]
    with duckdb.connect(str(tmp_path / "lake.duckdb"), read_only=True) as con:
        assert (
            con.sql(
                "select data_type from information_schema.columns where table_name='prices' and column_name='date'"
            ).fetchall()[0][0]
            == "DATE"
        )


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
    message = failure.event_specific_data.error.message + (failure.event_specific_data.error.cause.message or "")
    # The type change is refused before anything is deleted (the write's transaction is rolled back).
    assert (
        "column 'date' is DATE in the table but VARCHAR in the output" in message and "nothing was written" in message
    )
    assert _table(tmp_path / "lake.duckdb", "raw.prices").equals(before)
    assert before.height == 4


def test_replacing_one_partition_leaves_neighbours_untouched(io_manager, tmp_path):
    assert materialize(
        [prices], resources={"io_manager": io_manager}, tags=_range("2024-01-01|AAAUSDT", "2024-01-02|CCCUSDT")
    ).success
    assert materialize([prices], resources={"io_manager": io_manager}, partition_key="2024-01-02|BBBUSDT").success
    stored = _table(tmp_path / "lake.duckdb", "raw.prices")
    assert stored.height == 6
    assert stored.group_by("date", "symbol").len()["len"].to_list() == [1] * 6


SEEN: dict[str, object] = {}


@asset(
    key=["raw", "stamps"],
    partitions_def=PARTS,
    metadata={"partition_expr": EXPR},
    backfill_policy=BackfillPolicy.single_run(),
)
def stamps(context: AssetExecutionContext) -> pl.DataFrame:
    rows = [
        {"date": day, "symbol": symbol, "at": dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC), "hour": hour}
        for day, symbol in _keys(context)
        for hour in (0, 12)
    ]
    return pl.DataFrame(
        rows, schema={"date": pl.Date, "symbol": pl.String, "at": pl.Datetime("us", "UTC"), "hour": pl.Int64}
    )


@asset(
    key=["derived", "lazy_reader"],
    partitions_def=PARTS,
    metadata={"partition_expr": EXPR},
    backfill_policy=BackfillPolicy.single_run(),
    ins={
        "stamps": AssetIn(
            key=["raw", "stamps"], partition_mapping=WINDOW, metadata={"columns": ["date", "symbol", "at"]}
        )
    },
)
def lazy_reader(context: AssetExecutionContext, stamps: pl.LazyFrame) -> pl.DataFrame:
    SEEN["type"] = type(stamps)
    SEEN["schema"] = stamps.collect_schema()
    SEEN["all"] = stamps.collect().sort("symbol", "at")
    SEEN["bbb"] = stamps.filter(pl.col("symbol") == "BBBUSDT").collect().sort("at")
    return pl.DataFrame(
        [{"date": day, "symbol": symbol} for day, symbol in _keys(context)],
        schema={"date": pl.Date, "symbol": pl.String},
    )


def test_lazyframe_inputs_are_lazy_scans_of_the_same_slice(io_manager, tmp_path):
    assert materialize(
        [stamps], resources={"io_manager": io_manager}, tags=_range("2024-01-01|AAAUSDT", "2024-01-05|CCCUSDT")
    ).success
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


# --- per-partition metadata -------------------------------------------------------------------

BARS_PER_DAY = {"AAAUSDT": 2, "BBBUSDT": 3, "CCCUSDT": 1, "DDDUSDT": 0}


@asset(
    key=["raw", "bars"],
    partitions_def=PARTS,
    metadata={"partition_expr": EXPR},
    backfill_policy=BackfillPolicy.single_run(),
)
def bars(context: AssetExecutionContext) -> Output[pl.DataFrame]:
    """A different number of bars per symbol and day, with the run-wide figures the assets report."""
    rows = [
        {"date": day, "symbol": symbol, "at": dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)}
        for day, symbol in _keys(context)
        for hour in range(BARS_PER_DAY[symbol])
    ]
    frame = pl.DataFrame(rows, schema={"date": pl.Date, "symbol": pl.String, "at": pl.Datetime("us", "UTC")})
    empty = sum(1 for _, symbol in _keys(context) if BARS_PER_DAY[symbol] == 0)
    metadata = {"rows": len(frame), "partitions": len(context.partition_keys), "empty_partitions": empty}
    return Output(frame, metadata={**metadata, **time_span(frame, "at")})


def _by_partition(result, node: str = "raw__bars") -> dict[str, dict]:
    return {
        str(m.partition): {k: v.value for k, v in m.metadata.items()}
        for m in result.asset_materializations_for_node(node)
    }


def test_each_partition_of_a_range_run_records_its_own_figures(io_manager, tmp_path):
    tags = _range("2024-01-01|AAAUSDT", "2024-01-02|BBBUSDT")
    first = _by_partition(materialize([bars], resources={"io_manager": io_manager}, tags=tags))
    assert sorted(first) == ["2024-01-01|AAAUSDT", "2024-01-01|BBBUSDT", "2024-01-02|AAAUSDT", "2024-01-02|BBBUSDT"]
    for key, metadata in first.items():
        day, symbol = key.split("|")
        bars_in_partition = BARS_PER_DAY[symbol]
        assert metadata["rows"] == metadata["dagster/partition_row_count"] == bars_in_partition, key
        assert metadata["rows_replaced"] == 0 and metadata["partitions"] == 1
        assert metadata["first_at"] == f"{day} 00:00:00+00:00"
        assert metadata["last_at"] == f"{day} {bars_in_partition - 1:02d}:00:00+00:00"
        assert metadata["dagster/row_count"] == 10  # the table: 2 days × (2 + 3) bars
    # A single partition beside it: its own count, the table's total.
    single = _by_partition(
        materialize([bars], resources={"io_manager": io_manager}, partition_key="2024-01-03|CCCUSDT")
    )
    assert single["2024-01-03|CCCUSDT"]["rows"] == 1 and single["2024-01-03|CCCUSDT"]["dagster/row_count"] == 11
    again = _by_partition(materialize([bars], resources={"io_manager": io_manager}, tags=tags))
    assert {k: v["rows_replaced"] for k, v in again.items()} == {k: BARS_PER_DAY[k.split("|")[1]] for k in again}
    assert {v["dagster/row_count"] for v in again.values()} == {11}
    # An empty partition beside a full one: 0 rows, counted as the one empty partition, no span.
    mixed = _by_partition(
        materialize(
            [bars], resources={"io_manager": io_manager}, tags=_range("2024-01-04|CCCUSDT", "2024-01-04|DDDUSDT")
        )
    )
    assert {k: (v["rows"], v["empty_partitions"], v["first_at"]) for k, v in mixed.items()} == {
        "2024-01-04|CCCUSDT": (1, 0, "2024-01-04 00:00:00+00:00"),
        "2024-01-04|DDDUSDT": (0, 1, "-"),
    }


def test_per_partition_metadata_uses_dagsters_accumulator(io_manager, monkeypatch):
    """Contract for the private API partition_metadata relies on (the public call is O(n) per key)."""
    from dagster import StepExecutionContext

    from resources.dagster_internals import AssetMetadataHandle, OutputMetadataAccumulator

    assert (
        AssetMetadataHandle(asset_key=AssetKey("a"), partition_key="k")
        in OutputMetadataAccumulator(
            per_output_metadata={AssetMetadataHandle(asset_key=AssetKey("a"), partition_key="k"): {}}
        ).per_output_metadata
    )

    def refuse(*args, **kwargs):
        raise AssertionError("the per-key public route was taken")

    monkeypatch.setattr(StepExecutionContext, "add_asset_metadata", refuse)
    result = materialize(
        [bars], resources={"io_manager": io_manager}, tags=_range("2024-01-01|AAAUSDT", "2024-01-01|CCCUSDT")
    )
    assert {k: v["rows"] for k, v in _by_partition(result).items()} == {
        "2024-01-01|AAAUSDT": 2,
        "2024-01-01|BBBUSDT": 3,
        "2024-01-01|CCCUSDT": 1,
    }


# --- schema evolution ---------------------------------------------------------------------------

SHAPE = {"columns": {"date": pl.Date, "symbol": pl.String, "price": pl.Float64}}


@asset(
    key=["raw", "evolving"],
    partitions_def=PARTS,
    metadata={"partition_expr": EXPR},
    backfill_policy=BackfillPolicy.single_run(),
    retry_policy=RetryPolicy(max_retries=2, delay=0),
)
def evolving(context: AssetExecutionContext) -> pl.DataFrame:
    values = {"price": 1.5, "volume": 10.0}
    rows = [
        {
            name: (day if name == "date" else symbol if name == "symbol" else values.get(name, "x"))
            for name in SHAPE["columns"]
        }
        for day, symbol in _keys(context)
    ]
    return pl.DataFrame(rows, schema=SHAPE["columns"])


def _attempts(result) -> int:
    return 1 + sum(1 for e in result.all_events if e.event_type_value == "STEP_RESTARTED")


def test_an_added_column_migrates_the_table_and_incompatible_changes_are_refused_once(io_manager, tmp_path):
    SHAPE["columns"] = {"date": pl.Date, "symbol": pl.String, "price": pl.Float64}
    assert materialize([evolving], resources={"io_manager": io_manager}, partition_key="2024-01-01|AAAUSDT").success
    SHAPE["columns"] = {"date": pl.Date, "symbol": pl.String, "price": pl.Float64, "volume": pl.Float64}
    result = materialize([evolving], resources={"io_manager": io_manager}, partition_key="2024-01-02|AAAUSDT")
    assert result.success
    stored = _table(tmp_path / "lake.duckdb", "raw.evolving")
    assert stored.columns == ["date", "symbol", "price", "volume"]
    assert stored["volume"].to_list() == [None, 10.0]  # the old row has no value; the new one has
    # A removed column and a changed type: refused with the table, column and types, not retried.
    for columns, expected in (
        (
            {"date": pl.Date, "symbol": pl.String, "price": pl.Float64},
            "raw.evolving: the output has no column 'volume' (DOUBLE)",
        ),
        (
            {"date": pl.Date, "symbol": pl.String, "price": pl.String, "volume": pl.Float64},
            "raw.evolving: column 'price' is DOUBLE in the table but VARCHAR in the output",
        ),
    ):
        SHAPE["columns"] = columns
        result = materialize(
            [evolving], resources={"io_manager": io_manager}, partition_key="2024-01-03|AAAUSDT", raise_on_error=False
        )
        assert not result.success
        failure = next(e for e in result.all_events if e.is_step_failure).event_specific_data
        message = failure.error.message + (failure.error.cause.message if failure.error.cause else "")
        assert expected in message and "not retried" in message, message
        assert _attempts(result) == 1
        assert _table(tmp_path / "lake.duckdb", "raw.evolving").equals(stored)


# --- interval identity ---------------------------------------------------------------------------

INTERVAL = {"value": "1h"}


@asset(
    key=["raw", "klines"],
    partitions_def=PARTS,
    metadata={"partition_expr": EXPR},
    backfill_policy=BackfillPolicy.single_run(),
    retry_policy=RetryPolicy(max_retries=2, delay=0),
)
def klines(context: AssetExecutionContext) -> pl.DataFrame:
    return pl.DataFrame(
        [{"date": day, "symbol": symbol, "interval": INTERVAL["value"]} for day, symbol in _keys(context)],
        schema={"date": pl.Date, "symbol": pl.String, "interval": pl.String},
    )


def test_a_table_keeps_one_interval(io_manager, tmp_path):
    INTERVAL["value"] = "1h"
    assert materialize(
        [klines], resources={"io_manager": io_manager}, tags=_range("2024-01-01|AAAUSDT", "2024-01-02|AAAUSDT")
    ).success
    INTERVAL["value"] = "1m"
    result = materialize(
        [klines], resources={"io_manager": io_manager}, partition_key="2024-01-03|AAAUSDT", raise_on_error=False
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure).event_specific_data
    message = failure.error.message + (failure.error.cause.message if failure.error.cause else "")
    assert "raw.klines holds interval '1h' bars; this run writes interval '1m'" in message, message
    assert "CRYPTOLAKE_INTERVAL=1h" in message and _attempts(result) == 1
    assert _table(tmp_path / "lake.duckdb", "raw.klines")["interval"].to_list() == ["1h", "1h"]
    # What a check before the run is created reads (no file or table: nothing stored yet).
    assert stored_identity(str(tmp_path / "lake.duckdb"), "raw.klines") == ["1h"]
    assert stored_identity(str(tmp_path / "lake.duckdb"), "raw.prices") == []
    assert stored_identity(str(tmp_path / "absent.duckdb"), "raw.klines") == []
    # The same interval goes on writing; replacing every row the table holds may change it.
    INTERVAL["value"] = "1h"
    assert materialize([klines], resources={"io_manager": io_manager}, partition_key="2024-01-03|AAAUSDT").success
    INTERVAL["value"] = "1m"
    assert materialize(
        [klines], resources={"io_manager": io_manager}, tags=_range("2024-01-01|AAAUSDT", "2024-01-03|AAAUSDT")
    ).success
    assert _table(tmp_path / "lake.duckdb", "raw.klines")["interval"].to_list() == ["1m"] * 3


# --- lazy reads hold the file only while reading ------------------------------------------------------

WRITER = """
import duckdb, sys
con = duckdb.connect(sys.argv[1])
con.execute("create table if not exists raw.other as select 1 as x")
con.close()
"""


@asset(
    key=["derived", "slow_reader"],
    partitions_def=PARTS,
    metadata={"partition_expr": EXPR},
    backfill_policy=BackfillPolicy.single_run(),
    ins={"stamps": AssetIn(key=["raw", "stamps"], partition_mapping=WINDOW)},
)
def slow_reader(context: AssetExecutionContext, stamps: pl.LazyFrame) -> pl.DataFrame:
    SEEN["first"] = stamps.filter(pl.col("symbol") == "AAAUSDT").collect().height
    # Between two reads of the same input, another process can open the file and write.
    SEEN["writer"] = subprocess.run(
        [sys.executable, "-c", WRITER, SEEN["database"]], capture_output=True, text=True, timeout=60
    )
    SEEN["second"] = stamps.collect().height
    return pl.DataFrame(
        [{"date": day, "symbol": symbol} for day, symbol in _keys(context)],
        schema={"date": pl.Date, "symbol": pl.String},
    )


def test_a_lazy_input_does_not_hold_the_file_between_reads(io_manager, tmp_path):
    assert materialize(
        [stamps], resources={"io_manager": io_manager}, tags=_range("2024-01-01|AAAUSDT", "2024-01-02|BBBUSDT")
    ).success
    SEEN.clear()
    SEEN["database"] = str(tmp_path / "lake.duckdb")
    result = materialize(
        [stamps.to_source_asset(), slow_reader],
        resources={"io_manager": io_manager},
        partition_key="2024-01-02|AAAUSDT",
    )
    assert result.success
    assert SEEN["writer"].returncode == 0, SEEN["writer"].stderr[-300:]
    assert SEEN["first"] == 4 and SEEN["second"] == 4  # 2 days × 2 stamps of AAAUSDT
    assert _table(tmp_path / "lake.duckdb", "raw.other")["x"].to_list() == [1]


def test_a_read_while_this_process_holds_the_file_read_write_uses_the_writers_configuration(tmp_path):
    """DuckDB allows one configuration per file per process: the read falls back to read-write."""
    from resources.duckdb_io import connect_duckdb, read_connection

    path = str(tmp_path / "lake.duckdb")
    writer = connect_duckdb(path)
    try:
        writer.execute("create table t as select 41 + 1 as answer")
        with read_connection(path, {}, 5) as reader:
            assert reader.sql("select answer from t").fetchall() == [(42,)]
    finally:
        writer.close()
    with read_connection(path, {}, 5) as reader:  # alone: read-only
        with pytest.raises(duckdb.Error, match="read-only"):
            reader.execute("insert into t values (1)")


def test_an_insert_failing_after_the_delete_rolls_back_and_keeps_previous_rows(io_manager, tmp_path, monkeypatch):
    import resources.duckdb_io as duckdb_io

    tags = _range("2024-01-01|AAAUSDT", "2024-01-02|BBBUSDT")
    assert materialize([prices], resources={"io_manager": io_manager}, tags=tags).success
    before = _table(tmp_path / "lake.duckdb", "raw.prices")
    original = duckdb_io._run

    def failing_insert(connection, sql, params=None):
        if sql.startswith("INSERT"):
            raise duckdb.IOException("disk full (simulated)")
        return original(connection, sql, params)

    monkeypatch.setattr(duckdb_io, "_run", failing_insert)
    result = materialize([prices], resources={"io_manager": io_manager}, tags=tags, raise_on_error=False)
    monkeypatch.setattr(duckdb_io, "_run", original)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure).event_specific_data.error
    assert "rolled back (previous rows kept): disk full (simulated)" in failure.message + (
        failure.cause.message if failure.cause else ""
    )
    assert _table(tmp_path / "lake.duckdb", "raw.prices").equals(before) and before.height == 4
