"""One expected-bars rule (partitions.expected_bars) behind silver completeness, gold missing_bars
and the complete_bars check: the three must agree, including on a listing day whose first bar is
off the grid."""

import datetime as dt

import polars as pl
import pytest

from cryptolake_assets.gold import features
from cryptolake_assets.quality.completeness import missing_slots
from cryptolake_assets.silver.transform import SILVER_OHLCV_SCHEMA, completeness
from partitions.expected_bars import expected_bars

UTC = dt.UTC
NOW = dt.datetime(2026, 1, 1, tzinfo=UTC)


def silver(rows: list[tuple[str, dt.date, str, dt.datetime]]) -> pl.DataFrame:
    """Flat bars (price 1) at the given open times."""
    return pl.DataFrame(
        [
            {
                "date": day,
                "symbol": symbol,
                "interval": interval,
                "open_time": t,
                "close_time": t + dt.timedelta(minutes=1),
                "open": 1.0,
                "high": 1.0,
                "low": 1.0,
                "close": 1.0,
                "volume": 1.0,
                "quote_volume": 1.0,
                "trades": 1,
                "taker_buy_base_volume": 0.0,
                "taker_buy_quote_volume": 0.0,
                "gap_before": 0,
                "source": "test",
            }
            for symbol, day, interval, t in rows
        ],
        schema=SILVER_OHLCV_SCHEMA,
    )


def three_ways(frame: pl.DataFrame, day: dt.date, symbol: str, interval: str, now: dt.datetime) -> tuple[int, int, int]:
    """Missing bars of one partition per silver completeness, gold daily_bars and complete_bars."""
    silver_missing = completeness(frame, [day], [symbol], interval, now)["missing"].item()
    gold = features.daily_bars(frame, now=now)
    gold_missing = gold["missing_bars"].item() if gold.height else 0
    check_missing = missing_slots(frame, [(day, symbol)], interval, now).height
    return silver_missing, gold_missing, check_missing


def test_listing_day_with_an_off_grid_first_bar_expects_the_slot_it_opens_in():
    listing = dt.date(2020, 8, 11)  # SOLUSDT's listing day
    first = dt.datetime(2020, 8, 11, 6, 28, 14, 789000, tzinfo=UTC)  # after maintenance, off the hour
    frame = silver(
        [("SOLUSDT", listing, "1h", first), ("SOLUSDT", listing, "1h", dt.datetime(2020, 8, 11, 8, tzinfo=UTC))]
    )
    # Slots 06:00 .. 23:00 are due (18); the 06:28 bar fills 06:00, the 08:00 bar fills 08:00.
    assert expected_bars("SOLUSDT", listing, "1h", NOW, first) == 18
    assert three_ways(frame, listing, "SOLUSDT", "1h", NOW) == (16, 16, 16)
    missing = missing_slots(frame, [(listing, "SOLUSDT")], "1h", NOW)["missing_open_time"].dt.hour().to_list()
    assert missing == [7, *range(9, 24)]


def test_delisting_day_is_expected_and_the_day_after_is_not():
    last = dt.date(2023, 12, 15)  # BUSDUSDT's delisting day (still listed)
    frame = silver([("BUSDUSDT", last, "1h", dt.datetime(2023, 12, 15, 0, tzinfo=UTC))])
    assert three_ways(frame, last, "BUSDUSDT", "1h", NOW) == (23, 23, 23)
    after = dt.date(2023, 12, 16)
    stray = silver([("BUSDUSDT", after, "1h", dt.datetime(2023, 12, 16, 0, tzinfo=UTC))])
    assert expected_bars("BUSDUSDT", after, "1h", NOW, None) == 0
    assert three_ways(stray, after, "BUSDUSDT", "1h", NOW) == (0, 0, 0)


def test_today_counts_closed_slots_only_at_1h_and_1m():
    today = dt.date(2024, 5, 1)
    now = dt.datetime(2024, 5, 1, 10, 30, 5, tzinfo=UTC)
    hourly = silver([("BTCUSDT", today, "1h", dt.datetime(2024, 5, 1, h, tzinfo=UTC)) for h in (0, 1)])
    assert expected_bars("BTCUSDT", today, "1h", now, None) == 10  # 10:00-11:00 has not closed
    assert three_ways(hourly, today, "BTCUSDT", "1h", now) == (8, 8, 8)
    minutes = silver([("ETHUSDT", today, "1m", dt.datetime(2024, 5, 1, 0, m, tzinfo=UTC)) for m in (0, 7, 59)])
    assert expected_bars("ETHUSDT", today, "1m", now, None) == 630
    assert three_ways(minutes, today, "ETHUSDT", "1m", now) == (627, 627, 627)


def test_listing_day_without_a_bar_expects_the_whole_day_and_before_listing_nothing():
    assert expected_bars("SOLUSDT", dt.date(2020, 8, 11), "1h", NOW, None) == 24
    assert expected_bars("SOLUSDT", dt.date(2020, 8, 10), "1h", NOW, None) == 0
    assert completeness(silver([]), [dt.date(2020, 8, 11)], ["SOLUSDT"], "1h", NOW)["missing"].item() == 24


def test_unknown_interval_and_symbol_are_clear_errors():
    with pytest.raises(ValueError, match="unsupported interval .7m."):
        expected_bars("BTCUSDT", dt.date(2024, 1, 1), "7m", NOW, None)
    with pytest.raises(ValueError, match="unknown symbol 'NOPEUSDT'"):
        expected_bars("NOPEUSDT", dt.date(2024, 1, 1), "1h", NOW, None)
