"""BinanceClient against faked HTTP speaking Binance's wire format.

Real-world quirks pinned down here: REST returns the still-open candle as the last row (it must be
dropped), ``endTime`` is inclusive on open_time, 1000 bars per page, request weight comes back in
``X-MBX-USED-WEIGHT-1M`` per wall-clock minute, 429/418 carry ``Retry-After``, and errors are
``{"code": -1121, "msg": "Invalid symbol."}`` payloads that must not be retried.
"""

import datetime as dt

import httpx
import polars as pl
import pytest
from binance_fakes import (
    REST_JSON,
    FakeClock,
    ScriptedBinance,
    binance_error,
    json_response,
    klines_server,
    synthetic_klines,
)
from dagster import asset, materialize

from resources.binance import (
    BinanceAPIError,
    BinanceClient,
    BinancePayloadError,
    InvalidIntervalError,
    InvalidSymbolError,
)
from resources.kline_format import BRONZE_KLINES_SCHEMA, KlineFormatError

UTC = dt.UTC
JAN15 = dt.datetime(2024, 1, 15, tzinfo=UTC)
JAN16 = dt.datetime(2024, 1, 16, tzinfo=UTC)


def client_for(server, *, clock=None, **config) -> BinanceClient:
    clock = clock or FakeClock(dt.datetime(2024, 2, 1, 12, 0, tzinfo=UTC))
    settings = {"backoff_jitter_seconds": 0.0} | config
    return BinanceClient(**settings).with_transport(server.transport, clock=clock, sleep=clock.sleep)


def realdata(path: str) -> bytes:
    if not REST_JSON.exists():
        pytest.skip(f"real data folder {REST_JSON} is absent (CI always has it)")
    return (REST_JSON / path).read_bytes()


def raw_response(body: bytes) -> httpx.Response:
    return httpx.Response(200, content=body, headers={"X-MBX-USED-WEIGHT-1M": "2"})


def test_real_rest_capture_parses_to_24_bronze_rows():
    server = ScriptedBinance(
        [raw_response(realdata("algo-one_binance-data-downloader/BTCUSDT-1h-2024-01-15.klines.json"))]
    )
    frame = client_for(server).fetch_klines("BTCUSDT", JAN15, JAN16)

    assert frame.schema == pl.Schema(BRONZE_KLINES_SCHEMA)
    assert frame.height == 24
    first, last = frame.row(0, named=True), frame.row(-1, named=True)
    assert (first["open_time"], first["open"], first["close"]) == (1705276800000, "41732.35000000", "42279.75000000")
    assert (last["open_time"], last["open"], last["close"]) == (1705359600000, "42628.00000000", "42511.10000000")
    assert first["quote_asset_volume"] == "102456168.22559890"
    assert frame["date"].unique().to_list() == [dt.date(2024, 1, 15)]
    assert frame["source"].unique().to_list() == ["binance"]
    assert server.params(0) == {
        "symbol": "BTCUSDT",
        "interval": "1h",
        "startTime": "1705276800000",
        "endTime": "1705363199999",
        "limit": "1000",
    }
    assert str(server.requests[0].url).startswith("https://data-api.binance.vision/api/v3/klines?")


def test_unclosed_last_candle_is_dropped():
    server = ScriptedBinance([raw_response(realdata("nautechsystems_nautilus_trader/http_spot_market_klines.json"))])
    client = client_for(server, interval="1m")
    # 2021-10-22 23:12:10 UTC: inside the last candle [23:12:00, 23:12:59.999].
    now = dt.datetime(2021, 10, 22, 23, 12, 10, tzinfo=UTC)
    frame = client.fetch_klines(
        "BTCUSDT", dt.datetime(2021, 10, 22, 23, tzinfo=UTC), dt.datetime(2021, 10, 23, tzinfo=UTC), now=now
    )

    assert frame.height == 9
    assert frame["open_time"].to_list()[-1] == 1634944260000
    assert frame["close"].to_list()[-1] == "60739.85000000"
    # Once that minute is over, the same payload yields all 10 candles.
    later = client.fetch_klines(
        "BTCUSDT",
        dt.datetime(2021, 10, 22, 23, tzinfo=UTC),
        dt.datetime(2021, 10, 23, tzinfo=UTC),
        now=dt.datetime(2021, 10, 22, 23, 13, tzinfo=UTC),
    )
    assert later.height == 10


def test_pagination_requests_consecutive_pages_of_1000():
    start_ms = 1_700_000_040_000  # a minute boundary
    server = ScriptedBinance([klines_server(synthetic_klines(start_ms, 2500, 60_000))])
    client = client_for(server, interval="1m")
    frame = client.fetch_klines(
        "ETHUSDT",
        dt.datetime.fromtimestamp(start_ms / 1000, UTC),
        dt.datetime.fromtimestamp((start_ms + 3000 * 60_000) / 1000, UTC),
        now=dt.datetime(2030, 1, 1, tzinfo=UTC),
    )

    assert [server.params(i)["startTime"] for i in range(len(server.requests))] == [
        str(start_ms),
        str(start_ms + 1000 * 60_000),
        str(start_ms + 2000 * 60_000),
    ]
    assert frame.height == 2500
    assert frame["open_time"].is_sorted() and frame["open_time"].n_unique() == 2500
    assert client.request_count == 3
    assert client.stats()["requests"] == 3


def test_overlapping_rows_are_deduplicated_and_range_is_half_open():
    rows = synthetic_klines(1_700_000_000_000 - 3_600_000, 5, 3_600_000)
    server = ScriptedBinance([json_response(rows + rows[1:3])])  # a server repeating rows
    start = dt.datetime.fromtimestamp(1_700_000_000_000 / 1000, UTC)
    frame = client_for(server).fetch_klines(
        "BTCUSDT", start, start + dt.timedelta(hours=3), now=start + dt.timedelta(days=1)
    )
    assert frame["open_time"].to_list() == [1_700_000_000_000 + i * 3_600_000 for i in range(3)]


def test_pacing_sleeps_until_the_next_minute_when_weight_is_near_the_limit():
    start_ms = 1_700_000_040_000
    rows = synthetic_klines(start_ms, 1500, 60_000)
    serve = klines_server(rows)

    def heavy(request: httpx.Request) -> httpx.Response:
        response = serve(request)
        response.headers["X-MBX-USED-WEIGHT-1M"] = "5399"  # 5399 + 2 > 0.9 * 6000
        return response

    clock = FakeClock(dt.datetime(2024, 1, 15, 10, 20, 45, 250000, tzinfo=UTC))
    server = ScriptedBinance([heavy])
    client = client_for(server, clock=clock, interval="1m")
    frame = client.fetch_klines(
        "BTCUSDT",
        dt.datetime.fromtimestamp(start_ms / 1000, UTC),
        dt.datetime.fromtimestamp((start_ms + 1500 * 60_000) / 1000, UTC),
        now=dt.datetime(2030, 1, 1, tzinfo=UTC),
    )

    assert frame.height == 1500
    assert clock.sleeps == [14.75]
    assert len(server.requests) == 2
    assert client.stats()["pacing_sleeps"] == 1


def test_weight_below_the_safety_line_does_not_sleep():
    clock = FakeClock(dt.datetime(2024, 1, 15, 10, 20, 45, tzinfo=UTC))
    server = ScriptedBinance([json_response([], weight=5398)])
    client = client_for(server, clock=clock)
    client.fetch_klines("BTCUSDT", JAN15, JAN16)
    client.fetch_klines("BTCUSDT", JAN15, JAN16)  # 5398 + 2 = 5400 is still within 0.9 * 6000
    assert clock.sleeps == []
    assert client.used_weight == 5398


@pytest.mark.parametrize("status", [429, 418])
def test_rate_limit_status_waits_retry_after_then_succeeds(status):
    clock = FakeClock(dt.datetime(2024, 2, 1, 12, 0, tzinfo=UTC))
    limited = binance_error(
        status,
        -1003,
        "Too much request weight used; current limit is 6000 request weight per 1 MINUTE.",
        headers={"Retry-After": "3"},
    )
    server = ScriptedBinance([limited, json_response(synthetic_klines(1705276800000, 24, 3_600_000))])
    client = client_for(server, clock=clock)
    frame = client.fetch_klines("BTCUSDT", JAN15, JAN16)
    assert frame.height == 24
    assert clock.sleeps == [3.0]
    assert len(server.requests) == 2
    assert client.stats()["retries"] == 1


def test_retry_after_beyond_the_maximum_fails_without_waiting():
    clock = FakeClock(dt.datetime(2024, 2, 1, 12, 0, tzinfo=UTC))
    server = ScriptedBinance(
        [
            binance_error(
                418,
                -1003,
                "Way too much request weight used; IP banned until 1706875200000.",
                headers={"Retry-After": "86400"},
            )
        ]
    )
    with pytest.raises(BinanceAPIError, match="IP banned") as info:
        client_for(server, clock=clock).fetch_klines("BTCUSDT", JAN15, JAN16)
    assert info.value.status == 418
    assert clock.sleeps == []
    assert len(server.requests) == 1


def test_server_errors_back_off_exponentially_then_succeed():
    clock = FakeClock(dt.datetime(2024, 2, 1, 12, 0, tzinfo=UTC))
    server = ScriptedBinance(
        [
            httpx.Response(500, text="Internal Server Error"),
            httpx.Response(502, text="<html>Bad Gateway</html>"),
            json_response(synthetic_klines(1705276800000, 24, 3_600_000)),
        ]
    )
    client = client_for(server, clock=clock, backoff_base_seconds=1.0)
    assert client.fetch_klines("BTCUSDT", JAN15, JAN16).height == 24
    assert clock.sleeps == [1.0, 2.0]
    assert len(server.requests) == 3


def test_backoff_is_capped_and_jittered_within_bounds():
    clock = FakeClock(dt.datetime(2024, 2, 1, 12, 0, tzinfo=UTC))
    server = ScriptedBinance([httpx.Response(503, text="busy")] * 5 + [json_response([])])
    client = client_for(
        server,
        clock=clock,
        backoff_base_seconds=1.0,
        backoff_max_seconds=5.0,
        backoff_jitter_seconds=0.5,
        max_retries=5,
    )
    assert client.fetch_klines("BTCUSDT", JAN15, JAN16).height == 0
    assert len(clock.sleeps) == 5
    for sleep, floor in zip(clock.sleeps, [1, 2, 4, 5, 5]):
        assert floor <= sleep <= min(floor + 0.5, 5.0)


def test_persistent_server_errors_raise_with_what_was_asked_and_what_came_back():
    clock = FakeClock(dt.datetime(2024, 2, 1, 12, 0, tzinfo=UTC))
    server = ScriptedBinance([httpx.Response(503, text="Service Unavailable")])
    client = client_for(server, clock=clock, max_retries=2)
    with pytest.raises(BinanceAPIError) as info:
        client.fetch_klines("SOLUSDT", JAN15, JAN16)
    message = str(info.value)
    for expected in ("SOLUSDT", "1h", "HTTP 503", "Service Unavailable", "2024-01-15T00:00:00+00:00", "3 attempt"):
        assert expected in message
    assert info.value.status == 503
    assert len(server.requests) == 3
    assert clock.sleeps == [1.0, 2.0]


def test_invalid_symbol_is_not_retried():
    server = ScriptedBinance([binance_error(400, -1121, "Invalid symbol.")])
    with pytest.raises(InvalidSymbolError, match="NOPEUSDT") as info:
        client_for(server).fetch_klines("nopeusdt", JAN15, JAN16)
    assert info.value.code == -1121 and info.value.status == 400
    assert "Invalid symbol." in str(info.value)
    assert len(server.requests) == 1


def test_invalid_interval_names_the_interval():
    server = ScriptedBinance([binance_error(400, -1120, "Invalid interval.")])
    with pytest.raises(InvalidIntervalError, match="'8h'"):
        client_for(server, interval="8h").fetch_klines("BTCUSDT", JAN15, JAN16)
    assert len(server.requests) == 1


def test_other_client_errors_are_not_retried():
    server = ScriptedBinance([binance_error(400, -1100, "Illegal characters found in parameter 'startTime'.")])
    with pytest.raises(BinanceAPIError, match="HTTP 400.*-1100") as info:
        client_for(server).fetch_klines("BTCUSDT", JAN15, JAN16)
    assert type(info.value) is BinanceAPIError
    assert len(server.requests) == 1


def test_unsupported_interval_is_rejected_by_config():
    with pytest.raises(ValueError, match="unsupported interval '1w'"):
        BinanceClient(interval="1w")


@pytest.mark.parametrize(
    "payload, expected",
    [
        ([[1705276800000, "1", "2", "0.5", "1.5", "10", 1705280399999, "15", 3, "5", "7"]], "kline #0 has 11 fields"),
        ({"code": 0, "msg": "ok"}, "expected a JSON list of klines, got dict"),
        ([["x", "1", "2", "0.5", "1.5", "10", 1705280399999, "15", 3, "5", "7", "0"]], "malformed kline"),
    ],
)
def test_malformed_payload_is_a_clear_error(payload, expected):
    server = ScriptedBinance([json_response(payload)])
    with pytest.raises(BinancePayloadError, match=expected) as info:
        client_for(server).fetch_klines("BTCUSDT", JAN15, JAN16)
    assert "BTCUSDT 1h klines [2024-01-15T00:00:00+00:00, 2024-01-16T00:00:00+00:00)" in str(info.value)
    assert isinstance(info.value, KlineFormatError)
    assert len(server.requests) == 1


def test_non_json_body_is_a_clear_error():
    server = ScriptedBinance([httpx.Response(200, text="<html>captive portal</html>")])
    with pytest.raises(BinancePayloadError, match="non-JSON body: <html>captive portal"):
        client_for(server).fetch_klines("BTCUSDT", JAN15, JAN16)


def test_timeout_then_success():
    clock = FakeClock(dt.datetime(2024, 2, 1, 12, 0, tzinfo=UTC))
    server = ScriptedBinance(
        [
            httpx.ReadTimeout("read timed out"),
            httpx.ConnectError("connection refused"),
            json_response(synthetic_klines(1705276800000, 24, 3_600_000)),
        ]
    )
    client = client_for(server, clock=clock)
    assert client.fetch_klines("BTCUSDT", JAN15, JAN16).height == 24
    assert clock.sleeps == [1.0, 2.0]


def test_no_data_in_range_is_an_empty_frame():
    server = ScriptedBinance([json_response([])])
    frame = client_for(server).fetch_klines(
        "PEPEUSDT", dt.datetime(2020, 1, 1, tzinfo=UTC), dt.datetime(2020, 1, 2, tzinfo=UTC)
    )
    assert frame.height == 0 and frame.schema == pl.Schema(BRONZE_KLINES_SCHEMA)
    assert len(server.requests) == 1


def test_naive_datetimes_are_rejected():
    with pytest.raises(ValueError, match="naive datetime"):
        client_for(ScriptedBinance([json_response([])])).fetch_klines("BTCUSDT", dt.datetime(2024, 1, 15), JAN16)


def test_ping_server_time_and_exchange_symbols():
    server = ScriptedBinance(
        [
            json_response({}, weight=1),
            json_response({"serverTime": 1705276800123}, weight=2),
            json_response(
                {
                    "timezone": "UTC",
                    "symbols": [{"symbol": "BTCUSDT", "status": "TRADING"}, {"symbol": "BUSDUSDT", "status": "BREAK"}],
                },
                weight=22,
            ),
        ]
    )
    client = client_for(server)
    assert client.ping() is None
    assert client.server_time() == dt.datetime(2024, 1, 15, 0, 0, 0, 123000, tzinfo=UTC)
    assert client.exchange_symbols() == {"BTCUSDT"}
    assert [r.url.path for r in server.requests] == ["/api/v3/ping", "/api/v3/time", "/api/v3/exchangeInfo"]
    assert client.used_weight == 22


def test_from_env_reads_source_and_url(monkeypatch):
    monkeypatch.setenv("CRYPTOLAKE_SOURCE", "simulated")
    monkeypatch.setenv("CRYPTOLAKE_BINANCE_URL", "http://127.0.0.1:8999/")
    client = BinanceClient.from_env()
    assert (client.source, client.base_url) == ("simulated", "http://127.0.0.1:8999")
    monkeypatch.delenv("CRYPTOLAKE_SOURCE")
    monkeypatch.delenv("CRYPTOLAKE_BINANCE_URL")
    assert (BinanceClient.from_env().source, BinanceClient.from_env().base_url) == (
        "binance",
        "https://data-api.binance.vision",
    )
    monkeypatch.setenv("CRYPTOLAKE_SOURCE", "kraken")
    with pytest.raises(ValueError, match="CRYPTOLAKE_SOURCE='kraken'"):
        BinanceClient.from_env()


def test_simulated_source_runs_the_same_client_against_the_simulator():
    clock = FakeClock(dt.datetime(2024, 3, 1, 12, 0, tzinfo=UTC))
    client = BinanceClient(source="simulated").with_transport(clock=clock, sleep=clock.sleep)
    frame = client.fetch_klines("BTCUSDT", JAN15, JAN16)
    assert frame.height == 24
    assert frame["source"].unique().to_list() == ["simulated"]
    assert frame["open_time"].to_list() == [1705276800000 + i * 3_600_000 for i in range(24)]
    # Two years of hourly bars take 18 requests of 1000.
    two_years = client.fetch_klines("ETHUSDT", dt.datetime(2022, 1, 1, tzinfo=UTC), dt.datetime(2024, 1, 1, tzinfo=UTC))
    assert client.request_count == 1 + 18
    assert two_years["open_time"].is_sorted() and two_years["open_time"].is_unique().all()


def test_injected_transport_survives_dagster_resource_initialisation():
    server = ScriptedBinance([json_response(synthetic_klines(1705276800000, 24, 3_600_000))])
    client = client_for(server)

    @asset
    def klines_count(binance: BinanceClient) -> int:
        return binance.fetch_klines("BTCUSDT", JAN15, JAN16).height

    result = materialize([klines_count], resources={"binance": client})
    assert result.success
    assert result.output_for_node("klines_count") == 24
    assert len(server.requests) == 1
