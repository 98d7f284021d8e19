"""CRYPTOLAKE_STORAGE=lake: every asset's I/O in Delta tables under CRYPTOLAKE_LAKE (resources/lake_io.py).

The same pipeline (simulated source, bronze → silver → gold with every check) run once on the
DuckDB file and once on the lake must store the same values and record the same check results;
a partition write is one Delta commit (a killed writer leaves the previous version readable), a
re-run replaces instead of duplicating, and two processes writing disjoint partitions of one table
at once both land (commit conflicts retried).
"""

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance, Definitions, Failure, TimeWindow, asset, materialize
from deltalake import DeltaTable

from cryptolake_assets.api.lake_reader import LakeReader
from cryptolake_assets.definitions import ASSET_CHECKS, ASSETS
from cryptolake_assets.schedules import JOBS
from partitions import DAILY_SYMBOL_PARTITION_EXPR, daily_symbol_partitions
from resources.dagster_internals import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    TablePartitionDimension,
    TableSlice,
)
from resources.definitions import build_io_manager, build_resources
from resources.duckdb_io import CryptoLakeDuckDBIOManager, DuckDBWriteError, as_utc, connect_duckdb
from resources.lake import DeltaLake
from resources.lake_io import CryptoLakeLakeIOManager, DeltaPolarsHandler, LakeTableMissingError, replace_lake_slice
from resources.settings import storage

FIRST, LAST = "2024-02-01", "2024-02-03"
SYMBOLS = ("BTCUSDT", "ETHUSDT")
#: Wall-clock columns: when the row was fetched, not what it holds (differs between two runs).
WALL_CLOCK = ("ingested_at",)


# --- the setting ---------------------------------------------------------------------------------


def test_storage_defaults_to_duckdb_and_lake_switches_the_io_manager(monkeypatch, tmp_path):
    monkeypatch.delenv("CRYPTOLAKE_STORAGE", raising=False)
    monkeypatch.setenv("CRYPTOLAKE_DUCKDB", str(tmp_path / "c.duckdb"))
    monkeypatch.setenv("CRYPTOLAKE_LAKE", str(tmp_path / "lake"))
    assert storage() == "duckdb"
    default = build_io_manager()
    assert isinstance(default, CryptoLakeDuckDBIOManager)
    assert default.database == str(tmp_path / "c.duckdb")
    monkeypatch.setenv("CRYPTOLAKE_STORAGE", " Lake ")
    lake = build_resources()["io_manager"]
    assert isinstance(lake, CryptoLakeLakeIOManager)
    assert lake.lake.root == str(tmp_path / "lake")


def test_lake_storage_without_a_lake_root_is_refused(monkeypatch):
    monkeypatch.setenv("CRYPTOLAKE_STORAGE", "lake")
    monkeypatch.delenv("CRYPTOLAKE_LAKE", raising=False)
    with pytest.raises(ValueError, match=r"CRYPTOLAKE_STORAGE=lake needs CRYPTOLAKE_LAKE"):
        build_io_manager()


def test_unknown_storage_is_refused_when_the_code_location_loads(monkeypatch):
    monkeypatch.setenv("CRYPTOLAKE_STORAGE", "postgres")
    with pytest.raises(ValueError, match=r"CRYPTOLAKE_STORAGE='postgres': expected one of duckdb, lake"):
        build_resources()
    # The code location itself fails to load (a fresh interpreter imports the definitions).
    result = subprocess.run(
        [sys.executable, "-c", "import cryptolake_assets.definitions"],
        capture_output=True,
        text=True,
        env={**os.environ, "CRYPTOLAKE_STORAGE": "postgres"},
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.returncode != 0
    assert "CRYPTOLAKE_STORAGE='postgres': expected one of duckdb, lake" in result.stderr


# --- the same pipeline on both storages ----------------------------------------------------------


def _run_pipeline(storage_name: str, root: Path, monkeypatch) -> dict[tuple, bool]:
    """Dimensions, 3 days × 2 symbols, the daily and reference assets: every check included.
    Returns each check evaluation's outcome by (asset, check, partition)."""
    monkeypatch.setenv("CRYPTOLAKE_STORAGE", storage_name)
    monkeypatch.setenv("CRYPTOLAKE_SOURCE", "simulated")
    monkeypatch.setenv("CRYPTOLAKE_DUCKDB", str(root / "cryptolake.duckdb"))
    monkeypatch.setenv("CRYPTOLAKE_LAKE", str(root / "lake"))
    defs = Definitions(assets=ASSETS, asset_checks=ASSET_CHECKS, jobs=JOBS, resources=build_resources())
    instance = DagsterInstance.ephemeral()
    outcomes: dict[tuple, bool] = {}
    days = {ASSET_PARTITION_RANGE_START_TAG: FIRST, ASSET_PARTITION_RANGE_END_TAG: LAST}
    runs = [
        ("reference_assets", {}, [AssetKey(["gold", "dim_symbol"])]),
        ("daily_assets", days, [AssetKey(["gold", "dim_date"])]),
        (
            "daily_symbol_assets",
            {
                ASSET_PARTITION_RANGE_START_TAG: f"{FIRST}|{SYMBOLS[0]}",
                ASSET_PARTITION_RANGE_END_TAG: f"{LAST}|{SYMBOLS[1]}",
            },
            None,
        ),
        ("daily_assets", days, None),
        ("reference_assets", {}, None),
    ]
    for job, tags, selection in runs:
        result = defs.resolve_job_def(job).execute_in_process(
            instance=instance, tags=tags, asset_selection=selection, raise_on_error=False
        )
        assert result.success, (storage_name, job)
        for evaluation in result.get_asset_check_evaluations():
            key = (evaluation.asset_key.to_user_string(), evaluation.check_name, evaluation.partition)
            outcomes[key] = evaluation.passed
    return outcomes


def _duckdb_tables(path: Path) -> dict[tuple[str, str], pl.DataFrame]:
    with connect_duckdb(str(path), read_only=True) as connection:
        names = connection.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall()
        return {(s, t): as_utc(connection.sql(f'SELECT * FROM "{s}"."{t}"').pl()) for s, t in names}


@pytest.mark.slow
def test_lake_storage_stores_the_same_values_and_check_results_as_duckdb(tmp_path, monkeypatch):
    duck_checks = _run_pipeline("duckdb", tmp_path / "duck", monkeypatch)
    lake_checks = _run_pipeline("lake", tmp_path / "lake_run", monkeypatch)
    assert duck_checks == lake_checks
    assert len(duck_checks) > 50

    lake_root = tmp_path / "lake_run" / "lake"
    assert not (tmp_path / "lake_run" / "cryptolake.duckdb").exists()  # lake mode never opens the DuckDB file
    expected = _duckdb_tables(tmp_path / "duck" / "cryptolake.duckdb")
    assert {("bronze", "klines"), ("silver", "ohlcv"), ("gold", "daily_features"), ("gold", "dim_symbol")} <= set(
        expected
    )
    for (schema, table), ours in expected.items():
        uri = lake_root / schema / table  # bronze too: <lake>/bronze/<table>
        theirs = pl.read_delta(str(uri))
        assert theirs.columns == ours.columns, table
        assert theirs.schema == ours.schema, table
        columns = [c for c in ours.columns if c not in WALL_CLOCK]
        left = ours.select(columns).sort(columns, nulls_last=True)
        right = theirs.select(columns).sort(columns, nulls_last=True)
        assert right.equals(left), f"{schema}.{table}"
    # 3 days × 2 symbols × 24 hourly bars, each stored once.
    bars = pl.read_delta(str(lake_root / "bronze" / "klines"))
    assert len(bars) == 3 * 2 * 24 == bars.unique(["symbol", "open_time"]).height
    # The check results were published to the lake beside the tables, as in DuckDB mode.
    assert DeltaTable(str(lake_root / "quality" / "check_results")).version() >= 0
    # The read API's reader (DuckDB/Polars over the Delta snapshot) reads lake mode's tables unchanged.
    _version, served = LakeReader(str(lake_root)).snapshot("gold", "daily_features")
    key = ["symbol", "date"]
    assert served.sort(key).equals(expected[("gold", "daily_features")].sort(key))


# --- atomicity, idempotence, schema rules on one toy table -----------------------------------------


def _bars(keys: list[str], value: float) -> pl.DataFrame:
    rows = []
    for key in keys:
        day, symbol = key.split("|")
        start = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
        rows += [
            {"date": start.date(), "symbol": symbol, "open_time": start + dt.timedelta(hours=h), "close": value + h}
            for h in range(24)
        ]
    return pl.DataFrame(
        rows, schema={"date": pl.Date, "symbol": pl.String, "open_time": pl.Datetime("us", "UTC"), "close": pl.Float64}
    )


def _toy(value: float, extra: dict | None = None):
    @asset(
        key=["silver", "toy"],
        partitions_def=daily_symbol_partitions,
        metadata={"partition_expr": DAILY_SYMBOL_PARTITION_EXPR},
    )
    def toy(context) -> pl.DataFrame:
        """24 hourly bars per date × symbol partition, closes from ``value``."""
        frame = _bars(sorted(context.partition_keys), value)
        return frame.with_columns(**extra) if extra else frame

    return toy


def _range(first: str, last: str) -> dict[str, str]:
    return {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}


def _lake_io(root: Path) -> CryptoLakeLakeIOManager:
    return CryptoLakeLakeIOManager(lake=DeltaLake(root=str(root)))


def test_range_write_is_one_commit_and_a_rerun_replaces_without_duplicates(tmp_path):
    io = _lake_io(tmp_path / "lake")
    uri = str(tmp_path / "lake" / "silver" / "toy")
    result = materialize(
        [_toy(1.0)], resources={"io_manager": io}, tags=_range("2024-02-01|BTCUSDT", "2024-02-02|ETHUSDT")
    )
    assert result.success
    assert DeltaTable(uri).version() == 0  # 4 partitions, one commit
    assert pl.read_delta(uri).height == 4 * 24
    # Re-run one partition with new values: one more commit, that slice replaced, the rest kept.
    rerun = materialize([_toy(100.0)], resources={"io_manager": io}, partition_key="2024-02-01|ETHUSDT")
    assert rerun.success
    [event] = rerun.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["rows_replaced"].value == 24
    assert metadata["dagster/row_count"].value == 4 * 24
    assert metadata["lake_version"].value == 1
    table = pl.read_delta(uri)
    assert table.height == 4 * 24 == table.unique(["symbol", "open_time"]).height
    by_partition = table.group_by("date", "symbol").agg(pl.col("close").min()).sort("date", "symbol")
    assert by_partition.rows() == [
        (dt.date(2024, 2, 1), "BTCUSDT", 1.0),
        (dt.date(2024, 2, 1), "ETHUSDT", 100.0),
        (dt.date(2024, 2, 2), "BTCUSDT", 1.0),
        (dt.date(2024, 2, 2), "ETHUSDT", 1.0),
    ]
    assert table.schema["open_time"] == pl.Datetime("us", "UTC")
    # The same run again: identical content, still no duplicates.
    assert materialize([_toy(100.0)], resources={"io_manager": io}, partition_key="2024-02-01|ETHUSDT").success
    assert pl.read_delta(uri).sort("symbol", "open_time").equals(table.sort("symbol", "open_time"))


def test_inputs_load_their_slice_eager_and_lazy_in_utc(tmp_path):
    io = _lake_io(tmp_path / "lake")
    assert materialize(
        [_toy(1.0)], resources={"io_manager": io}, tags=_range("2024-02-01|BTCUSDT", "2024-02-03|ETHUSDT")
    ).success
    manager = io.create_io_manager(None)
    dimensions = [
        TablePartitionDimension(
            "date",
            TimeWindow(dt.datetime(2024, 2, 2, tzinfo=dt.UTC), dt.datetime(2024, 2, 4, tzinfo=dt.UTC)),
        ),
        TablePartitionDimension("symbol", ["ETHUSDT"]),
    ]
    table_slice = TableSlice(table="toy", schema="silver", database=str(tmp_path), partition_dimensions=dimensions)
    eager = DeltaPolarsHandler(manager.delta, lazy=False).load_input(None, table_slice, None)
    lazy = DeltaPolarsHandler(manager.delta, lazy=True).load_input(None, table_slice, None)
    assert isinstance(lazy, pl.LazyFrame)
    expected = _bars(["2024-02-02|ETHUSDT", "2024-02-03|ETHUSDT"], 1.0)
    assert eager.sort("open_time").equals(expected)
    # The lazy input is a snapshot of the version current at load time: a later commit is not seen.
    assert materialize([_toy(7.0)], resources={"io_manager": io}, partition_key="2024-02-03|ETHUSDT").success
    assert lazy.collect().sort("open_time").equals(expected)
    with pytest.raises(LakeTableMissingError, match="does not exist yet"):
        DeltaPolarsHandler(manager.delta, lazy=False).load_input(None, table_slice._replace(table="nope"), None)
    assert issubclass(LakeTableMissingError, DuckDBWriteError)  # what the quality checks catch


def test_schema_rules_match_duckdb_added_column_merges_removed_or_narrowed_refused(tmp_path):
    io = _lake_io(tmp_path / "lake")
    uri = str(tmp_path / "lake" / "silver" / "toy")
    key = "2024-02-01|BTCUSDT"
    assert materialize([_toy(1.0)], resources={"io_manager": io}, partition_key="2024-02-02|BTCUSDT").success
    # An added column joins the table; older rows read it as null.
    added = {"trades": pl.lit(5, dtype=pl.Int64)}
    assert materialize([_toy(1.0, added)], resources={"io_manager": io}, partition_key=key).success
    table = pl.read_delta(uri)
    assert table.group_by("date").agg(pl.col("trades").null_count()).sort("date").rows() == [
        (dt.date(2024, 2, 1), 0),
        (dt.date(2024, 2, 2), 24),
    ]
    version = DeltaTable(uri).version()
    # A narrower integer is stored in the wider column (lossless).
    assert materialize(
        [_toy(1.0, {"trades": pl.lit(6, dtype=pl.Int32)})], resources={"io_manager": io}, partition_key=key
    ).success
    assert pl.read_delta(uri).schema["trades"] == pl.Int64
    version += 1
    # A float where the table has integers, or a dropped column: refused, not retried, nothing written.
    for bad in ({"trades": pl.lit(6.5)}, None):
        frame_extra = bad if bad is not None else {}
        toy = _toy(2.0, frame_extra) if bad is not None else _toy(2.0)
        with pytest.raises(Failure, match="IncompatibleSchemaError") as refused:
            materialize([toy], resources={"io_manager": io}, partition_key=key)
        assert refused.value.allow_retries is False
        assert DeltaTable(uri).version() == version


def test_stored_rows_reads_the_lake(tmp_path):
    io = _lake_io(tmp_path / "lake")
    manager = io.create_io_manager(None)
    assert manager.stored_rows("silver", "toy", [dt.date(2024, 2, 1)]) is None
    assert materialize(
        [_toy(1.0)], resources={"io_manager": io}, tags=_range("2024-02-01|BTCUSDT", "2024-02-03|BTCUSDT")
    ).success
    rows = manager.stored_rows("silver", "toy", [dt.date(2024, 2, 1), dt.date(2024, 2, 3)])
    assert rows is not None
    assert rows.sort("open_time").equals(_bars(["2024-02-01|BTCUSDT", "2024-02-03|BTCUSDT"], 1.0))


# --- a killed writer, concurrent writers -----------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import json, sys, datetime as dt
    import polars as pl
    from dagster import TimeWindow
    from resources.dagster_internals import TablePartitionDimension, TableSlice
    from resources.lake import DeltaLake
    from resources.lake_io import replace_lake_slice

    root, symbol, rounds, rows = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    options = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
    lake = DeltaLake(root=root, storage_options=options, vacuum_every_commits=0)
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=d) for d in range(3)]
    print("ready", flush=True)
    attempts = 0
    for i in range(rounds):
        day = days[i % 3]
        start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        frame = pl.DataFrame({
            "date": [day] * rows, "symbol": [symbol] * rows,
            "seq": pl.int_range(0, rows, eager=True), "round": [i] * rows,
        })
        table_slice = TableSlice(table="t", schema="gold", database=root, partition_dimensions=[
            TablePartitionDimension("date", TimeWindow(start, start + dt.timedelta(days=1))),
            TablePartitionDimension("symbol", [symbol]),
        ])
        attempts += replace_lake_slice(lake, table_slice, frame, ["date", "symbol"]).attempts - 1
    print(f"retried {attempts}", flush=True)
    """
)


def _writer(root: Path | str, symbol: str, rounds: int, rows: int, options: dict | None = None) -> subprocess.Popen:
    """A process replacing ``symbol``'s partition of day ``i % 3`` in ``<root>/gold/t`` for i < rounds."""
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root), symbol, str(rounds), str(rows), json.dumps(options or {})],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )


def _assert_every_partition_complete(uri: str, rows: int, options: dict | None = None) -> pl.DataFrame:
    table = pl.read_delta(uri, storage_options=options)
    groups = table.group_by("date", "symbol").agg(n=pl.len(), rounds=pl.col("round").n_unique())
    assert groups["n"].to_list() == [rows] * len(groups), "a partition holds a partial or doubled slice"
    assert groups["rounds"].to_list() == [1] * len(groups), "a partition mixes two writes"
    return table


@pytest.mark.slow
def test_a_writer_killed_mid_write_leaves_the_last_complete_version_readable(tmp_path):
    rows = 150_000
    writer = _writer(tmp_path / "lake", "BTCUSDT", 10_000, rows)
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "ready"
    uri = str(tmp_path / "lake" / "gold" / "t")
    deadline = time.monotonic() + 120
    while not (Path(uri) / "_delta_log" / "00000000000000000003.json").exists():
        assert time.monotonic() < deadline and writer.poll() is None, writer.stderr.read() if writer.stderr else ""
        time.sleep(0.05)
    time.sleep(0.2)  # mid-way through a later write (each writes 150k rows)
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    before = _assert_every_partition_complete(uri, rows)
    # Re-running a partition replaces it: still one complete slice per partition, no duplicates.
    rerun = _writer(tmp_path / "lake", "BTCUSDT", 1, rows)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    after = _assert_every_partition_complete(uri, rows)
    # Versions 0-3 had written all three days: each day is still there, once, whole.
    assert before.height == after.height == 3 * rows
    # The re-run (its round 0 writes 2024-01-01) replaced that day's slice (round 3 or later before).
    assert before.filter(pl.col("date") == dt.date(2024, 1, 1))["round"].unique().item() >= 3
    assert after.filter(pl.col("date") == dt.date(2024, 1, 1))["round"].unique().to_list() == [0]


def _slice(root: Path, day: dt.date, symbols: list[str]) -> TableSlice:
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    return TableSlice(
        table="t",
        schema="gold",
        database=str(root),
        partition_dimensions=[
            TablePartitionDimension("date", TimeWindow(start, start + dt.timedelta(days=1))),
            TablePartitionDimension("symbol", symbols),
        ],
    )


def _frame(day: dt.date, symbols: list[str], round_: int, rows: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "date": [day] * rows * len(symbols),
            "symbol": [s for s in symbols for _ in range(rows)],
            "seq": list(range(rows)) * len(symbols),
            "round": [round_] * rows * len(symbols),
        }
    )


def test_a_commit_that_loses_a_race_on_a_disjoint_partition_is_retried(tmp_path, monkeypatch):
    """delta-rs refuses a predicate overwrite whose snapshot is older than a commit that touched the
    same files, even for another symbol ("a concurrent transaction added new data"): replayed
    deterministically with a stale table handle, the write is redone from a fresh read."""
    import resources.lake_io as lake_io

    lake = DeltaLake(root=str(tmp_path / "lake"))
    day = dt.date(2024, 1, 1)
    both = ["BTCUSDT", "ETHUSDT"]
    replace_lake_slice(lake, _slice(tmp_path, day, both), _frame(day, both, 0, 10), ["date", "symbol"])
    uri = lake.uri("gold", "t")
    stale = DeltaTable(uri)  # what a second process read before the first one committed
    first = replace_lake_slice(lake, _slice(tmp_path, day, ["BTCUSDT"]), _frame(day, ["BTCUSDT"], 1, 10))
    assert (first.version, first.attempts) == (1, 1)
    real_open, handed = lake_io._open, []

    def open_stale_first(table_uri, options):
        if not handed:
            handed.append(table_uri)
            return stale
        return real_open(table_uri, options)

    monkeypatch.setattr(lake_io, "_open", open_stale_first)
    second = replace_lake_slice(lake, _slice(tmp_path, day, ["ETHUSDT"]), _frame(day, ["ETHUSDT"], 2, 10))
    assert (second.version, second.attempts) == (2, 2)
    table = pl.read_delta(uri).group_by("symbol").agg(n=pl.len(), round=pl.col("round").max()).sort("symbol")
    assert table.rows() == [("BTCUSDT", 10, 1), ("ETHUSDT", 10, 2)]
    # Without the retry the same stale commit fails: the conflict is real, not a no-op.
    from deltalake import write_deltalake
    from deltalake.exceptions import CommitFailedError

    stale = DeltaTable(uri)
    replace_lake_slice(lake, _slice(tmp_path, day, ["BTCUSDT"]), _frame(day, ["BTCUSDT"], 3, 10))
    with pytest.raises(CommitFailedError, match="concurrent transaction"):
        write_deltalake(
            stale,
            _frame(day, ["ETHUSDT"], 4, 10).to_arrow(),
            mode="overwrite",
            predicate="symbol = 'ETHUSDT'",
        )


@pytest.mark.slow
def test_two_processes_writing_disjoint_partitions_of_one_table_at_once_both_land(tmp_path):
    rounds, rows = 6, 2_000
    # Seed: each day's first file holds both symbols, so both writers rewrite shared files.
    lake = DeltaLake(root=str(tmp_path / "lake"), vacuum_every_commits=0)
    both = ["BTCUSDT", "ETHUSDT"]
    for d in range(3):
        day = dt.date(2024, 1, 1) + dt.timedelta(days=d)
        replace_lake_slice(lake, _slice(tmp_path, day, both), _frame(day, both, -1, rows), ["date", "symbol"])
    writers = {symbol: _writer(tmp_path / "lake", symbol, rounds, rows) for symbol in ("BTCUSDT", "ETHUSDT")}
    outputs = {symbol: w.communicate(timeout=300) for symbol, w in writers.items()}
    for symbol, writer in writers.items():
        assert writer.returncode == 0, outputs[symbol][1]
    uri = str(tmp_path / "lake" / "gold" / "t")
    table = _assert_every_partition_complete(uri, rows)
    # Each writer's last round for each day is what the day holds (rounds i % 3 == d: the last is 3, 4, 5).
    last_rounds = table.group_by("date", "symbol").agg(pl.col("round").first()).sort("symbol", "date")
    assert last_rounds["round"].to_list() == [3, 4, 5, 3, 4, 5]
    assert DeltaTable(uri).version() == 3 + 2 * rounds - 1  # every write one commit, none lost
    retried = sum(int(out.strip().rsplit(" ", 1)[-1]) for out, _ in outputs.values())
    print(f"commits retried after a conflict: {retried}")


# --- the CLI and doctor in lake mode -------------------------------------------------------------


def test_cli_summary_and_interval_refusal_read_the_lake(tmp_path):
    import click

    from cryptolake_assets import cli
    from cryptolake_assets.bronze.klines import bronze_klines
    from cryptolake_assets.doctor import DoctorContext, check_duckdb_lock, check_lake
    from resources.binance import BinanceClient
    from resources.binance_archive import BinanceArchiveClient

    io = _lake_io(tmp_path / "lake")
    assert cli.storage_target(io) is io.lake
    assert cli.storage_label(io.lake) == f"Lake (the working store): {tmp_path / 'lake'}"
    cli.refuse_other_interval(io.lake, "1m")  # no table yet: nothing to refuse
    resources = {
        "io_manager": io,
        "binance": BinanceClient(source="simulated", simulation_seed=7, interval="1h"),
        "binance_archive": BinanceArchiveClient(source="simulated"),
    }
    assert materialize(
        [bronze_klines], resources=resources, tags=_range("2024-02-01|BTCUSDT", "2024-02-02|ETHUSDT")
    ).success
    cli.refuse_other_interval(io.lake, "1h")
    with pytest.raises(click.ClickException, match=r"holds 1h klines; CRYPTOLAKE_INTERVAL=1m would mix"):
        cli.refuse_other_interval(io.lake, "1m")
    lines: list[str] = []
    cli.print_summary(io.lake, echo=lines.append)
    assert lines[1].split() == ["bronze.klines", "96", "4"]  # 2 days × 2 symbols × 24 bars, 4 partitions
    assert len(lines) == 2  # only the tables the lake holds
    context = DoctorContext(None, str(tmp_path / "absent.duckdb"), False, "lake")  # type: ignore[arg-type]
    assert [f.problem for f in check_duckdb_lock(context) + check_lake(context)] == [False, False]
    assert "no DuckDB file" in check_duckdb_lock(context)[0].message
