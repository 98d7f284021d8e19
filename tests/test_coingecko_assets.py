"""CoinGecko's markets endpoint has no history: a run stores today's snapshot under today's
partition, keeps the snapshots earlier runs captured on other days of its window, and a backfill of
past dates fetches and invents nothing."""

import datetime as dt

import httpx
from dagster import materialize

from cryptolake_assets.bronze.coingecko_markets import bronze_coingecko_markets
from cryptolake_assets.gold.dim_symbol_market import dim_symbol_market
from cryptolake_assets.silver.coingecko_markets import coingecko_markets
from partitions import load_universe
from resources.coingecko import CoinGeckoClient
from resources.dagster_internals import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from resources.duckdb_io import CryptoLakeDuckDBIOManager, connect_duckdb
from resources.simulated.coingecko_api import SimulatedCoinGeckoAPI

ASSETS = [bronze_coingecko_markets, coingecko_markets]


def _run(database: str, now: dt.datetime, first: str, last: str, api: SimulatedCoinGeckoAPI, selection=None) -> None:
    client = CoinGeckoClient().with_transport(httpx.MockTransport(api.handle_request), clock=lambda: now)
    resources = {"io_manager": CryptoLakeDuckDBIOManager(database=database), "coingecko": client}
    tags = {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last} if first else {}
    assert materialize(
        [*ASSETS, dim_symbol_market], resources=resources, tags=tags, selection=selection or ASSETS
    ).success


def _days(database: str, table: str) -> list[tuple]:
    connection = connect_duckdb(database, read_only=True)
    try:
        return connection.sql(f"select date, count(*) from {table} group by date order by date").fetchall()
    finally:
        connection.close()


def test_snapshots_accumulate_by_capture_day_and_past_backfill_invents_nothing(tmp_path, monkeypatch):
    database = str(tmp_path / "lake.duckdb")
    monkeypatch.setenv("CRYPTOLAKE_DUCKDB", database)
    coins = len({info.coingecko_id for info in load_universe()})
    day1 = dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC)
    day2 = dt.datetime(2025, 3, 2, 9, tzinfo=dt.UTC)
    api = SimulatedCoinGeckoAPI(clock=lambda: day1)
    _run(database, day1, "2025-02-25", "2025-03-01", api)
    assert _days(database, "bronze.coingecko_markets") == [(dt.date(2025, 3, 1), coins)]
    assert len(api.requests) == 1

    api2 = SimulatedCoinGeckoAPI(clock=lambda: day2)
    _run(database, day2, "2025-02-25", "2025-03-02", api2)  # window covers day 1 again: kept, not emptied
    assert _days(database, "bronze.coingecko_markets") == [(dt.date(2025, 3, 1), coins), (dt.date(2025, 3, 2), coins)]
    assert _days(database, "silver.coingecko_markets") == [(dt.date(2025, 3, 1), coins), (dt.date(2025, 3, 2), coins)]

    api3 = SimulatedCoinGeckoAPI(clock=lambda: day2)
    _run(database, day2, "2024-01-01", "2024-01-31", api3)  # past dates only
    assert api3.requests == []
    assert len(_days(database, "bronze.coingecko_markets")) == 2

    _run(database, day2, "", "", api3, selection=[dim_symbol_market])
    connection = connect_duckdb(database, read_only=True)
    try:
        btc = connection.sql(
            "select snapshot_date, market_cap_rank, max_supply, circulating_supply from gold.dim_symbol_market where symbol = 'BTCUSDT'"
        ).fetchall()
    finally:
        connection.close()
    assert btc == [(dt.date(2025, 3, 2), 1, 21_000_000.0, 19_850_000.0)]


def test_snapshots_are_kept_in_the_io_managers_database_not_the_environments(tmp_path, monkeypatch):
    """The I/O manager writes a configured database while CRYPTOLAKE_DUCKDB names another file:
    earlier snapshots are read from the database being written, so a range run keeps them."""
    configured = str(tmp_path / "configured.duckdb")
    monkeypatch.setenv("CRYPTOLAKE_DUCKDB", str(tmp_path / "elsewhere.duckdb"))
    coins = len({info.coingecko_id for info in load_universe()})
    day1 = dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC)
    day2 = dt.datetime(2025, 3, 2, 9, tzinfo=dt.UTC)
    _run(configured, day1, "2025-02-27", "2025-03-01", SimulatedCoinGeckoAPI(clock=lambda: day1))
    _run(configured, day2, "2025-02-27", "2025-03-02", SimulatedCoinGeckoAPI(clock=lambda: day2))
    assert _days(configured, "bronze.coingecko_markets") == [(dt.date(2025, 3, 1), coins), (dt.date(2025, 3, 2), coins)]
    assert not (tmp_path / "elsewhere.duckdb").exists()
