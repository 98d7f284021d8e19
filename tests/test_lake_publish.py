"""The published Delta lake: consistent snapshots for concurrent readers, crash safety, retention.

A reader in another process polls silver/ohlcv while a range backfill rewrites it; every snapshot
must hold each (symbol, date) complete (0 rows or all of them) with DuckDB's values after the run.
"""

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import polars as pl
import pytest
from dagster import materialize
from deltalake import DeltaTable

from cryptolake_assets.bronze.klines import bronze_klines
from cryptolake_assets.silver.ohlcv import silver_ohlcv
from resources.binance import BinanceClient
from resources.binance_archive import BinanceArchiveClient
from resources.dagster_internals import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from resources.duckdb_io import CryptoLakeDuckDBIOManager, as_utc, connect_duckdb
from resources.lake import DeltaLake, publish

SEED = 7
SYMBOLS = ("BTCUSDT", "ETHUSDT")
FIRST, LAST = dt.date(2024, 2, 1), dt.date(2024, 2, 6)
ASSETS = [bronze_klines, silver_ohlcv]

READER = textwrap.dedent(
    """
    import json, sys, time
    import polars as pl
    from deltalake import DeltaTable
    uri, out, stop = sys.argv[1], sys.argv[2], sys.argv[3]
    import os
    with open(out, "w") as sink:
        while not os.path.exists(stop):
            table = DeltaTable(uri)
            frame = pl.from_arrow(table.to_pyarrow_table())
            groups = (
                frame.sort("open_time").group_by("symbol", "date")
                .agg(n=pl.len(), close=pl.col("close").sum(), volume=pl.col("volume").sum())
            )
            sink.write(json.dumps({"version": table.version(), "groups": [
                [r["symbol"], str(r["date"]), r["n"], r["close"], r["volume"]] for r in groups.iter_rows(named=True)
            ]}) + "\\n")
            sink.flush()
    """
)


def _resources(duckdb_path, lake: DeltaLake) -> dict:
    return {
        "io_manager": CryptoLakeDuckDBIOManager(database=str(duckdb_path), lake=lake),
        "binance": BinanceClient(source="simulated", simulation_seed=SEED),
        "binance_archive": BinanceArchiveClient(source="simulated"),
    }


def _range_tags(first: dt.date, last: dt.date) -> dict[str, str]:
    return {
        ASSET_PARTITION_RANGE_START_TAG: f"{first}|{SYMBOLS[0]}",
        ASSET_PARTITION_RANGE_END_TAG: f"{last}|{SYMBOLS[-1]}",
    }


def _duckdb_groups(path) -> dict[tuple[str, str], tuple[int, float, float]]:
    with connect_duckdb(str(path), read_only=True) as con:
        frame = con.sql("select * from silver.ohlcv").pl()
    groups = (
        frame.sort("open_time")
        .group_by("symbol", "date")
        .agg(n=pl.len(), close=pl.col("close").sum(), volume=pl.col("volume").sum())
    )
    return {(r["symbol"], str(r["date"])): (r["n"], r["close"], r["volume"]) for r in groups.iter_rows(named=True)}


@pytest.mark.slow  # a range backfill with a reader process polling the lake (~15 s)
def test_reader_sees_only_complete_partitions_during_backfill(tmp_path):
    lake = DeltaLake(root=str(tmp_path / "lake"))
    duckdb_path = tmp_path / "cryptolake.duckdb"
    # Seed the table with the first half, then backfill the whole range (rewrites + new days) twice.
    mid = FIRST + dt.timedelta(days=2)
    assert materialize(ASSETS, resources=_resources(duckdb_path, lake), tags=_range_tags(FIRST, mid)).success
    uri = lake.uri("silver", "ohlcv")
    out, stop = tmp_path / "snapshots.jsonl", tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, "-c", READER, uri, str(out), str(stop)])
    try:
        time.sleep(1.0)
        for _ in range(2):
            for day in range((LAST - FIRST).days + 1):
                first = FIRST + dt.timedelta(days=day)
                result = materialize(ASSETS, resources=_resources(duckdb_path, lake), tags=_range_tags(first, first))
                assert result.success
        time.sleep(0.5)
    finally:
        stop.touch()
        assert reader.wait(timeout=30) == 0
    expected = _duckdb_groups(duckdb_path)
    assert len(expected) == len(SYMBOLS) * ((LAST - FIRST).days + 1)
    snapshots = [json.loads(line) for line in out.read_text().splitlines()]
    versions = {s["version"] for s in snapshots}
    assert len(snapshots) >= 3 and len(versions) >= 3, (len(snapshots), versions)
    seen: set[tuple[str, str]] = set()
    seeded = {(s, str(mid - dt.timedelta(days=d))) for s in SYMBOLS for d in range(3)}
    for snapshot in snapshots:
        present = set()
        for symbol, date, n, close, volume in snapshot["groups"]:
            assert (n, close, volume) == expected[(symbol, date)], (snapshot["version"], symbol, date)
            present.add((symbol, date))
        # A rewrite never makes published bars vanish, not even for one version (delete + append would).
        assert seeded <= present and seen <= present, (snapshot["version"], sorted((seen | seeded) - present))
        seen |= present
    final = pl.read_delta(uri)
    assert len(final) == sum(v[0] for v in expected.values())
    assert final.unique(["symbol", "open_time"]).height == len(final)  # no duplicate bars


def test_lake_equals_duckdb_for_every_published_table_after_range_run(tmp_path):
    lake = DeltaLake(root=str(tmp_path / "lake"))
    duckdb_path = tmp_path / "cryptolake.duckdb"
    result = materialize(ASSETS, resources=_resources(duckdb_path, lake), tags=_range_tags(FIRST, LAST))
    assert result.success
    with connect_duckdb(str(duckdb_path), read_only=True) as con:
        for table in ("ohlcv", "ohlcv_quarantine"):
            ours = as_utc(con.sql(f"select * from silver.{table}").pl())
            theirs = pl.read_delta(lake.uri("silver", table))
            key = ["symbol", "open_time"] if "open_time" in ours.columns else ours.columns[:2]
            assert theirs.select(ours.columns).sort(key).equals(ours.sort(key)), table
    assert not os.path.exists(lake.uri("bronze", "klines"))  # bronze is not published
    # One Delta commit per output slice: the 12-partition range run made a single version.
    assert DeltaTable(lake.uri("silver", "ohlcv")).version() == 0


CRASHER = textwrap.dedent(
    """
    import sys, datetime as dt
    import polars as pl
    from resources.lake import publish
    uri = sys.argv[1]
    i = 0
    print("ready", flush=True)
    while True:
        i += 1
        day = dt.date(2024, 1, 1) + dt.timedelta(days=i % 3)
        frame = pl.DataFrame({"date": [day] * 200_000, "symbol": ["BTCUSDT"] * 200_000,
                              "value": pl.int_range(0, 200_000, eager=True) * 0 + i})
        publish(uri, frame, predicate=f"date = '{day}'")
    """
)


def test_sigkill_mid_publish_leaves_table_readable_at_a_complete_version(tmp_path):
    uri = str(tmp_path / "lake" / "gold" / "crash")
    for day in range(3):
        d = dt.date(2024, 1, 1) + dt.timedelta(days=day)
        publish(
            uri,
            pl.DataFrame({"date": [d] * 200_000, "symbol": ["BTCUSDT"] * 200_000, "value": [0] * 200_000}),
            predicate=f"date = '{d}'",
        )
    for delay in (0.8, 1.3, 1.9):
        before = DeltaTable(uri).version()
        child = subprocess.Popen(
            [sys.executable, "-c", CRASHER, uri], stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": os.getcwd()}
        )
        assert child.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        table = DeltaTable(uri)
        assert table.version() >= before
        frame = pl.from_arrow(table.to_pyarrow_table())
        # Every date holds exactly one complete write: 200,000 rows of a single value.
        per_day = frame.group_by("date").agg(n=pl.len(), values=pl.col("value").n_unique())
        assert per_day.height == 3
        assert per_day["n"].to_list() == [200_000] * 3 and per_day["values"].to_list() == [1] * 3
        # And the previous version stays readable (time travel works after a crash).
        previous = DeltaTable(uri, version=before)
        assert previous.to_pyarrow_table().num_rows == 600_000


def test_vacuum_keeps_versions_inside_retention_and_drops_older_files(tmp_path):
    uri = str(tmp_path / "t")
    day = dt.date(2024, 1, 1)
    for i in range(4):
        publish(uri, pl.DataFrame({"date": [day], "value": [i]}), predicate=f"date = '{day}'", vacuum_every_commits=0)
    from resources.lake import vacuum

    # A 30-day retention keeps every version (all were written seconds ago).
    assert vacuum(DeltaTable(uri), 30) == []
    assert DeltaTable(uri, version=0).to_pyarrow_table().column("value").to_pylist() == [0]
    # Zero retention removes the three superseded files; the newest version still reads.
    assert len(vacuum(DeltaTable(uri), 0)) == 3
    assert pl.read_delta(uri)["value"].to_list() == [3]


def test_added_column_merges_into_the_table(tmp_path):
    uri = str(tmp_path / "t")
    d1, d2 = dt.date(2024, 1, 1), dt.date(2024, 1, 2)
    publish(uri, pl.DataFrame({"date": [d1, d2], "value": [1, 2]}), predicate=None)
    publish(uri, pl.DataFrame({"date": [d1], "value": [5], "extra": [1.5]}), predicate=f"date = '{d1}'")
    frame = pl.read_delta(uri).sort("date")
    assert frame.select("date", "value", "extra").rows() == [(d1, 5, 1.5), (d2, 2, None)]


def publish_one_commit_per_symbol(uri: str, day: dt.date, symbols: list[str], **options) -> None:
    """One commit (one file in the day's partition) per symbol, as hourly date x symbol runs make;
    symbol i gets value i."""
    for i, symbol in enumerate(symbols):
        publish(
            uri,
            pl.DataFrame({"date": [day], "symbol": [symbol], "value": [i]}),
            predicate=f"date = '{day}' AND symbol = '{symbol}'",
            **options,
        )


def test_every_nth_commit_compacts_and_keeps_time_travel(tmp_path):
    uri = str(tmp_path / "t")
    day = dt.date(2024, 1, 1)
    # One commit per symbol (as hourly daily x symbol runs do): five files in the date partition;
    # the commit at version 4 (4 % 4 == 0) triggers the compaction.
    publish_one_commit_per_symbol(uri, day, ["A", "B", "C", "D", "E"], vacuum_every_commits=4)
    table = DeltaTable(uri)
    assert [h["operation"] for h in table.history(3)] == ["OPTIMIZE", "WRITE", "WRITE"]
    assert len(table.file_uris()) == 1
    assert pl.read_delta(uri).sort("symbol")["value"].to_list() == [0, 1, 2, 3, 4]
    assert sorted(DeltaTable(uri, version=1).to_pyarrow_table().column("symbol").to_pylist()) == ["A", "B"]


def test_a_partition_crowded_by_commits_is_compacted_and_others_are_left_alone(tmp_path):
    """More than MAX_FILES_PER_PARTITION files in a date a publish touched: that date is compacted
    at once (other dates keep their files), with the same rows and time travel intact."""
    from resources.lake import MAX_FILES_PER_PARTITION

    uri = str(tmp_path / "t")
    busy, quiet = dt.date(2024, 1, 2), dt.date(2024, 1, 1)
    publish(uri, pl.DataFrame({"date": [quiet, quiet], "symbol": ["A", "B"], "value": [0, 0]}), predicate=None)
    publish_one_commit_per_symbol(uri, quiet, ["C"])  # a second file on the quiet day
    symbols = [f"S{i}" for i in range(MAX_FILES_PER_PARTITION + 1)]
    publish_one_commit_per_symbol(uri, busy, symbols, vacuum_every_commits=0)
    table = DeltaTable(uri)
    assert table.history(1)[0]["operation"] == "OPTIMIZE"
    per_day = {}
    for file in table.file_uris():
        day = file.split("date=")[1].split("/")[0]
        per_day[day] = per_day.get(day, 0) + 1
    assert per_day == {str(quiet): 2, str(busy): 1}
    stored = pl.read_delta(uri).filter(pl.col("date") == busy).sort("value")
    assert stored["symbol"].to_list() == symbols and stored["value"].to_list() == list(range(len(symbols)))
    before = DeltaTable(uri, version=table.version() - 2).to_pyarrow_table()  # before the last write
    assert before.num_rows == 3 + len(symbols) - 1


def test_a_publish_crowding_more_partitions_than_the_cap_leaves_them_to_the_periodic_compaction(tmp_path, monkeypatch):
    """One run per symbol over many days (the UI's daemon backfill) crowds every day at once: such a
    publish does not rewrite them all (that made each later run 4x slower); the rows are all there and
    the periodic compaction takes them."""
    import resources.lake as lake_module

    monkeypatch.setattr(lake_module, "MAX_PARTITIONS_COMPACTED_PER_PUBLISH", 2)
    uri = str(tmp_path / "t")
    days = [dt.date(2024, 1, d) for d in (1, 2, 3)]  # 3 crowded days > the cap of 2
    symbols = [f"S{i}" for i in range(lake_module.MAX_FILES_PER_PARTITION + 1)]
    for i, symbol in enumerate(symbols):  # one commit per symbol, each writing every day
        frame = pl.DataFrame({"date": days, "symbol": [symbol] * 3, "value": [i] * 3})
        publish(uri, frame, predicate=f"symbol = '{symbol}'", vacuum_every_commits=0)
    table = DeltaTable(uri)
    assert "OPTIMIZE" not in [h["operation"] for h in table.history()]
    assert len(table.file_uris()) == len(symbols) * len(days)
    stored = pl.read_delta(uri).sort("date", "symbol")
    assert stored.height == len(symbols) * len(days)
    assert stored.filter(pl.col("date") == days[0])["symbol"].to_list() == sorted(symbols)

    # Within the cap, the same publish compacts the days it crowded.
    monkeypatch.setattr(lake_module, "MAX_PARTITIONS_COMPACTED_PER_PUBLISH", 3)
    publish(uri, pl.DataFrame({"date": days, "symbol": ["S0"] * 3, "value": [0] * 3}), predicate="symbol = 'S0'")
    table = DeltaTable(uri)
    assert table.history(1)[0]["operation"] == "OPTIMIZE"
    assert len(table.file_uris()) == len(days)
    assert pl.read_delta(uri).height == len(symbols) * len(days)


def test_from_env_binds_credentials_through_envvar(monkeypatch, tmp_path):
    from dagster import EnvVar

    monkeypatch.setenv("CRYPTOLAKE_LAKE", "s3://bucket/lake/")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sec-ret")
    lake = DeltaLake.from_env()
    assert isinstance(lake.aws_secret_access_key, EnvVar)  # the config holds the name, not the secret
    assert lake.uri("gold", "daily_features") == "s3://bucket/lake/gold/daily_features"
    assert lake.options() == {"AWS_ACCESS_KEY_ID": "key-id", "AWS_SECRET_ACCESS_KEY": "sec-ret"}
    monkeypatch.delenv("CRYPTOLAKE_LAKE")
    assert DeltaLake.from_env(str(tmp_path / "lake")).root == str(tmp_path / "lake")


def test_a_failed_publish_after_the_duckdb_commit_is_repaired_by_the_rerun(tmp_path, monkeypatch):
    """The crash order: DuckDB commits first, then the lake. A publish that fails (or a process that
    dies) between the two fails the step and leaves the lake at its previous complete version; the
    next run of the same range republishes, after which the lake equals DuckDB again."""
    import resources.lake as lake_module

    lake = DeltaLake(root=str(tmp_path / "lake"))
    duckdb_path = tmp_path / "cryptolake.duckdb"
    middle = FIRST + dt.timedelta(days=2)
    assert materialize(ASSETS, resources=_resources(duckdb_path, lake), tags=_range_tags(FIRST, middle)).success
    before = DeltaTable(lake.uri("silver", "ohlcv"))
    before_version, before_rows = before.version(), before.to_pyarrow_dataset().count_rows()

    real_publish = lake_module.publish

    def object_store_down(uri, frame, **kwargs):
        if uri.endswith("silver/ohlcv"):
            raise lake_module.LakePublishError(
                f"publishing {len(frame)} rows to {uri} failed (table unchanged): store down"
            )
        return real_publish(uri, frame, **kwargs)

    monkeypatch.setattr(lake_module, "publish", object_store_down)
    failed = materialize(
        ASSETS, resources=_resources(duckdb_path, lake), tags=_range_tags(FIRST, LAST), raise_on_error=False
    )
    assert not failed.success
    assert len({day for _, day in _duckdb_groups(duckdb_path)}) == (LAST - FIRST).days + 1  # DuckDB committed
    after_failure = DeltaTable(lake.uri("silver", "ohlcv"))
    assert (after_failure.version(), after_failure.to_pyarrow_dataset().count_rows()) == (before_version, before_rows)

    monkeypatch.setattr(lake_module, "publish", real_publish)
    assert materialize(ASSETS, resources=_resources(duckdb_path, lake), tags=_range_tags(FIRST, LAST)).success
    with connect_duckdb(str(duckdb_path), read_only=True) as con:
        ours = as_utc(con.sql("select * from silver.ohlcv").pl())
    theirs = pl.read_delta(lake.uri("silver", "ohlcv"))
    assert theirs.select(ours.columns).sort("symbol", "open_time").equals(ours.sort("symbol", "open_time"))
    assert theirs.height > before_rows


def test_publish_returns_the_version_it_committed_and_replaces_only_the_predicate(tmp_path):
    uri = str(tmp_path / "t")
    day1, day2 = dt.date(2024, 1, 1), dt.date(2024, 1, 2)
    first = pl.DataFrame({"date": [day1, day1, day2], "symbol": ["A", "B", "A"], "x": [1.0, 2.0, 3.0]})
    assert publish(uri, first, predicate=None) == 0
    again = pl.DataFrame({"date": [day1], "symbol": ["A"], "x": [10.0]})
    assert publish(uri, again, predicate="date = '2024-01-01' AND symbol = 'A'") == 1
    assert publish(uri, again, predicate="date = '2024-01-01' AND symbol = 'A'") == 2  # idempotent rows
    table = DeltaTable(uri)
    assert table.version() == 2
    rows = pl.from_arrow(table.to_pyarrow_table()).sort("date", "symbol")
    assert rows.rows() == [(day1, "A", 10.0), (day1, "B", 2.0), (day2, "A", 3.0)]
