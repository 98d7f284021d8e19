"""CoinGecko /coins/markets: real snapshots (plain list and the saved {"updated", "data"} shape)
carry nulls (max_supply, 24 h fields of stale coins) and roi as an object or null; the client pages,
sends the right key header for the host, backs off on 429 and never leaks the key."""

import datetime as dt
import json
from pathlib import Path

import httpx
import polars as pl
import pytest

from cryptolake_assets.silver.coingecko_markets import silver_coingecko_markets
from partitions import SymbolInfo
from resources.coingecko import (
    BRONZE_COINGECKO_SCHEMA,
    MARKET_FIELDS,
    CoinGeckoAuthError,
    CoinGeckoClient,
    CoinGeckoPayloadError,
    coingecko_markets_frame,
    split_snapshot,
)
from resources.http_source import SourceHTTPError
from resources.simulated.coingecko_api import RATE_LIMIT_MESSAGE, SimulatedCoinGeckoAPI

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
PLAIN = REALDATA / "coingecko" / "gusgoros_API_DOCKER_PGADMIN" / "coins_markets.json"
WRAPPED = REALDATA / "coingecko" / "ddbbooss_market-terminal" / "crypto_markets.json"
NOW = dt.datetime(2025, 3, 1, 12, 30, tzinfo=dt.UTC)
INGESTED = dt.datetime(2026, 5, 3, 7, 45, 46, tzinfo=dt.UTC)


def _realdata(path: Path):
    if not REALDATA.exists():
        pytest.skip(f"real data folder {REALDATA} is absent")
    return json.loads(path.read_text())


def _info(symbol: str, coingecko_id: str) -> SymbolInfo:
    return SymbolInfo(symbol, symbol[:-4], symbol, "Layer 1", coingecko_id, dt.date(2017, 8, 17), None, False)


def test_real_plain_list_parses_all_26_fields_with_nulls():
    coins, updated = split_snapshot(_realdata(PLAIN))
    frame = coingecko_markets_frame(coins, snapshot_date=dt.date(2023, 1, 2), ingested_at=INGESTED)
    assert updated is None
    assert list(coins[0]) == list(MARKET_FIELDS)
    assert frame.schema == pl.Schema(BRONZE_COINGECKO_SCHEMA)
    assert len(BRONZE_COINGECKO_SCHEMA) == 26 + 2
    assert frame["id"].to_list() == ["bitcoin", "ethereum", "tether", "usd-coin", "binancecoin"]
    btc = frame.row(0, named=True)
    assert btc["market_cap"] == 322053364166.0 and btc["market_cap_rank"] == 1
    assert btc["circulating_supply"] == 19250368.0 and btc["max_supply"] == 21000000.0
    assert btc["fully_diluted_valuation"] == 351324226502.0
    assert btc["roi"] is None and btc["ath_date"] == "2021-11-10T14:24:11.849Z"
    eth = frame.row(1, named=True)
    assert eth["max_supply"] is None
    assert eth["roi"] == {"times": 96.35826775153528, "currency": "btc", "percentage": 9635.826775153528}
    assert frame["max_supply"].null_count() == 3


def test_real_wrapped_snapshot_keeps_real_nulls_and_ignores_extra_fields():
    coins, updated = split_snapshot(_realdata(WRAPPED))
    frame = coingecko_markets_frame(coins, snapshot_date=dt.date(2026, 5, 3), ingested_at=INGESTED)
    assert updated == "2026-05-03T07:45:46.127829+00:00"
    assert len(frame) == 250
    assert "price_change_percentage_7d_in_currency" not in frame.columns
    assert frame["max_supply"].null_count() == 110
    assert frame["roi"].null_count() == 232
    assert frame["high_24h"].null_count() == 6
    usyc = frame.filter(pl.col("id") == "hashnote-usyc").row(0, named=True)
    assert usyc["high_24h"] is None and usyc["price_change_percentage_24h"] is None
    assert usyc["market_cap"] == 2921024064.0 and usyc["last_updated"] == "2026-04-30T15:46:49.733Z"
    eth = frame.filter(pl.col("id") == "ethereum").row(0, named=True)
    assert eth["roi"] == {"times": 38.4234399534209, "currency": "btc", "percentage": 3842.3439953420902}


def test_silver_types_timestamps_flattens_roi_and_flags_stale_coins():
    coins, _ = split_snapshot(_realdata(WRAPPED))
    bronze = coingecko_markets_frame(coins, snapshot_date=dt.date(2026, 5, 3), ingested_at=INGESTED)
    universe = (_info("BTCUSDT", "bitcoin"), _info("ETHUSDT", "ethereum"), _info("USYCUSDT", "hashnote-usyc"))
    silver = silver_coingecko_markets(bronze, universe)
    assert silver["symbol"].to_list() == ["BTCUSDT", "ETHUSDT", "USYCUSDT"]
    usyc = silver.row(2, named=True)
    assert usyc["is_stale"] is True
    assert usyc["last_updated"] == dt.datetime(2026, 4, 30, 15, 46, 49, 733000, tzinfo=dt.UTC)
    eth = silver.row(1, named=True)
    assert eth["is_stale"] is False and eth["roi_currency"] == "btc" and eth["roi_times"] == 38.4234399534209
    assert eth["max_supply"] is None and eth["market_cap_rank"] == 2
    assert silver.row(0, named=True)["atl_date"] == dt.datetime(2013, 7, 6, tzinfo=dt.UTC)


def test_wrong_types_are_refused_with_the_coin_and_field_named():
    with pytest.raises(CoinGeckoPayloadError, match="'bitcoin': market_cap must be a number"):
        coingecko_markets_frame(
            [{"id": "bitcoin", "symbol": "btc", "name": "Bitcoin", "market_cap": "1e12", "last_updated": "x"}],
            snapshot_date=dt.date(2025, 1, 1),
            ingested_at=NOW,
        )
    with pytest.raises(CoinGeckoPayloadError, match="expected a JSON list"):
        split_snapshot({"status": {"error_code": 429}})


def test_pages_through_ids_against_the_simulated_api():
    api = SimulatedCoinGeckoAPI(clock=lambda: NOW)
    client = CoinGeckoClient(per_page=2).with_transport(httpx.MockTransport(api.handle_request), clock=lambda: NOW)
    ids = ["bitcoin", "ethereum", "solana", "ripple", "cardano"]
    frame = client.markets_frame(ids)
    assert sorted(frame["id"].to_list()) == sorted(ids)
    assert [r.url.params["page"] for r in api.requests] == ["1", "2", "3"]
    assert all(r.url.params["ids"] == "bitcoin,cardano,ethereum,ripple,solana" for r in api.requests)
    assert api.requests[0].url.host == "api.coingecko.com" and api.requests[0].url.path == "/api/v3/coins/markets"
    assert frame["date"].unique().to_list() == [NOW.date()]
    assert frame["market_cap_rank"].to_list() == sorted(frame["market_cap_rank"].to_list())


def test_simulated_delisted_coin_is_stale_with_null_24h_fields():
    api = SimulatedCoinGeckoAPI(clock=lambda: NOW)
    busd = next(coin for coin in api.markets(NOW) if coin["id"] == "binance-usd")
    assert busd["last_updated"] == "2023-12-15T23:58:01.000Z"
    assert busd["high_24h"] is None and busd["price_change_percentage_24h"] is None
    assert list(busd) == list(MARKET_FIELDS)  # the 26 standard fields in CoinGecko's order


@pytest.mark.parametrize(
    ("kwargs", "host", "header"),
    [
        ({"demo_api_key": "demo-SECRET"}, "api.coingecko.com", "x-cg-demo-api-key"),
        ({"pro_api_key": "pro-SECRET"}, "pro-api.coingecko.com", "x-cg-pro-api-key"),
    ],
)
def test_api_key_goes_in_the_matching_header_and_host_and_is_never_shown(kwargs, host, header):
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(401, json={"status": {"error_code": 10002, "error_message": "API Key Missing"}})

    client = CoinGeckoClient(**kwargs).with_transport(httpx.MockTransport(handler))
    with pytest.raises(CoinGeckoAuthError) as raised:
        client.fetch_markets(["bitcoin"])
    secret = next(iter(kwargs.values()))
    assert seen[0].url.host == host and seen[0].headers[header] == secret
    assert "error_code 10002: API Key Missing" in str(raised.value)
    assert secret not in str(raised.value) and secret not in repr(client) and secret not in str(seen[0].url)


def test_key_on_the_wrong_host_is_a_clear_configuration_error():
    client = CoinGeckoClient(pro_api_key="k", base_url="https://api.coingecko.com/api/v3")
    with pytest.raises(CoinGeckoAuthError, match="Pro API key must be used with https://pro-api.coingecko.com"):
        client.fetch_markets(["bitcoin"])


def test_from_env_reads_url_and_keys_through_envvar(monkeypatch):
    monkeypatch.setenv("CRYPTOLAKE_COINGECKO_URL", "http://127.0.0.1:9/api/v3/")
    monkeypatch.setenv("COINGECKO_DEMO_API_KEY", "from-env")
    monkeypatch.setenv("CRYPTOLAKE_SOURCE", "binance")
    client = CoinGeckoClient.from_env()
    assert client.base_url == "http://127.0.0.1:9/api/v3" and client.source == "live"
    assert client.request_headers()["x-cg-demo-api-key"] == "from-env"
    assert "from-env" not in repr(client)


def test_429_waits_retry_after_then_succeeds():
    answers = [
        httpx.Response(
            429, json={"status": {"error_code": 429, "error_message": RATE_LIMIT_MESSAGE}}, headers={"Retry-After": "7"}
        ),
        httpx.Response(200, json=[]),
    ]
    sleeps: list[float] = []
    client = CoinGeckoClient().with_transport(httpx.MockTransport(lambda request: answers.pop(0)), sleep=sleeps.append)
    assert client.fetch_markets(["bitcoin"]) == []
    assert sleeps == [7.0] and client.stats()["retries"] == 1


def test_429_without_retry_after_backs_off_then_gives_up_with_the_message():
    sleeps: list[float] = []
    body = {"status": {"error_code": 429, "error_message": RATE_LIMIT_MESSAGE}}
    client = CoinGeckoClient(max_retries=2, backoff_base_seconds=2, backoff_jitter_seconds=0).with_transport(
        httpx.MockTransport(lambda request: httpx.Response(429, json=body)), sleep=sleeps.append
    )
    with pytest.raises(SourceHTTPError, match="gave up after 3 attempt"):
        client.fetch_markets(["bitcoin"])
    assert sleeps == [2.0, 4.0]
