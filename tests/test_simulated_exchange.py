"""The offline Binance exchange: deterministic candles served with Binance's REST semantics.

What must hold for the pipeline to be testable offline: a candle is the same whatever window or
page asks for it, coarse bars are exact aggregations of 1m bars, nothing exists outside a symbol's
listing window or after 'now' (but the in-progress candle is served, like Binance), and errors,
limits and weight headers look like the real API's.
"""

import datetime as dt
import json
from decimal import Decimal

import httpx
import pytest
from binance_fakes import FakeClock

from partitions import SymbolInfo
from resources.simulated.binance_exchange import SimulatedBinanceExchange
from resources.simulated.market import SimulatedMarket, day_index, outage_window

UTC = dt.UTC
HOUR_MS, MINUTE_MS, DAY_MS = 3_600_000, 60_000, 86_400_000


def ms(*args) -> int:
    return int(dt.datetime(*args, tzinfo=UTC).timestamp() * 1000)


def info(symbol, category="Layer 1", listed=dt.date(2020, 1, 1), delisted=None, stablecoin=False) -> SymbolInfo:
    return SymbolInfo(
        symbol=symbol,
        base_asset=symbol[:-4],
        name=symbol,
        category=category,
        coingecko_id="x",
        listed_on=listed,
        delisted_on=delisted,
        stablecoin=stablecoin,
    )


UNIVERSE = (
    info("BTCUSDT", listed=dt.date(2017, 8, 17)),
    info("MEMEUSDT", "Meme", listed=dt.date(2023, 5, 5)),
    info("GONEUSDT", "DeFi", listed=dt.date(2021, 1, 1), delisted=dt.date(2024, 7, 1)),
    info("USDCUSDT", "Payment", listed=dt.date(2018, 12, 15), stablecoin=True),
)


def exchange(
    now=dt.datetime(2025, 1, 1, tzinfo=UTC), **kwargs
) -> tuple[SimulatedBinanceExchange, httpx.Client, FakeClock]:
    clock = FakeClock(now)
    ex = SimulatedBinanceExchange(seed=kwargs.pop("seed", 7), universe=UNIVERSE, clock=clock, **kwargs)
    return ex, httpx.Client(transport=httpx.MockTransport(ex.handle_request), base_url="https://sim"), clock


def klines(client: httpx.Client, **params) -> httpx.Response:
    return client.get("/api/v3/klines", params=params)


def test_same_seed_same_rows_and_another_seed_differs():
    _, a, _ = exchange()
    _, b, _ = exchange()
    _, c, _ = exchange(seed=8)
    params = {"symbol": "BTCUSDT", "interval": "1h", "startTime": ms(2024, 3, 1), "limit": 100}
    rows = klines(a, **params).json()
    assert len(rows) == 100
    assert klines(b, **params).json() == rows
    assert klines(c, **params).json() != rows


def test_overlapping_windows_and_page_sizes_give_identical_candles():
    market = SimulatedMarket(seed=7, universe=UNIVERSE)
    whole = market.klines("BTCUSDT", "1h", ms(2024, 2, 27), ms(2024, 3, 3))
    shifted = market.klines("BTCUSDT", "1h", ms(2024, 2, 28, 13), ms(2024, 3, 4))
    overlap = [row for row in whole if row[0] >= ms(2024, 2, 28, 13)]
    assert overlap and shifted[: len(overlap)] == overlap

    _, client, _ = exchange()
    paged, cursor = [], ms(2024, 2, 27)
    while cursor < ms(2024, 3, 3):
        page = klines(
            client, symbol="BTCUSDT", interval="1h", startTime=cursor, endTime=ms(2024, 3, 3) - 1, limit=7
        ).json()
        if not page:
            break
        paged += page
        cursor = page[-1][0] + HOUR_MS
    assert paged == whole


def test_rows_have_binance_wire_shape():
    _, client, _ = exchange()
    response = klines(client, symbol="BTCUSDT", interval="1h", startTime=ms(2024, 1, 15), limit=2)
    assert response.status_code == 200
    row = response.json()[0]
    assert len(row) == 12
    assert row[0] == ms(2024, 1, 15) and row[6] == ms(2024, 1, 15) + HOUR_MS - 1
    assert isinstance(row[8], int) and row[11] == "0"
    for index in (1, 2, 3, 4, 5, 7, 9, 10):
        assert isinstance(row[index], str) and len(row[index].split(".")[1]) == 8


def test_listing_price_and_no_bars_before_listing_or_after_delisting():
    market = SimulatedMarket(seed=7, universe=UNIVERSE)
    listed = market.klines("MEMEUSDT", "1h", ms(2023, 5, 1), ms(2023, 5, 7))
    assert min(row[0] for row in listed) >= ms(2023, 5, 5)
    assert market.klines("MEMEUSDT", "1h", ms(2023, 5, 1), ms(2023, 5, 5)) == []
    btc = market.klines("BTCUSDT", "1d", ms(2017, 8, 1), ms(2017, 8, 19))
    assert [row[0] for row in btc] == [ms(2017, 8, 17), ms(2017, 8, 18)]
    assert btc[0][1] == "4300.00000000"  # listing price of the model

    gone = market.klines("GONEUSDT", "1d", ms(2024, 6, 28), ms(2024, 7, 10))
    assert [row[0] for row in gone] == [ms(2024, 6, 28), ms(2024, 6, 29), ms(2024, 6, 30), ms(2024, 7, 1)]


def test_binance_error_payloads():
    _, client, _ = exchange()
    unknown = klines(client, symbol="NOPEUSDT", interval="1h")
    assert (unknown.status_code, unknown.json()) == (400, {"code": -1121, "msg": "Invalid symbol."})
    bad_interval = klines(client, symbol="BTCUSDT", interval="7m")
    assert (bad_interval.status_code, bad_interval.json()) == (400, {"code": -1120, "msg": "Invalid interval."})
    too_many = klines(client, symbol="BTCUSDT", interval="1h", limit=1001)
    assert (too_many.status_code, too_many.json()["code"]) == (400, -1130)
    missing = klines(client, interval="1h")
    assert (missing.status_code, missing.json()["code"]) == (400, -1102)
    reversed_range = klines(client, symbol="BTCUSDT", interval="1h", startTime=ms(2024, 1, 2), endTime=ms(2024, 1, 1))
    assert reversed_range.json() == {"code": -1023, "msg": "Start time is greater than end time."}
    # A symbol listed after the exchange's 'now' does not exist yet.
    _, early, _ = exchange(now=dt.datetime(2022, 1, 1, tzinfo=UTC))
    assert klines(early, symbol="MEMEUSDT", interval="1h").json()["code"] == -1121


def test_default_limit_is_500_and_max_is_1000():
    _, client, _ = exchange()
    assert len(klines(client, symbol="BTCUSDT", interval="1m", startTime=ms(2024, 1, 1)).json()) == 500
    assert len(klines(client, symbol="BTCUSDT", interval="1m", startTime=ms(2024, 1, 1), limit=1000).json()) == 1000


def test_weight_headers_count_per_wall_clock_minute():
    ex, client, clock = exchange(now=dt.datetime(2024, 6, 1, 10, 0, 50, tzinfo=UTC))
    seen = [klines(client, symbol="BTCUSDT", interval="1h", limit=1).headers["X-MBX-USED-WEIGHT-1M"] for _ in range(3)]
    assert seen == ["2", "4", "6"]
    assert client.get("/api/v3/ping").headers["X-MBX-USED-WEIGHT"] == "7"
    assert client.get("/api/v3/exchangeInfo").headers["X-MBX-USED-WEIGHT-1M"] == "27"
    clock.now = dt.datetime(2024, 6, 1, 10, 1, 0, tzinfo=UTC)
    assert klines(client, symbol="BTCUSDT", interval="1h", limit=1).headers["X-MBX-USED-WEIGHT-1M"] == "2"
    assert ex.used_weight() == 2


def test_enforced_limit_answers_429_with_retry_after():
    _, client, clock = exchange(
        now=dt.datetime(2024, 6, 1, 10, 0, 45, tzinfo=UTC), weight_limit_per_minute=4, enforce_limit=True
    )
    assert klines(client, symbol="BTCUSDT", interval="1h", limit=1).status_code == 200
    assert klines(client, symbol="BTCUSDT", interval="1h", limit=1).status_code == 200
    limited = klines(client, symbol="BTCUSDT", interval="1h", limit=1)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "15"
    assert limited.json()["code"] == -1003
    assert limited.json()["msg"].startswith("Too much request weight used;")
    clock.now += dt.timedelta(seconds=15)
    assert klines(client, symbol="BTCUSDT", interval="1h", limit=1).status_code == 200


def _aggregate(minutes: list[list]) -> list:
    total = lambda i: f"{sum(Decimal(row[i]) for row in minutes):.8f}"  # noqa: E731
    return [
        minutes[0][0],
        minutes[0][1],
        f"{max(Decimal(row[2]) for row in minutes):.8f}",
        f"{min(Decimal(row[3]) for row in minutes):.8f}",
        minutes[-1][4],
        total(5),
        minutes[0][0] + HOUR_MS - 1,
        total(7),
        sum(row[8] for row in minutes),
        total(9),
        total(10),
        "0",
    ]


@pytest.mark.parametrize("symbol", ["BTCUSDT", "MEMEUSDT", "USDCUSDT"])
def test_hourly_bar_is_exactly_the_aggregation_of_its_minutes(symbol):
    market = SimulatedMarket(seed=7, universe=UNIVERSE)
    hours = market.klines(symbol, "1h", ms(2024, 5, 20, 9), ms(2024, 5, 20, 12))
    minutes = market.klines(symbol, "1m", ms(2024, 5, 20, 9), ms(2024, 5, 20, 12))
    assert len(hours) == 3 and len(minutes) == 180
    assert hours == [_aggregate(minutes[i * 60 : (i + 1) * 60]) for i in range(3)]


def test_ohlc_and_volume_consistency_over_a_sample():
    market = SimulatedMarket(seed=7, universe=UNIVERSE)
    for symbol in ("BTCUSDT", "MEMEUSDT", "GONEUSDT", "USDCUSDT"):
        rows = market.klines(symbol, "1h", ms(2024, 1, 1), ms(2024, 1, 15))
        assert len(rows) >= 13 * 24
        for row in rows:
            o, h, lo, c, v, q, tb, tq = (Decimal(row[i]) for i in (1, 2, 3, 4, 5, 7, 9, 10))
            assert h >= max(o, c) and lo <= min(o, c) and lo > 0
            assert v > 0 and q > 0 and row[8] > 0
            assert Decimal("0.4") <= tb / v <= Decimal("0.6") and Decimal("0.4") <= tq / q <= Decimal("0.6")
            assert lo * v <= q <= h * v  # quote volume = volume at prices inside the bar
        if symbol == "USDCUSDT":
            assert all(Decimal("0.99") < Decimal(row[4]) < Decimal("1.01") for row in rows)


def test_daily_volatility_is_crypto_like():
    market = SimulatedMarket(seed=7, universe=UNIVERSE)
    closes = [float(row[4]) for row in market.klines("BTCUSDT", "1d", ms(2021, 1, 1), ms(2024, 1, 1))]
    returns = [abs(b / a - 1) for a, b in zip(closes, closes[1:])]
    mean_abs = sum(returns) / len(returns)
    assert 0.01 < mean_abs < 0.04  # |daily return| ~2.4 % for a ~3 % daily vol


def test_outage_removes_bars_for_every_symbol():
    seed = 7
    day = next(
        d for d in range(day_index(dt.date(2024, 1, 1)), day_index(dt.date(2026, 1, 1))) if outage_window(seed, d)
    )
    first_minute, end_minute = outage_window(seed, day)
    assert (end_minute - first_minute) in (60, 120, 180)
    day_ms = ms(2017, 1, 1) + day * DAY_MS
    market = SimulatedMarket(seed=seed, universe=UNIVERSE)
    for symbol in ("BTCUSDT", "MEMEUSDT", "USDCUSDT"):
        open_times = {row[0] for row in market.klines(symbol, "1h", day_ms, day_ms + DAY_MS)}
        missing = {day_ms + h * HOUR_MS for h in range(24)} - open_times
        assert missing == {day_ms + m * MINUTE_MS for m in range(first_minute, end_minute, 60)}


def test_in_progress_candle_is_served_and_nothing_after_now():
    now = dt.datetime(2024, 3, 10, 10, 30, 20, tzinfo=UTC)
    _, client, _ = exchange(now=now)
    latest = klines(client, symbol="BTCUSDT", interval="1h", limit=3).json()
    assert [row[0] for row in latest] == [ms(2024, 3, 10, 8), ms(2024, 3, 10, 9), ms(2024, 3, 10, 10)]
    assert latest[-1][6] == ms(2024, 3, 10, 10, 59, 59) + 999  # still open relative to now
    minutes = klines(client, symbol="BTCUSDT", interval="1m", startTime=ms(2024, 3, 10, 10), limit=1000).json()
    assert minutes[-1][0] == ms(2024, 3, 10, 10, 30)
    assert latest[-1][4] == minutes[-1][4]  # the open hour closes at the current minute's price
    assert latest[-1][1] == minutes[0][1]
    future = klines(client, symbol="BTCUSDT", interval="1h", startTime=ms(2024, 3, 11)).json()
    assert future == []


def test_exchange_info_ping_and_time():
    _, client, _ = exchange(now=dt.datetime(2024, 8, 1, tzinfo=UTC))
    assert client.get("/api/v3/ping").json() == {}
    assert client.get("/api/v3/time").json() == {"serverTime": ms(2024, 8, 1)}
    symbols = {s["symbol"]: s for s in client.get("/api/v3/exchangeInfo").json()["symbols"]}
    assert set(symbols) == {"BTCUSDT", "MEMEUSDT", "GONEUSDT", "USDCUSDT"}
    assert symbols["GONEUSDT"]["status"] == "BREAK" and symbols["BTCUSDT"]["status"] == "TRADING"
    assert client.get("/api/v3/nope").status_code == 404


def test_default_universe_serves_every_project_symbol():
    ex = SimulatedBinanceExchange(seed=7, clock=FakeClock(dt.datetime(2025, 1, 1, 6, tzinfo=UTC)))
    client = httpx.Client(transport=httpx.MockTransport(ex.handle_request), base_url="https://sim")
    assert outage_window(7, day_index(dt.date(2025, 1, 1))) is None
    for symbol, symbol_info in ex.market.universe.items():
        last_day = min(dt.date(2025, 1, 1), symbol_info.delisted_on or dt.date(2025, 1, 1))
        row = json.loads(klines(client, symbol=symbol, interval="1d", limit=1).content)[0]
        assert row[0] == ms(last_day.year, last_day.month, last_day.day), symbol
