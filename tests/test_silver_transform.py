"""bronze → silver: typing, de-duplication, gap counting and the quarantine, on hand-built klines.

Binance sends prices as strings and times as epoch ms; overlapping requests repeat candles; exchange
maintenance leaves holes that must be counted, never filled; a malformed row must be kept with a reason.
"""

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from cryptolake_assets.silver.transform import completeness, split_valid_rows, to_silver
from partitions.expected_bars import expected_bars
from resources.kline_format import bronze_klines_frame

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
H = 3_600_000
DAY = int(dt.datetime(2024, 1, 15, tzinfo=dt.UTC).timestamp() * 1000)
T0 = dt.datetime(2024, 2, 1, tzinfo=dt.UTC)


def kline(open_ms: int, o="100.0", h="110.0", l="90.0", c="105.0", v="2.0", close_ms=None, trades=10):  # noqa: E741 - the kline fields
    return [
        open_ms,
        o,
        h,
        l,
        c,
        v,
        open_ms + H - 1 if close_ms is None else close_ms,
        "210.0",
        trades,
        "1.0",
        "105.0",
        "0",
    ]


def bronze(rows, ingested=T0, symbol="BTCUSDT"):
    return bronze_klines_frame(rows, symbol=symbol, interval="1h", source="test", ingested_at=ingested)


def test_gaps_duplicates_and_quarantine_exact():
    first = bronze([kline(DAY), kline(DAY + H, c="101.0"), kline(DAY + 3 * H)])
    repeat = bronze([kline(DAY + H, c="102.0")], ingested=T0 + dt.timedelta(minutes=5))
    bad = bronze(
        [
            kline(DAY + 5 * H, o="abc"),
            kline(DAY + 6 * H, close_ms=DAY + 6 * H - 1),
            kline(DAY + 7 * H, h="80.0"),
            kline(DAY + 8 * H, v="-1.0"),
            kline(DAY + 9 * H, l="0"),
        ]
    )
    valid, quarantine = split_valid_rows(pl.concat([first, repeat, bad]), quarantined_at=T0)
    silver = to_silver(valid, {"BTCUSDT": dt.date(2017, 8, 17)})

    assert silver["open_time"].dt.hour().to_list() == [0, 1, 3]
    assert silver["gap_before"].to_list() == [0, 0, 1]
    assert silver["close"].to_list() == [105.0, 102.0, 105.0]  # the later ingestion of 01:00 wins
    assert silver["date"].to_list() == [dt.date(2024, 1, 15)] * 3
    assert silver.schema["open_time"] == pl.Datetime("us", "UTC")
    assert silver["close_time"][0] == dt.datetime(2024, 1, 15, 0, 59, 59, 999000, tzinfo=dt.UTC)

    assert quarantine["rule"].to_list() == [
        "unparseable_value",
        "close_before_open",
        "ohlc_inconsistent",
        "negative_volume",
        "non_positive_price",
    ]
    assert quarantine["open"].to_list() == ["abc", "100.0", "100.0", "100.0", "100.0"]  # original values kept
    assert quarantine.filter(pl.col("rule") == "ohlc_inconsistent")["reason"].item() == (
        "low/high do not bound open and close"
    )
    # A row breaking two rules names the first as its rule and both in its reason.
    both = split_valid_rows(bronze([kline(DAY, o="abc", close_ms=DAY - 5)]), quarantined_at=T0)[1]
    assert both["rule"].to_list() == ["unparseable_value"]
    assert both["reason"].to_list() == [
        "a price, volume or time field is missing or not a finite number; close_time is not after open_time (not a valid bar)"
    ]

    coverage = completeness(silver, [dt.date(2024, 1, 15)], ["BTCUSDT"], "1h", now=T0)
    assert coverage.row(0, named=True) == {
        "date": dt.date(2024, 1, 15),
        "symbol": "BTCUSDT",
        "expected": 24,
        "present": 3,
        "missing": 21,
    }


def test_expected_bars_respects_listing_window_and_now():
    listing_first_bar = dt.datetime(2017, 8, 17, 4, tzinfo=dt.UTC)
    assert expected_bars("BTCUSDT", dt.date(2017, 8, 17), "1h", T0, listing_first_bar) == 20
    assert expected_bars("BTCUSDT", dt.date(2017, 8, 16), "1h", T0, None) == 0
    assert expected_bars("AGIXUSDT", dt.date(2024, 7, 2), "1h", T0, None) == 0  # after delisting
    now = dt.datetime(2024, 1, 15, 10, 30, tzinfo=dt.UTC)
    assert expected_bars("BTCUSDT", dt.date(2024, 1, 15), "1h", now, None) == 10
    assert expected_bars("BTCUSDT", dt.date(2024, 1, 15), "1m", now, None) == 630


def test_listing_day_first_bar_is_not_a_gap():
    listing = int(dt.datetime(2017, 8, 17, 4, tzinfo=dt.UTC).timestamp() * 1000)
    valid, _ = split_valid_rows(bronze([kline(listing), kline(listing + 2 * H)]), quarantined_at=T0)
    assert to_silver(valid, {"BTCUSDT": dt.date(2017, 8, 17)})["gap_before"].to_list() == [0, 1]


def test_real_rest_capture_is_clean_and_complete():
    path = REALDATA / "binance_rest_json" / "algo-one_binance-data-downloader" / "BTCUSDT-1h-2024-01-15.klines.json"
    if not REALDATA.exists():
        pytest.skip("../shared/realdata is absent (a user's own clone); CI always has it")
    rows = json.loads(path.read_text())
    valid, quarantine = split_valid_rows(bronze(rows), quarantined_at=T0)
    silver = to_silver(valid, {"BTCUSDT": dt.date(2017, 8, 17)})
    assert quarantine.height == 0
    assert silver.height == 24
    assert silver["gap_before"].sum() == 0
    assert silver["open"][0] == 41732.35 and silver["close"][-1] == float(rows[-1][4])
    assert silver["trades"][0] == 66725
    assert silver["quote_volume"][0] == 102456168.2255989
