"""Fear & Greed (alternative.me): values and timestamps arrive as strings, seconds, newest first;
the real year 2024-04-22..2025-04-22 has no entry for 2024-10-26, which silver keeps as a flagged
missing day (never interpolated). A backfill is one request (limit=0 for the full history)."""

import datetime as dt
import json
from pathlib import Path

import httpx
import polars as pl
import pytest
from dagster import materialize

from cryptolake_assets.bronze.fear_greed import bronze_fear_greed
from cryptolake_assets.silver.fear_greed import fear_greed as silver_fear_greed_asset
from cryptolake_assets.silver.fear_greed import silver_fear_greed
from resources.dagster_internals import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from resources.duckdb_io import CryptoLakeDuckDBIOManager, connect_duckdb
from resources.fear_greed import (
    FearGreedClient,
    FearGreedError,
    FearGreedPayloadError,
    fear_greed_entries,
    fear_greed_frame,
    limit_for,
)
from resources.simulated.fear_greed_api import SimulatedFearGreedAPI, classify

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
HISTORY = REALDATA / "fear_greed" / "paleaura01_trading-bot" / "fear_greed.json"
CAPTURED = dt.datetime(2025, 4, 22, 10, 19, 37, tzinfo=dt.UTC)  # 6023 s before the next update


def _payload() -> dict:
    if not REALDATA.exists():
        pytest.skip(f"real data folder {REALDATA} is absent")
    return json.loads(HISTORY.read_text())


def _days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def test_real_history_parses_as_strings_with_the_missing_day_absent():
    bronze = fear_greed_frame(fear_greed_entries(_payload()), ingested_at=CAPTURED)
    assert len(bronze) == 365
    assert bronze["date"].min() == dt.date(2024, 4, 22) and bronze["date"].max() == dt.date(2025, 4, 22)
    assert dt.date(2024, 10, 26) not in bronze["date"].to_list()
    newest = bronze.row(-1, named=True)
    assert (newest["value"], newest["value_classification"], newest["timestamp"], newest["time_until_update"]) == (
        "47",
        "Neutral",
        "1745280000",
        "6023",
    )
    oldest = bronze.row(0, named=True)
    assert (oldest["value"], oldest["value_classification"], oldest["time_until_update"]) == ("73", "Greed", None)
    around = bronze.filter(pl.col("date").is_between(dt.date(2024, 10, 25), dt.date(2024, 10, 27)))
    assert around["value"].to_list() == ["72", "74"]


def test_silver_flags_2024_10_26_and_keeps_the_classification_as_given():
    bronze = fear_greed_frame(fear_greed_entries(_payload()), ingested_at=CAPTURED)
    silver = silver_fear_greed(bronze, _days(dt.date(2024, 4, 22), dt.date(2025, 4, 22)))
    assert len(silver) == 366
    missing = silver.filter(pl.col("is_missing"))
    assert missing["date"].to_list() == [dt.date(2024, 10, 26)]
    assert missing.row(0, named=True)["value"] is None and missing.row(0, named=True)["value_classification"] is None
    last = silver.row(-1, named=True)
    assert (last["value"], last["value_classification"]) == (47, "Neutral")
    assert last["published_at"] == dt.datetime(2025, 4, 22, tzinfo=dt.UTC)
    assert silver["value"].sum() == sum(int(e["value"]) for e in _payload()["data"])
    # The simulator's bands are the real index's: every real (value, classification) pair agrees.
    assert all(classify(int(e["value"])) == e["value_classification"] for e in _payload()["data"])


def test_api_error_and_malformed_entries_are_refused():
    with pytest.raises(FearGreedError, match="reported an error: Invalid limit"):
        fear_greed_entries({"name": "Fear and Greed Index", "data": [], "metadata": {"error": "Invalid limit"}})
    with pytest.raises(FearGreedPayloadError, match="entry #0 value 'n/a'"):
        fear_greed_frame(
            [{"value": "n/a", "value_classification": "Fear", "timestamp": "1745280000"}], ingested_at=CAPTURED
        )
    with pytest.raises(FearGreedPayloadError, match="several entries"):
        entry = {"value": "40", "value_classification": "Fear", "timestamp": "1745280000"}
        fear_greed_frame([entry, entry], ingested_at=CAPTURED)


def test_limit_reaches_back_in_one_request_and_zero_means_full_history():
    assert limit_for(dt.date(2025, 4, 1), dt.date(2025, 4, 22)) == 23
    assert limit_for(dt.date(2017, 1, 1), dt.date(2025, 4, 22)) == 0
    now = dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC)
    api = SimulatedFearGreedAPI(clock=lambda: now)
    client = FearGreedClient().with_transport(httpx.MockTransport(api.handle_request), clock=lambda: now)
    frame = client.history_frame(dt.date(2018, 1, 1))
    assert [r.url.params["limit"] for r in api.requests] == ["0"]
    assert frame["date"].min() == dt.date(2018, 2, 1) and frame["date"].max() == dt.date(2025, 3, 1)
    published = {day for day in _days(dt.date(2018, 2, 1), now.date()) if api.value_on(day) is not None}
    assert set(frame["date"].to_list()) == published and len(published) < len(_days(dt.date(2018, 2, 1), now.date()))


def test_backfill_range_run_writes_bronze_and_flagged_silver_from_one_request(tmp_path):
    payload = _payload()
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json=payload)

    client = FearGreedClient().with_transport(httpx.MockTransport(handler), clock=lambda: CAPTURED)
    database = str(tmp_path / "lake.duckdb")
    resources = {"io_manager": CryptoLakeDuckDBIOManager(database=database), "fear_greed": client}
    tags = {ASSET_PARTITION_RANGE_START_TAG: "2024-10-20", ASSET_PARTITION_RANGE_END_TAG: "2024-10-31"}
    for _ in range(2):  # idempotent re-run
        assert materialize([bronze_fear_greed, silver_fear_greed_asset], resources=resources, tags=tags).success
    assert len(requests) == 2 and requests[0].url.params["limit"] == str(
        (CAPTURED.date() - dt.date(2024, 10, 20)).days + 2
    )
    connection = connect_duckdb(database, read_only=True)
    try:
        assert connection.sql("select count(*) from bronze.fear_greed").fetchall() == [(11,)]
        rows = connection.sql("select date, value, is_missing from silver.fear_greed order by date").fetchall()
    finally:
        connection.close()
    assert len(rows) == 12
    assert [r[0] for r in rows if r[2]] == [dt.date(2024, 10, 26)]
    assert [r[1] for r in rows] == [73, 72, 70, 71, 69, 72, None, 74, 72, 72, 77, 77]
