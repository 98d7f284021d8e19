"""``cryptolake serve``'s app against real uvicorn on 127.0.0.1, reading only a published lake.

silver comes from the simulated exchange through the pipeline (expected bars recomputed from the
simulator itself); gold tables are published directly with hand-made rows, so every value the API
returns is known exactly.
"""

import datetime as dt
import io
import socket
import threading
import time

import httpx
import polars as pl
import pyarrow as pa
import pytest
import uvicorn
from dagster import materialize
from prometheus_client.parser import text_string_to_metric_families

from cryptolake_assets.api.app import create_app
from cryptolake_assets.api.lake_reader import LakeReader
from cryptolake_assets.bronze.klines import bronze_klines
from cryptolake_assets.silver.ohlcv import silver_ohlcv
from resources.binance import BinanceClient
from resources.binance_archive import BinanceArchiveClient
from resources.dagster_internals import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from resources.duckdb_io import CryptoLakeDuckDBIOManager
from resources.lake import DeltaLake, publish
from resources.simulated.market import SimulatedMarket

SEED = 7
DAY1, DAY2 = dt.date(2024, 2, 1), dt.date(2024, 2, 2)
FEATURES = pl.DataFrame(
    {
        "date": [DAY1, DAY2, DAY1, DAY2],
        "symbol": ["BTCUSDT", "BTCUSDT", "ETHUSDT", "ETHUSDT"],
        "close": [42000.5, 43000.25, 2300.0, 2350.0],
        "return_1d": [None, 43000.25 / 42000.5 - 1, None, 2350.0 / 2300.0 - 1],
    }
)
CORRELATIONS = pl.DataFrame(
    {
        "date": [DAY2, DAY2, DAY2],
        "symbol_a": ["BTCUSDT", "BTCUSDT", "ETHUSDT"],
        "symbol_b": ["ETHUSDT", "SOLUSDT", "SOLUSDT"],
        "corr_30d": [0.8, 0.5, None],
    }
)
MARKET_DAILY = pl.DataFrame({"date": [DAY1, DAY2], "total_quote_volume": [1.5e9, 2.5e9], "breadth": [0.5, 1.0]})
MARKET_OVERVIEW = pl.DataFrame({"date": [DAY2], "fear_greed": [72], "label": ["Greed"]})


def _ms(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC).timestamp() * 1000)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    lake = DeltaLake(root=str(root / "lake"))
    resources = {
        "io_manager": CryptoLakeDuckDBIOManager(database=str(root / "c.duckdb"), lake=lake),
        "binance": BinanceClient(source="simulated", simulation_seed=SEED),
        "binance_archive": BinanceArchiveClient(source="simulated"),
    }
    tags = {ASSET_PARTITION_RANGE_START_TAG: f"{DAY1}|BTCUSDT", ASSET_PARTITION_RANGE_END_TAG: f"{DAY2}|ETHUSDT"}
    assert materialize([bronze_klines, silver_ohlcv], resources=resources, tags=tags).success
    for name, frame in (
        ("daily_features", FEATURES),
        ("correlations", CORRELATIONS),
        ("market_daily", MARKET_DAILY),
        ("market_overview", MARKET_OVERVIEW),
    ):
        publish(lake.uri("gold", name), frame, predicate=None)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(LakeReader(lake.root, refresh_seconds=0.0), max_range_days=31)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        yield client, lake
    server.should_exit = True
    thread.join(timeout=10)


def test_symbols(api):
    client, _ = api
    response = client.get("/v1/symbols")
    assert response.status_code == 200
    assert response.json() == [{"symbol": "BTCUSDT"}, {"symbol": "ETHUSDT"}]


def test_bars_equal_the_simulated_exchange(api):
    client, _ = api
    response = client.get("/v1/bars", params={"symbol": "ETHUSDT", "start": str(DAY2), "end": str(DAY2)})
    assert response.status_code == 200
    rows = response.json()
    expected = SimulatedMarket(seed=SEED).klines("ETHUSDT", "1h", _ms(DAY2), _ms(DAY2 + dt.timedelta(days=1)))
    assert len(rows) == len(expected) == 24
    assert [r["close"] for r in rows] == [float(k[4]) for k in expected]
    assert [r["volume"] for r in rows] == [float(k[5]) for k in expected]
    assert all(r["date"] == "2024-02-02" and r["symbol"] == "ETHUSDT" for r in rows)


def test_features_json_csv_and_arrow(api):
    client, _ = api
    params = {"symbol": "BTCUSDT", "start": str(DAY1), "end": str(DAY2)}
    rows = client.get("/v1/features", params=params).json()
    assert rows == [
        {"date": "2024-02-01", "symbol": "BTCUSDT", "close": 42000.5, "return_1d": None},
        {"date": "2024-02-02", "symbol": "BTCUSDT", "close": 43000.25, "return_1d": 43000.25 / 42000.5 - 1},
    ]
    csv = client.get("/v1/features", params={**params, "format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[:2] == ["date,symbol,close,return_1d", "2024-02-01,BTCUSDT,42000.5,"]
    arrow = client.get("/v1/features", params={**params, "format": "arrow"})
    table = pa.ipc.open_stream(io.BytesIO(arrow.content)).read_all()
    assert table.column("close").to_pylist() == [42000.5, 43000.25]


def test_correlations_matrix(api):
    client, _ = api
    body = client.get("/v1/correlations", params={"date": str(DAY2)}).json()
    assert body == {
        "date": "2024-02-02",
        "symbols": ["BTCUSDT", "ETHUSDT", "SOLUSDT"],
        "matrix": [[1.0, 0.8, 0.5], [0.8, 1.0, None], [0.5, None, 1.0]],
    }


def test_market(api):
    client, _ = api
    body = client.get("/v1/market", params={"date": str(DAY2)}).json()
    assert body == {
        "date": "2024-02-02",
        "market_daily": [{"date": "2024-02-02", "total_quote_volume": 2.5e9, "breadth": 1.0}],
        "market_overview": [{"date": "2024-02-02", "fear_greed": 72, "label": "Greed"}],
    }


@pytest.mark.parametrize(
    ("path", "params", "status", "parameter"),
    [
        ("/v1/bars", {"symbol": "DOGEUSDT", "start": "2024-02-01", "end": "2024-02-02"}, 404, "symbol"),
        ("/v1/bars", {"symbol": "BTCUSDT", "start": "2024-02-30", "end": "2024-03-02"}, 400, "start"),
        ("/v1/bars", {"symbol": "BTCUSDT", "start": "2024-02-03", "end": "2024-02-01"}, 400, "start"),
        ("/v1/bars", {"symbol": "BTCUSDT", "start": "2024-01-01", "end": "2024-03-01"}, 400, "end"),
        ("/v1/bars", {"start": "2024-02-01", "end": "2024-02-02"}, 422, "symbol"),
        ("/v1/features", {"symbol": "BTCUSDT", "start": "2024-02-01"}, 422, "end"),
        (
            "/v1/features",
            {"symbol": "BTCUSDT", "start": "2024-02-01", "end": "2024-02-02", "format": "xml"},
            400,
            "format",
        ),
        ("/v1/correlations", {"date": "yesterday"}, 400, "date"),
        ("/v1/correlations", {"date": "2023-01-01"}, 404, "date"),
        ("/v1/market", {}, 422, "date"),
        ("/v1/market", {"date": "2030-01-01"}, 404, "date"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_parameter(api, path, params, status, parameter):
    client, _ = api
    response = client.get(path, params=params)
    assert response.status_code == status, response.text
    assert response.json()["parameter"] == parameter


def test_health_and_metrics(api):
    client, _ = api
    health = client.get("/v1/health").json()
    assert health["layers"]["silver"]["newest_partition"] == "2024-02-02"
    assert health["layers"]["silver"]["state"] == "stale"  # 2024 data is long overdue
    assert health["layers"]["gold"]["newest_partition"] == "2024-02-02"
    assert health["status"] == "degraded"
    client.get("/v1/symbols")
    text = client.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert "cryptolake_api_requests" in families and "cryptolake_api_request_seconds" in families
    counts = {
        (s.labels["route"], s.labels["status"]): s.value
        for s in families["cryptolake_api_requests"].samples
        if s.name == "cryptolake_api_requests_total"
    }
    assert counts[("/v1/symbols", "200")] >= 1
    lags = {s.labels["layer"]: s.value for s in families["cryptolake_lake_freshness_lag_seconds"].samples}
    end_of_day2 = dt.datetime(2024, 2, 3, tzinfo=dt.UTC)
    assert lags["silver"] == pytest.approx((dt.datetime.now(dt.UTC) - end_of_day2).total_seconds(), abs=60)


def test_new_version_is_served_after_a_publish(api):
    client, lake = api
    params = {"symbol": "ETHUSDT", "start": str(DAY1), "end": str(DAY1)}
    assert client.get("/v1/features", params=params).json()[0]["close"] == 2300.0
    changed = FEATURES.filter((pl.col("date") == DAY1) & (pl.col("symbol") == "ETHUSDT")).with_columns(
        close=pl.lit(2301.0)
    )
    publish(lake.uri("gold", "daily_features"), changed, predicate="date = '2024-02-01' AND symbol = 'ETHUSDT'")
    # The new version is loaded in the background; requests meanwhile get the previous complete one.
    seen = set()
    deadline = time.monotonic() + 10
    while 2301.0 not in seen and time.monotonic() < deadline:
        response = client.get("/v1/features", params=params)
        seen.add(response.json()[0]["close"])
        time.sleep(0.02)
    assert seen <= {2300.0, 2301.0} and 2301.0 in seen
    assert int(response.headers["X-Lake-Version"]) == 1


def test_docs_and_openapi(api):
    client, _ = api
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/symbols", "/v1/bars", "/v1/features", "/v1/correlations", "/v1/market", "/v1/health"} <= set(paths)


def test_reader_memoises_per_version_and_never_blocks_on_a_cached_lookup(tmp_path):
    uri = str(tmp_path / "lake" / "gold" / "daily_features")
    publish(uri, FEATURES, predicate=None)
    reader = LakeReader(str(tmp_path / "lake"), refresh_seconds=0.0)
    calls = []

    def closes(frame: pl.DataFrame) -> list[float]:
        calls.append(frame.height)
        return frame.filter(pl.col("symbol") == "ETHUSDT").sort("date")["close"].to_list()

    assert reader.cached("gold", "daily_features", "eth") is None  # not loaded: the caller must query
    assert reader.query("gold", "daily_features", "eth", closes) == (0, [2300.0, 2350.0])
    assert reader.cached("gold", "daily_features", "eth") == (0, [2300.0, 2350.0])
    assert reader.query("gold", "daily_features", "eth", closes) == (0, [2300.0, 2350.0])
    assert calls == [4]  # computed once for version 0
    publish(
        uri,
        FEATURES.filter(pl.col("symbol") == "ETHUSDT").with_columns(close=pl.col("close") + 1),
        predicate="symbol = 'ETHUSDT'",
    )
    deadline = time.monotonic() + 10
    while reader.snapshot("gold", "daily_features")[0] != 1:
        assert time.monotonic() < deadline, "version 1 was not loaded"
        time.sleep(0.01)
    assert reader.cached("gold", "daily_features", "eth") is None  # version 1 not computed yet
    assert reader.query("gold", "daily_features", "eth", closes) == (1, [2301.0, 2351.0])
    assert calls == [4, 4]
    assert reader.snapshot("gold", "daily_features")[1].columns == FEATURES.columns  # the Delta schema's order


def test_health_lists_failing_checks_from_the_lake(api):
    client, lake = api
    from cryptolake_assets.quality.lake_results import CHECK_RESULTS_SCHEMA

    at = dt.datetime(2024, 2, 3, 1, 0, tzinfo=dt.UTC)
    row = {
        "layer": "silver",
        "asset": "silver/ohlcv",
        "severity": "ERROR",
        "rows_checked": 24,
        "description": "",
        "sample": None,
        "run_id": "r1",
        "evaluated_at": at,
    }
    results = pl.DataFrame(
        [
            {
                **row,
                "date": DAY1,
                "symbol": "BTCUSDT",
                "check_name": "unique_symbol_open_time",
                "passed": False,
                "failing_rows": 2,
            },
            {
                **row,
                "date": DAY2,
                "symbol": "BTCUSDT",
                "check_name": "unique_symbol_open_time",
                "passed": False,
                "failing_rows": 1,
            },
            {
                **row,
                "date": DAY2,
                "symbol": "ETHUSDT",
                "check_name": "unique_symbol_open_time",
                "passed": True,
                "failing_rows": 0,
            },
            {
                **row,
                "date": DAY2,
                "symbol": "ETHUSDT",
                "check_name": "complete_bars",
                "passed": False,
                "failing_rows": 3,
                "severity": "WARN",
            },
            {
                **row,
                "date": DAY2,
                "symbol": None,
                "check_name": "schema",
                "passed": True,
                "failing_rows": 0,
                "layer": "gold",
                "asset": "gold/market_daily",
            },
        ],
        schema=CHECK_RESULTS_SCHEMA,
    )
    publish(lake.uri("quality", "check_results"), results, predicate=None)
    health = client.get("/v1/health").json()
    assert health["layers"]["gold"]["failing_checks"] == []
    assert health["layers"]["silver"]["failing_checks"] == [
        {
            "asset": "silver/ohlcv",
            "check_name": "complete_bars",
            "severity": "WARN",
            "failing_partitions": 1,
            "failing_rows": 3,
            "newest_failing": ["2024-02-02|ETHUSDT"],
            "last_evaluated_at": "2024-02-03T01:00:00+00:00",
        },
        {
            "asset": "silver/ohlcv",
            "check_name": "unique_symbol_open_time",
            "severity": "ERROR",
            "failing_partitions": 2,
            "failing_rows": 3,
            "newest_failing": ["2024-02-02|BTCUSDT", "2024-02-01|BTCUSDT"],
            "last_evaluated_at": "2024-02-03T01:00:00+00:00",
        },
    ]
    assert health["status"] == "degraded"
