"""Gold features on small hand-built inputs, with the expected values worked out by hand.

What these pin down: windows are calendar days (a missing day nulls every window that covers it,
whatever the row count), a window is never computed from a partial history, vwap is null on a
zero-volume day, RSI is 50 on flat prices, and missing_bars follows the interval, the listing window
and, for today, the bars closed so far. The last tests check partition invariance on the pure
functions: a row computed from only its own 30-day look-back equals, bit for bit, the same row
computed inside a long range.
"""

import datetime as dt
import math
import random

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from cryptolake_assets.gold import features
from cryptolake_assets.gold.dim_date import date_dimension
from cryptolake_assets.gold.dim_symbol import symbol_dimension
from partitions import load_universe

D0 = dt.date(2024, 1, 1)
UTC = dt.UTC
NOW = dt.datetime(2025, 1, 1, tzinfo=UTC)


def day(n: int) -> dt.date:
    """Day n of the test calendar (day 1 = 2024-01-01)."""
    return D0 + dt.timedelta(days=n - 1)


def bar(
    date: dt.date,
    hour: int,
    minute: int = 0,
    *,
    symbol="BTCUSDT",
    interval="1h",
    open_=1.0,
    high=1.0,
    low=1.0,
    close=1.0,
    volume=1.0,
    quote_volume=1.0,
    trades=1,
) -> dict:
    open_time = dt.datetime.combine(date, dt.time(hour, minute), tzinfo=UTC)
    return {
        "date": date,
        "symbol": symbol,
        "interval": interval,
        "open_time": open_time,
        "open": open_,
        "high": high,
        "low": low,
        "close": close,
        "volume": volume,
        "quote_volume": quote_volume,
        "trades": trades,
    }


def silver(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "date": pl.Date,
            "symbol": pl.String,
            "interval": pl.String,
            "open_time": pl.Datetime("us", "UTC"),
            "open": pl.Float64,
            "high": pl.Float64,
            "low": pl.Float64,
            "close": pl.Float64,
            "volume": pl.Float64,
            "quote_volume": pl.Float64,
            "trades": pl.Int64,
        },
    )


def daily_from_closes(closes: dict[int, float], symbol: str = "BTCUSDT") -> pl.DataFrame:
    """Daily bars (one full 1d bar per listed day) with the given closes by day number."""
    rows = [
        bar(day(n), 0, symbol=symbol, interval="1d", open_=c, high=c, low=c, close=c) for n, c in sorted(closes.items())
    ]
    return features.daily_bars(silver(rows), now=NOW)


def row(frame: pl.DataFrame, n: int, symbol: str = "BTCUSDT") -> dict:
    found = frame.filter((pl.col("date") == day(n)) & (pl.col("symbol") == symbol))
    assert found.height == 1, f"expected one row for day {n} {symbol}, got {found.height}"
    return found.row(0, named=True)


# --- daily bars -------------------------------------------------------------------------------


def test_daily_bars_aggregate_the_days_bars_in_time_order():
    rows = [
        # given out of order: the aggregation must sort by open_time
        bar(day(1), 5, open_=10.5, high=12.0, low=10.0, close=11.25, volume=2.0, quote_volume=22.0, trades=7),
        bar(day(1), 0, open_=10.0, high=11.0, low=9.5, close=10.5, volume=1.0, quote_volume=10.0, trades=3),
        bar(day(1), 1, open_=10.5, high=10.75, low=9.0, close=10.5, volume=1.0, quote_volume=10.5, trades=2),
    ]
    daily = features.daily_bars(silver(rows), now=NOW)
    assert daily.to_dicts() == [
        {
            "date": day(1),
            "symbol": "BTCUSDT",
            "open": 10.0,
            "high": 12.0,
            "low": 9.0,
            "close": 11.25,
            "volume": 4.0,
            "quote_volume": 42.5,
            "trades": 12,
            "bars": 3,
            "missing_bars": 21,
            "vwap": 42.5 / 4.0,
        }
    ]
    assert daily.schema == pl.Schema(features.DAILY_BARS_SCHEMA)


def test_zero_volume_day_has_null_vwap():
    rows = [bar(day(1), h, volume=0.0, quote_volume=0.0) for h in range(24)]
    rows += [bar(day(2), h, volume=2.0, quote_volume=3.0) for h in range(24)]
    daily = features.daily_bars(silver(rows), now=NOW)
    assert daily["vwap"].to_list() == [None, 1.5]
    assert daily["missing_bars"].to_list() == [0, 0]


def test_missing_bars_for_1m_bars():
    rows = [bar(day(1), minute // 60, minute % 60, interval="1m") for minute in range(1000)]
    daily = features.daily_bars(silver(rows), now=NOW)
    assert daily.select("bars", "missing_bars").row(0) == (1000, 440)


def test_missing_bars_clipped_to_listing_day_and_to_now():
    # SOLUSDT is listed on 2020-08-11: the day counts from its first bar (06:00), 18 expected.
    listing = dt.date(2020, 8, 11)
    rows = [bar(listing, h, symbol="SOLUSDT") for h in range(6, 24) if h != 9]
    # Today (now = 10:30): bars 00:00..09:00 have closed (10 expected); 7 present.
    today = dt.date(2024, 5, 1)
    now = dt.datetime(2024, 5, 1, 10, 30, tzinfo=UTC)
    rows += [bar(today, h) for h in (0, 1, 2, 3, 4, 8, 9)]
    # BUSDUSDT was delisted on 2023-12-15: a stray bar after that is not "missing" anything.
    rows += [bar(dt.date(2024, 1, 3), 0, symbol="BUSDUSDT")]
    daily = features.daily_bars(silver(rows), now=now)
    got = {(r["symbol"], r["date"]): (r["bars"], r["missing_bars"]) for r in daily.iter_rows(named=True)}
    assert got == {
        ("SOLUSDT", listing): (17, 1),
        ("BTCUSDT", today): (7, 3),
        ("BUSDUSDT", dt.date(2024, 1, 3)): (1, 0),
    }


def test_bad_silver_frame_is_a_clear_error():
    with pytest.raises(ValueError, match="silver OHLCV lacks columns \\['interval'"):
        features.daily_bars(silver([bar(day(1), 0)]).drop("interval"))


def test_empty_inputs_give_empty_frames_with_the_table_schema():
    empty_daily = features.daily_bars(silver([]))
    assert empty_daily.is_empty() and empty_daily.schema == pl.Schema(features.DAILY_BARS_SCHEMA)
    empty_features = features.daily_features(empty_daily, [day(1)])
    assert empty_features.is_empty() and empty_features.schema == pl.Schema(features.DAILY_FEATURES_SCHEMA)


# --- daily features -------------------------------------------------------------------------


def test_start_of_history_features_are_null_until_their_window_is_full():
    closes = {n: 100.0 + n for n in range(1, 32)}  # 101, 102, ..., 131 on days 1..31
    result = features.daily_features(daily_from_closes(closes))
    first = row(result, 1)
    assert first["close"] == 101.0
    assert [
        first[c] for c in ("return_1d", "log_return_1d", "sma_7", "sma_30", "volatility_30d", "rsi_14", "drawdown_30d")
    ] == [None] * 7
    assert row(result, 2)["return_1d"] == 102.0 / 101.0 - 1
    assert row(result, 2)["log_return_1d"] == math.log(102.0 / 101.0)
    assert row(result, 6)["sma_7"] is None
    assert row(result, 7)["sma_7"] == 104.0  # mean(101..107)
    assert row(result, 14)["rsi_14"] is None  # needs closes of days 0..14
    assert row(result, 15)["rsi_14"] == 100.0  # only gains
    assert row(result, 29)["sma_30"] is None
    assert row(result, 30)["sma_30"] == 115.5  # mean(101..130)
    assert row(result, 30)["drawdown_30d"] == 0.0
    assert row(result, 30)["volatility_30d"] is None  # needs the close of day 0
    returns = [math.log((101.0 + n) / (100.0 + n)) for n in range(1, 31)]
    mean = sum(returns) / 30
    expected_vol = math.sqrt(sum((r - mean) ** 2 for r in returns) / 29) * math.sqrt(365)
    assert row(result, 31)["volatility_30d"] == pytest.approx(expected_vol, rel=1e-12)


def test_volatility_is_annualised_sample_std_of_30_log_returns():
    closes = {n: (100.0 if n % 2 else 200.0) for n in range(1, 32)}  # log returns ±ln 2
    result = features.daily_features(daily_from_closes(closes), [day(31)])
    got = row(result, 31)
    # 15 × +ln2 and 15 × −ln2: mean 0, sample variance 30·ln²2 / 29.
    assert got["volatility_30d"] == pytest.approx(math.log(2) * math.sqrt(30 / 29) * math.sqrt(365), rel=1e-12)
    assert got["rsi_14"] == 50.0  # 7 gains of 100 and 7 losses of 100
    assert got["drawdown_30d"] == 100.0 / 200.0 - 1
    assert got["sma_7"] == pytest.approx((4 * 100.0 + 3 * 200.0) / 7, rel=1e-15)


def test_rsi_and_drawdown_on_a_rise_then_a_fall():
    # Days 1..30 flat at 50, then +1 for 10 days (51..60), then −2 for 4 days (58, 56, 54, 52).
    closes = {n: 50.0 for n in range(1, 31)}
    closes.update({30 + k: 50.0 + k for k in range(1, 11)})
    closes.update({40 + k: 60.0 - 2 * k for k in range(1, 5)})
    result = features.daily_features(daily_from_closes(closes), [day(44)])
    got = row(result, 44)
    # 14 changes over days 31..44: ten of +1, four of −2: G = 10/14, L = 8/14.
    assert got["rsi_14"] == pytest.approx(100 * 10 / 18, rel=1e-12)
    assert got["drawdown_30d"] == 52.0 / 60.0 - 1
    assert got["return_1d"] == 52.0 / 54.0 - 1


def test_flat_prices_give_rsi_50_zero_volatility_and_no_drawdown():
    result = features.daily_features(daily_from_closes({n: 7.0 for n in range(1, 41)}), [day(40)])
    got = row(result, 40)
    assert (got["rsi_14"], got["volatility_30d"], got["drawdown_30d"], got["return_1d"]) == (50.0, 0.0, 0.0, 0.0)
    assert (got["sma_7"], got["sma_30"]) == (7.0, 7.0)


def test_rsi_of_only_gains_is_exactly_100_never_above():
    # Simulated SOLUSDT closes of 2024-03-02..16: fourteen gains for which 100·G/G rounds to
    # 100.00000000000001; a blocking check (RSI within [0, 100]) failed on it in a backfill.
    real = [
        71.40981,
        72.83581,
        76.86829,
        80.94505,
        83.86232,
        90.77646,
        95.38208,
        101.71246,
        103.78547,
        105.02193,
        105.57228,
        107.07637,
        110.05615,
        112.77295,
        114.97983,
    ]
    gains = pl.Series(real).diff().drop_nulls()
    assert 100.0 * gains.mean() / gains.mean() > 100.0  # the rounding this guards against
    closes = {n: real[0] for n in range(1, 26)}
    closes.update({25 + k: close for k, close in enumerate(real, start=1)})
    result = features.daily_features(daily_from_closes(closes), [day(40)])
    assert row(result, 40)["rsi_14"] == 100.0


def test_flat_after_moves_is_exactly_50_not_a_sliding_sum_residue():
    # Big moves leave the 14-day window; a sliding sum would keep a tiny residue and give RSI ≠ 50.
    closes = {n: [100.0, 0.1, 1e5][n % 3] for n in range(1, 21)}
    closes.update({n: 3.3 for n in range(21, 41)})
    result = features.daily_features(daily_from_closes(closes), [day(40)])
    assert row(result, 40)["rsi_14"] == 50.0


def test_a_missing_day_nulls_every_window_covering_it():
    closes = {n: 100.0 + n for n in range(1, 71) if n != 40}
    result = features.daily_features(daily_from_closes(closes))
    assert result.filter(pl.col("date") == day(40)).is_empty()  # no bars, no row
    assert row(result, 41)["return_1d"] is None
    assert row(result, 41)["log_return_1d"] is None
    assert row(result, 42)["return_1d"] == 142.0 / 141.0 - 1
    assert row(result, 46)["sma_7"] is None  # window 40..46
    assert row(result, 47)["sma_7"] == 144.0  # mean(141..147)
    assert row(result, 54)["rsi_14"] is None  # closes 40..54
    assert row(result, 55)["rsi_14"] == 100.0
    assert row(result, 69)["sma_30"] is None  # window 40..69
    assert row(result, 69)["drawdown_30d"] is None
    assert row(result, 70)["sma_30"] == 155.5  # mean(141..170)
    assert row(result, 70)["volatility_30d"] is None  # log returns 41..70 include day 41 (null)
    assert row(result, 39)["sma_30"] == 124.5  # before the gap: mean(110..139)
    assert row(result, 39)["volatility_30d"] is not None


def test_only_requested_dates_with_bars_are_returned():
    daily = daily_from_closes({n: 10.0 + n for n in range(1, 11) if n != 5})
    result = features.daily_features(daily, [day(4), day(5), day(9), day(30)])
    assert result["date"].to_list() == [day(4), day(9)]


def test_symbols_do_not_leak_into_each_others_windows():
    btc = daily_from_closes({n: 100.0 + n for n in range(1, 9)}, "BTCUSDT")
    eth = daily_from_closes({n: 10.0 * n for n in range(1, 9) if n != 3}, "ETHUSDT")
    result = features.daily_features(pl.concat([btc, eth]), [day(8)])
    assert row(result, 8, "BTCUSDT")["sma_7"] == 105.0  # mean(102..108)
    assert row(result, 8, "ETHUSDT")["sma_7"] is None  # ETH misses day 3
    assert result["symbol"].to_list() == ["BTCUSDT", "ETHUSDT"]


# --- correlations -----------------------------------------------------------------------------


def returns_frame(series: dict[str, dict[int, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"date": day(n), "symbol": s, "log_return_1d": v} for s, values in series.items() for n, v in values.items()],
        schema={"date": pl.Date, "symbol": pl.String, "log_return_1d": pl.Float64},
    )


def test_correlations_need_all_30_returns_of_both_symbols():
    x = {n: (1.0 if n % 2 else -1.0) for n in range(1, 31)}
    # y = x on days 1..20 and −x on days 21..30: Σxy = 20 − 10 = 10, Σx² = Σy² = 30, means 0 → 1/3.
    y = {n: (x[n] if n <= 20 else -x[n]) for n in range(1, 31)}
    z = {n: 2.0 * v + 1.0 for n, v in x.items()}  # an affine copy of x → 1
    gap = {n: v for n, v in x.items() if n != 17}  # one day short → never paired
    flat = {n: 0.0 for n in range(1, 31)}  # zero variance → null correlation
    result = features.correlations_30d(
        returns_frame({"XRPUSDT": x, "BTCUSDT": y, "ETHUSDT": z, "SOLUSDT": gap, "ADAUSDT": flat}), [day(29), day(30)]
    )
    got = {(r["symbol_a"], r["symbol_b"]): r["corr_30d"] for r in result.iter_rows(named=True)}
    assert set(result["date"].to_list()) == {day(30)}  # day 29's window starts on day 0
    assert set(got) == {
        ("ADAUSDT", "BTCUSDT"),
        ("ADAUSDT", "ETHUSDT"),
        ("ADAUSDT", "XRPUSDT"),
        ("BTCUSDT", "ETHUSDT"),
        ("BTCUSDT", "XRPUSDT"),
        ("ETHUSDT", "XRPUSDT"),
    }
    assert got["BTCUSDT", "XRPUSDT"] == pytest.approx(1 / 3, abs=1e-12)
    assert got["BTCUSDT", "ETHUSDT"] == pytest.approx(1 / 3, abs=1e-12)
    assert got["ETHUSDT", "XRPUSDT"] == pytest.approx(1.0, abs=1e-12)
    assert got["ADAUSDT", "BTCUSDT"] is None
    assert result.schema == pl.Schema(features.CORRELATIONS_SCHEMA)


def test_correlations_window_is_calendar_days():
    # 31 returns but day 31 missing: the window ending on day 32 covers days 3..32 — 29 values.
    a = {n: math.sin(n) for n in range(1, 33) if n != 31}
    b = {n: math.cos(n) for n in range(1, 33) if n != 31}
    result = features.correlations_30d(returns_frame({"AAA": a, "BBB": b}), [day(30), day(32)])
    assert result["date"].to_list() == [day(30)]


# --- category and market summaries ----------------------------------------------------------


def returns_with_closes(closes: dict[str, dict[int, float]]) -> pl.DataFrame:
    daily = pl.concat([daily_from_closes(c, s) for s, c in closes.items()])
    return features.daily_features(daily).select(
        "date", "symbol", "close", "quote_volume", "return_1d", "log_return_1d"
    )


def test_category_daily_equal_weighted_means():
    returns = returns_with_closes(
        {
            "BTCUSDT": {1: 100.0, 30: 150.0, 31: 200.0},  # 1d: 200/150 − 1 = 1/3, 30d: 200/100 − 1 = 1
            "ETHUSDT": {1: 50.0, 31: 25.0},  # no close on day 30 → no 1d return; 30d: −0.5
            "SOLUSDT": {30: 10.0, 31: 11.0},  # 1d: 0.1; no close 30 days earlier
            "DOGEUSDT": {1: 1.0, 30: 4.0, 31: 2.0},  # Meme: 1d −0.5, 30d +1
            "UNIUSDT": {30: 5.0},  # no bar on day 31 → not a member that day
        }
    )
    categories = {
        "BTCUSDT": "Layer 1",
        "ETHUSDT": "Layer 1",
        "SOLUSDT": "Layer 1",
        "DOGEUSDT": "Meme",
        "UNIUSDT": "DeFi",
    }
    result = features.category_daily(returns, [day(31)], categories)
    rows = {r["category"]: r for r in result.iter_rows(named=True)}
    assert set(rows) == {"Layer 1", "Meme"}
    layer1 = rows["Layer 1"]
    assert (layer1["members"], layer1["members_with_return_1d"], layer1["members_with_return_30d"]) == (3, 2, 2)
    assert layer1["mean_return_1d"] == pytest.approx((1 / 3 + 0.1) / 2, rel=1e-12)
    assert layer1["mean_return_30d"] == pytest.approx((1.0 - 0.5) / 2, rel=1e-12)
    meme = rows["Meme"]
    assert (meme["members"], meme["mean_return_1d"], meme["mean_return_30d"]) == (1, -0.5, 1.0)


def test_category_daily_rejects_symbols_without_category():
    returns = returns_with_closes({"BTCUSDT": {1: 1.0, 2: 2.0}})
    with pytest.raises(ValueError, match="BTCUSDT"):
        features.category_daily(returns, [day(2)], {"ETHUSDT": "Layer 1"})


def test_market_daily_breadth_and_extremes():
    returns = returns_with_closes(
        {
            "BTCUSDT": {1: 100.0, 2: 110.0},  # +10 %
            "ETHUSDT": {1: 100.0, 2: 90.0},  # −10 %
            "SOLUSDT": {1: 100.0, 2: 110.0},  # +10 % (tie with BTC: BTC wins by name)
            "XRPUSDT": {1: 3.0, 2: 3.0},  # unchanged
            "ADAUSDT": {2: 1.0},  # listed today: no return
        }
    )
    result = features.market_daily(returns, [day(2)])
    assert result.to_dicts() == [
        {
            "date": day(2),
            "symbols": 5,
            "total_quote_volume": 5.0,  # one 1d bar each with quote volume 1
            "advancers": 2,
            "decliners": 1,
            "unchanged": 1,
            "best_symbol": "BTCUSDT",
            "best_return_1d": 110.0 / 100.0 - 1,
            "worst_symbol": "ETHUSDT",
            "worst_return_1d": 90.0 / 100.0 - 1,
        }
    ]


# --- dimensions -----------------------------------------------------------------------------


def test_date_dimension_attributes():
    rows = date_dimension([dt.date(2024, 2, 29), dt.date(2024, 12, 29)]).to_dicts()
    assert rows[0] == {
        "date": dt.date(2024, 2, 29),
        "year": 2024,
        "quarter": 1,
        "month": 2,
        "month_name": "February",
        "day_of_month": 29,
        "day_of_year": 60,
        "iso_year": 2024,
        "iso_week": 9,
        "day_of_week": 4,
        "day_name": "Thursday",
        "is_weekend": False,
        "is_month_end": True,
    }
    # 2024-12-29 is a Sunday in ISO week 52 of 2024.
    assert (
        rows[1]["iso_year"],
        rows[1]["iso_week"],
        rows[1]["day_of_week"],
        rows[1]["is_weekend"],
        rows[1]["is_month_end"],
    ) == (2024, 52, 7, True, False)


def test_symbol_dimension_has_one_row_per_universe_symbol():
    dim = symbol_dimension(load_universe())
    assert dim.height == len(load_universe()) and dim["symbol"].is_unique().all()
    busd = dim.filter(pl.col("symbol") == "BUSDUSDT").row(0, named=True)
    assert busd == {
        "symbol": "BUSDUSDT",
        "base_asset": "BUSD",
        "name": "Binance USD",
        "category": "Payment",
        "coingecko_id": "binance-usd",
        "listed_on": dt.date(2019, 9, 19),
        "delisted_on": dt.date(2023, 12, 15),
        "stablecoin": True,
    }


# --- partition invariance on the pure functions ---------------------------------------------


def random_walk_silver(symbols: list[str], days: int, seed: int = 7) -> pl.DataFrame:
    """Hourly bars with a few missing bars; the second symbol misses day 50, the third day 80."""
    rng = random.Random(seed)
    rows = []
    days_without_bars = {1: 50, 2: 80}
    for index, symbol in enumerate(symbols):
        price = 100.0 * (1 + index)
        for n in range(1, days + 1):
            if days_without_bars.get(index) == n:
                continue
            for hour in range(24):
                if rng.random() < 0.02:
                    continue  # a missing bar
                price *= math.exp(rng.gauss(0, 0.01))
                rows.append(
                    bar(
                        day(n),
                        hour,
                        symbol=symbol,
                        open_=price,
                        high=price * 1.01,
                        low=price * 0.99,
                        close=price,
                        volume=rng.random(),
                        quote_volume=price * rng.random(),
                        trades=rng.randint(0, 50),
                    )
                )
    return silver(rows)


def test_one_partition_alone_equals_the_same_partition_inside_a_60_day_range():
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    data = random_walk_silver(symbols, 100)
    range_days = [day(n) for n in range(41, 101)]
    in_range = features.daily_features(features.daily_bars(data, now=NOW), range_days)
    assert in_range.height > 150 and in_range["volatility_30d"].count() > 50
    for n in (41, 57, 74, 100):
        for symbol in symbols:
            alone_input = data.filter(
                (pl.col("symbol") == symbol) & pl.col("date").is_between(day(n - features.LOOKBACK_DAYS), day(n))
            )
            alone = features.daily_features(features.daily_bars(alone_input, now=NOW), [day(n)])
            expected = in_range.filter((pl.col("date") == day(n)) & (pl.col("symbol") == symbol))
            assert_frame_equal(alone, expected, check_exact=True)


def test_correlations_alone_equal_correlations_inside_a_range():
    data = random_walk_silver(["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"], 120, seed=3)
    returns = features.daily_features(features.daily_bars(data, now=NOW))
    in_range = features.correlations_30d(returns, [day(n) for n in range(61, 121)])
    assert in_range.height > 100
    for n in (61, 90, 120):
        window = returns.filter(pl.col("date").is_between(day(n - 29), day(n)))
        alone = features.correlations_30d(window, [day(n)])
        assert_frame_equal(alone, in_range.filter(pl.col("date") == day(n)), check_exact=True)


# --- daily bars: input forms and the expected-bars rule ---------------------------------------


def test_daily_bars_are_the_same_from_a_lazy_scan_or_shuffled_rows():
    data = random_walk_silver(["BTCUSDT", "ETHUSDT", "SOLUSDT"], 40, seed=11)
    reference = features.daily_bars(data, now=NOW)
    assert reference.height == 3 * 40  # every symbol has bars on each of the 40 days
    assert_frame_equal(features.daily_bars(data.lazy(), now=NOW), reference, check_exact=True)
    shuffled = data.sample(fraction=1.0, shuffle=True, seed=5)
    assert not shuffled["open_time"].is_sorted()
    assert_frame_equal(features.daily_bars(shuffled, now=NOW), reference, check_exact=True)
    only_eth = features.daily_bars(data.lazy(), now=NOW, symbols=["ETHUSDT"])
    assert_frame_equal(only_eth, reference.filter(pl.col("symbol") == "ETHUSDT"), check_exact=True)


def test_missing_bars_follow_the_silver_expected_bars_rule():
    from partitions.expected_bars import expected_bars

    now = dt.datetime(2024, 5, 1, 10, 30, tzinfo=UTC)
    days = [
        ("BTCUSDT", dt.date(2024, 4, 30), "1h", [0, 5, 23]),  # a full past day
        ("BTCUSDT", dt.date(2024, 5, 1), "1h", [0, 1]),  # today: closed bars only
        ("ETHUSDT", dt.date(2024, 5, 1), "1m", [0, 7, 59]),  # today, 1-minute bars
        ("SOLUSDT", dt.date(2020, 8, 11), "1h", [6, 7]),  # listing day: from the first bar
        ("SOLUSDT", dt.date(2020, 8, 10), "1h", [3]),  # before listing: nothing expected
        ("BUSDUSDT", dt.date(2023, 12, 15), "1h", [0]),  # delisting day is still listed
        ("BUSDUSDT", dt.date(2023, 12, 16), "1h", [0]),  # after delisting
    ]
    rows = [
        bar(
            date,
            minute // 60 if interval == "1m" else minute,
            minute % 60 if interval == "1m" else 0,
            symbol=symbol,
            interval=interval,
        )
        for symbol, date, interval, minutes in days
        for minute in minutes
    ]
    daily = features.daily_bars(silver(rows), now=now)
    got = {(r["symbol"], r["date"]): r["missing_bars"] for r in daily.iter_rows(named=True)}
    first_bars = {
        (r["symbol"], r["date"]): min(
            x["open_time"] for x in rows if (x["symbol"], x["date"]) == (r["symbol"], r["date"])
        )
        for r in daily.iter_rows(named=True)
    }
    want = {
        (symbol, date): max(expected_bars(symbol, date, interval, now, first_bars[(symbol, date)]) - len(minutes), 0)
        for symbol, date, interval, minutes in days
    }
    assert got == want
    # Worked out by hand: 24 − 3; 10 closed by 10:30 − 2; 630 closed minutes − 3; 18 from 06:00 − 2; 0; 24 − 1; 0.
    assert [got[(s, d)] for s, d, _, _ in days] == [21, 8, 627, 16, 0, 23, 0]


def test_unknown_symbol_in_silver_is_a_clear_error():
    from partitions.universe import UniverseError

    with pytest.raises(UniverseError, match="unknown symbol 'NOPEUSDT'"):
        features.daily_bars(silver([bar(day(1), 0, symbol="NOPEUSDT")]), now=NOW)


def test_window_means_are_exact_newest_first_sums_divided_by_the_window():
    # Windows are summed newest first, one value at a time, then divided (as list.mean does):
    # a plain-Python oracle with the same float operations must agree to the last bit.
    rng = random.Random(23)
    closes = {n: rng.uniform(0.001, 5000.0) for n in range(1, 46)}
    result = features.daily_features(daily_from_closes(closes))
    for n in (31, 38, 45):
        got = row(result, n)
        newest_first = [closes[n - k] for k in range(30)]

        def mean(values):
            total = values[0]
            for value in values[1:]:
                total += value
            return total / len(values)

        changes = [closes[n - k] - closes[n - k - 1] for k in range(14)]
        gain = mean([max(c, 0.0) for c in changes])
        loss = mean([max(-c, 0.0) for c in changes])
        assert got["sma_7"] == mean(newest_first[:7])
        assert got["sma_30"] == mean(newest_first)
        assert got["rsi_14"] == 100.0 * (gain / (gain + loss))
        assert got["drawdown_30d"] == closes[n] / max(newest_first) - 1
