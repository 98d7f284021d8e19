"""Per-partition metadata of a range run: what it costs to record and to store.

A 2-year × 1-symbol range run through the project's I/O manager (731 partitions, each with its own
row count, replaced rows and time span), then the event-log serializer on that run's batch × 4 (the
silver step's outputs and more): templated (``EventRowSerializer``) against ``serialize_value``
per event, which is what per-partition values would cost without template slots.

    python -m benchmarks.partition_metadata_bench
"""

import datetime as dt
import os
import shutil
import tempfile
import time
from pathlib import Path

import polars as pl

PROJECT_CONFIG = Path(__file__).resolve().parents[1] / "dagster.yaml"
DAYS = 731


def main() -> None:
    home = tempfile.mkdtemp(prefix="cryptolake-bench-")
    shutil.copyfile(PROJECT_CONFIG, os.path.join(home, "dagster.yaml"))
    os.environ["DAGSTER_HOME"] = home
    from dagster import (
        BackfillPolicy,
        DagsterEventType,
        DagsterInstance,
        DailyPartitionsDefinition,
        MultiPartitionsDefinition,
        Output,
        StaticPartitionsDefinition,
        asset,
        materialize,
        serialize_value,
    )

    from cryptolake_assets.metadata import time_span
    from resources.dagster_event_log import BatchedSqliteEventLogStorage
    from resources.dagster_internals import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
    from resources.duckdb_io import CryptoLakeDuckDBIOManager

    first = dt.date(2022, 1, 1)
    parts = MultiPartitionsDefinition(
        {
            "date": DailyPartitionsDefinition(
                start_date=first.isoformat(), end_date=(first + dt.timedelta(days=DAYS)).isoformat()
            ),
            "symbol": StaticPartitionsDefinition(["BTCUSDT", "ETHUSDT"]),
        }
    )

    @asset(
        key=["bench", "bars"],
        partitions_def=parts,
        metadata={"partition_expr": {"date": "date", "symbol": "symbol"}},
        backfill_policy=BackfillPolicy.single_run(),
    )
    def bars(context) -> Output[pl.DataFrame]:
        """24 hourly bars per day of one symbol."""
        times = pl.datetime_range(
            dt.datetime(2022, 1, 1, tzinfo=dt.UTC),
            dt.datetime(2022, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=DAYS, hours=-1),
            "1h",
            eager=True,
        )
        frame = pl.DataFrame({"open_time": times}).with_columns(
            date=pl.col("open_time").dt.date(), symbol=pl.lit("BTCUSDT")
        )
        return Output(frame, metadata={"rows": len(frame), "partitions": DAYS, **time_span(frame, "open_time")})

    batches: list[list] = []
    original = BatchedSqliteEventLogStorage.store_event_batch

    def spy(self, events):
        if events and events[0].dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION:
            batches.append(list(events))
        original(self, events)

    BatchedSqliteEventLogStorage.store_event_batch = spy
    instance = DagsterInstance.get()
    started = time.perf_counter()
    result = materialize(
        [bars],
        instance=instance,
        resources={"io_manager": CryptoLakeDuckDBIOManager(database=os.path.join(home, "lake.duckdb"))},
        tags={
            ASSET_PARTITION_RANGE_START_TAG: f"{first}|BTCUSDT",
            ASSET_PARTITION_RANGE_END_TAG: f"{first + dt.timedelta(days=DAYS - 1)}|BTCUSDT",
        },
    )
    run_seconds = time.perf_counter() - started
    assert result.success
    events = [event for batch in batches for event in batch]
    rows = {e.dagster_event.event_specific_data.materialization.metadata["rows"].value for e in events}
    assert len(events) == DAYS and rows == {24}, (len(events), rows)
    batch = events * 4
    storage = instance.event_log_storage
    started = time.perf_counter()
    templated = storage._event_rows(batch)
    template_seconds = time.perf_counter() - started
    started = time.perf_counter()
    plain = [serialize_value(event) for event in batch]
    plain_seconds = time.perf_counter() - started
    assert [row["event"] for row in templated] == plain
    print(f"range run of {DAYS} partitions (in-process, SQLite instance): {run_seconds:.2f} s, each partition rows=24")
    print(
        f"serializing {len(batch)} per-partition materializations: template {template_seconds:.3f} s, serialize_value each {plain_seconds:.3f} s"
    )
    lazy_read_cost(os.path.join(home, "scan.duckdb"))
    shutil.rmtree(home, ignore_errors=True)


def lazy_read_cost(path: str, repeats: int = 30) -> None:
    """A lazy input's collect opens and closes the file: its cost against a read on an open connection
    (a features-small-sized slice: 3 symbols × 20 days of minute bars, one symbol read)."""
    import duckdb

    from resources.duckdb_io import connect_duckdb, read_connection

    with duckdb.connect(path) as connection:
        connection.execute(
            "CREATE SCHEMA silver; CREATE TABLE silver.ohlcv AS SELECT DATE '2024-01-01' + (i // 4320)::INT AS date, "
            "'S' || (i % 3) AS symbol, i::DOUBLE AS close FROM range(86400) t(i)"
        )
    query = "SELECT * FROM silver.ohlcv WHERE symbol = 'S1'"
    started = time.perf_counter()
    for _ in range(repeats):
        with read_connection(path, {}, 10) as reader:
            reader.sql(query).pl()
    per_collect = (time.perf_counter() - started) / repeats
    connection = connect_duckdb(path)
    started = time.perf_counter()
    for _ in range(repeats):
        connection.sql(query).pl()
    held = (time.perf_counter() - started) / repeats
    connection.close()
    print(
        f"lazy collect: open + read + close {per_collect * 1000:.1f} ms, read on a held connection {held * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
