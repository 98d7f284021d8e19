"""``cryptolake doctor`` finds a lake table left behind its DuckDB table (a run killed between its
DuckDB commit and its Delta publish) and ``--fix`` republishes it in one Delta commit."""

import datetime as dt

import duckdb
import polars as pl
from deltalake import DeltaTable

from cryptolake_assets.doctor import DoctorContext, check_lake
from resources.lake import publish


def test_stale_lake_table_is_found_and_republished(tmp_path, monkeypatch):
    database, lake = tmp_path / "lake.duckdb", tmp_path / "published"
    monkeypatch.setenv("CRYPTOLAKE_LAKE", str(lake))
    rows = pl.DataFrame(
        {
            "date": [dt.date(2024, 1, 1)] * 2 + [dt.date(2024, 1, 2)],
            "symbol": ["BTCUSDT", "ETHUSDT", "BTCUSDT"],
            "close": [1.0, 2.0, 3.0],
        }
    )
    connection = duckdb.connect(str(database))
    connection.execute("CREATE SCHEMA silver")
    connection.register("rows", rows.to_arrow())
    connection.execute("CREATE TABLE silver.ohlcv AS SELECT * FROM rows")
    connection.execute("CREATE SCHEMA bronze")
    connection.execute("CREATE TABLE bronze.klines AS SELECT * FROM rows")  # bronze is not published
    connection.close()
    publish(str(lake / "silver" / "ohlcv"), rows.head(2), predicate=None)  # the 2024-01-02 publish never happened

    [finding] = check_lake(DoctorContext(None, str(database), fix=False))
    assert finding.problem
    assert finding.message.startswith("lake table silver/ohlcv: version 0 holds 2 rows, DuckDB holds 3")

    [fixed] = check_lake(DoctorContext(None, str(database), fix=True))
    assert (
        not fixed.problem
        and fixed.message.startswith("fixed: lake table silver/ohlcv")
        and fixed.message.endswith("republished as version 1")
    )
    table = DeltaTable(str(lake / "silver" / "ohlcv"))
    assert pl.from_arrow(table.to_pyarrow_table()).sort("date", "symbol").equals(rows.sort("date", "symbol"))

    [ok] = check_lake(DoctorContext(None, str(database), fix=False))
    assert not ok.problem and ok.message == "lake table silver/ohlcv: version 1, 3 rows, as in DuckDB"
