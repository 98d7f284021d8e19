"""Real Binance files through bronze → silver and every quality check, with expected counts computed
independently from the raw CSV rows in plain Python.

Real quirks pinned here: exchange maintenance gaps (2017-09 misses 7 bars, 2018-02 misses 32),
off-grid candles after the 2018-02 maintenance (open times at hh:28:14.789), a candle closing before
it opens (2020-12-21 14:00), a non-zero ``ignore`` field in 2017, µs timestamps in 2025+ dumps, an
unclosed last candle in a REST capture, and duplicates from overlapping requests.
"""

import csv
import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from cryptolake_assets.quality.catalog import BRONZE_KLINES, SILVER_OHLCV, SILVER_QUARANTINE
from cryptolake_assets.quality.factory import ERROR, RuleContext, evaluate_table
from cryptolake_assets.silver.transform import split_valid_rows, to_silver
from partitions import symbol_info
from resources.binance_archive import dump_frame, read_verified_file
from resources.kline_format import bronze_klines_frame

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
VISION = REALDATA / "binance_vision"
MONTHLY = sorted((VISION / "breaded-xyz_alphakit").glob("*-1h/*.csv"))
H = 3_600_000
INGESTED = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)

pytestmark = pytest.mark.skipif(
    not REALDATA.exists(), reason="../shared/realdata is absent (a user's own clone); CI always has it"
)


def _days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def _expected(rows: list[list[str]], symbol: str, step: int, days: list[dt.date]) -> dict[str, int]:
    """Quarantine, missing grid slots and off-grid bars, straight from the raw rows."""
    opens = [int(r[0]) // 1000 if int(r[0]) > 10**14 else int(r[0]) for r in rows]
    closes = [int(r[6]) // 1000 if int(r[6]) > 10**14 else int(r[6]) for r in rows]
    valid = [o for o, c in zip(opens, closes) if c > o]
    listed = symbol_info(symbol).listed_on
    present = {o - o % step for o in valid}
    missing = 0
    for day in days:
        start = int(dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC).timestamp() * 1000)
        if day == listed:
            start = min(o for o in present if o >= start)
        end = int(dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC).timestamp() * 1000)
        missing += sum(1 for slot in range(start, end, step) if slot not in present)
    return {
        "quarantined": len(rows) - len(valid),
        "missing": missing,
        "off_grid": sum(1 for o in valid if o % step),
        "silver": len(set(valid)),
    }


def _through_silver(bronze: pl.DataFrame, symbol: str, interval: str, days: list[dt.date]) -> dict[str, object]:
    valid, quarantine = split_valid_rows(bronze, quarantined_at=INGESTED)
    silver = to_silver(valid, {symbol: symbol_info(symbol).listed_on})
    context = RuleContext(partition_keys=tuple(f"{d}|{symbol}" for d in days), now=INGESTED, interval=interval)
    results = {}
    for table, frame in ((BRONZE_KLINES, bronze), (SILVER_OHLCV, silver), (SILVER_QUARANTINE, quarantine)):
        for finding in evaluate_table(table, frame, context):
            results[(table.asset[0] + "/" + table.asset[1], finding.rule.name)] = finding
    return {"silver": silver, "quarantine": quarantine, "findings": results}


def _errors(findings) -> dict:
    return {k: f.count for k, f in findings.items() if f.rule.severity == ERROR and not f.passed}


@pytest.mark.parametrize("path", MONTHLY, ids=lambda p: p.stem)
def test_monthly_dump_gaps_grid_and_quarantine_match_the_raw_rows(path):
    symbol = path.stem.split("-")[0]
    rows = list(csv.reader(path.open()))
    year, month = map(int, path.stem.split("-")[2:4])
    first = dt.date(year, month, 1)
    last = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    days = [d for d in _days(first, last) if d >= symbol_info(symbol).listed_on]
    bronze = bronze_klines_frame(rows, symbol=symbol, interval="1h", source="archive", ingested_at=INGESTED)
    out = _through_silver(bronze, symbol, "1h", days)
    expected = _expected(rows, symbol, H, days)

    assert len(out["silver"]) + len(out["quarantine"]) == len(rows)  # nothing lost
    assert len(out["silver"]) == expected["silver"]
    assert len(out["quarantine"]) == expected["quarantined"]
    assert set(out["quarantine"]["rule"].to_list()) <= {"close_before_open"}
    findings = out["findings"]
    assert _errors(findings) == {}
    assert findings[("silver/ohlcv", "complete_bars")].count == expected["missing"]
    assert findings[("silver/ohlcv", "on_interval_grid")].count == expected["off_grid"]
    assert findings[("silver/ohlcv_quarantine", "quarantine_empty")].count == expected["quarantined"]
    assert bronze["ignore"].to_list() == [r[11] for r in rows]  # kept exactly as received


@pytest.mark.parametrize(
    ("month", "missing", "off_grid", "quarantined"),
    [("2017-08", 0, 0, 0), ("2017-09", 7, 0, 0), ("2018-02", 32, 43, 0), ("2020-12", 5, 0, 1)],
)
def test_the_documented_quirks(month, missing, off_grid, quarantined):
    path = VISION / "breaded-xyz_alphakit" / "BTCUSDT-1h" / f"BTCUSDT-1h-{month}.csv"
    rows = list(csv.reader(path.open()))
    year, mon = map(int, month.split("-"))
    first = dt.date(year, mon, 1)
    days = [
        d
        for d in _days(first, (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1))
        if d >= dt.date(2017, 8, 17)
    ]
    expected = _expected(rows, "BTCUSDT", H, days)
    assert (expected["missing"], expected["off_grid"], expected["quarantined"]) == (missing, off_grid, quarantined)
    out = _through_silver(
        bronze_klines_frame(rows, symbol="BTCUSDT", interval="1h", source="archive", ingested_at=INGESTED),
        "BTCUSDT",
        "1h",
        days,
    )
    silver = out["silver"]
    if month == "2017-09":
        gap = silver.filter(pl.col("gap_before") > 0)
        assert gap.select("open_time", "gap_before").rows() == [(dt.datetime(2017, 9, 6, 23, tzinfo=dt.UTC), 7)]
    if month == "2017-08":
        assert all(r[11] != "0" for r in rows) and out["quarantine"].is_empty()  # non-zero ignore: kept, not flagged
    if month == "2018-02":
        off = silver.filter(pl.col("open_time").dt.minute() != 0)
        assert off["open_time"][0] == dt.datetime(2018, 2, 9, 9, 28, 14, 789000, tzinfo=dt.UTC)
    if month == "2020-12":
        assert out["quarantine"].select("open_time", "close_time", "rule").rows() == [
            (1608559200000, 1608558440521, "close_before_open")
        ]


@pytest.mark.parametrize(
    ("folder", "interval", "rows_per_day"),
    [("lostleaf_binance_datatool", "1m", 1440), ("tommy-ca_binance_datatool", "1h", 24)],
)
def test_daily_archive_zips_are_complete_and_clean(folder, interval, rows_per_day):
    zips = sorted((VISION / folder).glob("*.zip"))
    for zip_path in zips:
        bronze = dump_frame(read_verified_file(zip_path), symbol="BTCUSDT", interval=interval, ingested_at=INGESTED)
        day = dt.date.fromisoformat(zip_path.stem[-10:])
        out = _through_silver(bronze, "BTCUSDT", interval, [day])
        assert len(out["silver"]) == rows_per_day and out["quarantine"].is_empty()
        assert _errors(out["findings"]) == {}
        assert out["findings"][("silver/ohlcv", "complete_bars")].count == 0
        assert out["findings"][("silver/ohlcv", "on_interval_grid")].count == 0
        assert out["silver"]["open_time"][0] == dt.datetime.combine(
            day, dt.time(), tzinfo=dt.UTC
        )  # µs dumps normalised


def test_unclosed_last_candle_is_quarantined_not_kept():
    rows = json.loads(
        (REALDATA / "binance_rest_json" / "nautechsystems_nautilus_trader" / "http_spot_market_klines.json").read_text()
    )
    fetched_at = dt.datetime.fromtimestamp((rows[-1][0] + 30_000) / 1000, tz=dt.UTC)  # 30 s into the last minute
    fetched_ms = int(fetched_at.timestamp() * 1000)
    still_open = [r for r in rows if r[6] >= fetched_ms]
    assert len(still_open) == 1 and still_open[0] is rows[-1]
    bronze = bronze_klines_frame(rows, symbol="BTCUSDT", interval="1m", source="binance", ingested_at=fetched_at)
    day = bronze["date"][0]
    out = _through_silver(bronze, "BTCUSDT", "1m", [day])
    assert out["quarantine"].select("open_time", "rule").rows() == [(rows[-1][0], "unclosed_candle")]
    assert len(out["silver"]) == len(rows) - 1
    assert _errors(out["findings"]) == {}


def test_overlapping_requests_are_flagged_in_bronze_and_deduplicated_in_silver():
    rows = json.loads(
        (
            REALDATA / "binance_rest_json" / "algo-one_binance-data-downloader" / "BTCUSDT-1h-2024-01-15.klines.json"
        ).read_text()
    )
    first = bronze_klines_frame(rows[:15], symbol="BTCUSDT", interval="1h", source="binance", ingested_at=INGESTED)
    second = bronze_klines_frame(
        rows[10:], symbol="BTCUSDT", interval="1h", source="binance", ingested_at=INGESTED + dt.timedelta(minutes=1)
    )
    out = _through_silver(pl.concat([first, second]), "BTCUSDT", "1h", [dt.date(2024, 1, 15)])
    overlap = len(set(r[0] for r in rows[:15]) & set(r[0] for r in rows[10:]))
    assert out["findings"][("bronze/klines", "unique_symbol_open_time")].count == 2 * overlap
    assert len(out["silver"]) == len(rows) and out["quarantine"].is_empty()
    assert _errors(out["findings"]) == {}
