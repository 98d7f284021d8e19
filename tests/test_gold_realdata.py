"""Gold features and correlations on real daily data, against an independent plain-Python oracle.

The data: CryptoDataDownload daily CSVs of 9 Binance USDT pairs (a URL preamble line, then a header;
newest row first; epoch milliseconds; the same 6 days of 2026 missing in every symbol). The oracle
below reads the CSVs with the csv module and recomputes every feature with loops over a dict of
closes by date: it shares no code with cryptolake_assets.gold. Real gaps (the 2026 days) check that
windows covering a missing day are null; the many years of data check numerical agreement.
"""

import csv
import datetime as dt
import math
from pathlib import Path

import polars as pl
import pytest

from cryptolake_assets.gold import features

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
DAILY_DIR = REALDATA / "multi_symbol_ohlcv" / "mschindler779_CausCrypto_cryptodatadownload_daily"
FIRST_DAY = dt.date(2020, 1, 1)  # rows tested: 2020 .. 2026
HISTORY_FROM = FIRST_DAY - dt.timedelta(days=40)  # data fed in, so early-2020 windows are full
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
TOLERANCE = 1e-9

pytestmark = pytest.mark.skipif(not REALDATA.is_dir(), reason=f"real data folder {REALDATA} is absent")


def close_enough(got: float | None, expected: float | None) -> bool:
    """Equal within 1e-9 (relative for magnitudes above 1, e.g. prices; absolute below)."""
    if got is None or expected is None:
        return got is None and expected is None
    return abs(got - expected) <= TOLERANCE * max(1.0, abs(expected))


# --- the independent oracle -------------------------------------------------------------------


def read_csv_days() -> dict[str, dict[dt.date, dict]]:
    """symbol -> date -> {open, high, low, close, volume, quote_volume, trades} from the raw CSVs."""
    data: dict[str, dict[dt.date, dict]] = {}
    for path in sorted(DAILY_DIR.glob("Binance_*USDT_d.csv")):
        with path.open(newline="") as handle:
            handle.readline()  # the URL preamble
            for record in csv.DictReader(handle):
                symbol = record["Symbol"]
                base = symbol.removesuffix("USDT")
                day = dt.datetime.fromtimestamp(int(record["Unix"]) / 1000, tz=dt.UTC).date()
                assert day.isoformat() == record["Date"]
                if day < HISTORY_FROM:
                    continue
                data.setdefault(symbol, {})[day] = {
                    "open": float(record["Open"]),
                    "high": float(record["High"]),
                    "low": float(record["Low"]),
                    "close": float(record["Close"]),
                    "volume": float(record[f"Volume {base}"]),
                    "quote_volume": float(record["Volume USDT"]),
                    "trades": int(record["tradecount"]),
                }
    return data


def window_values(by_day: dict[dt.date, dict], end: dt.date, days: int, value) -> list | None:
    """value(d) for the ``days`` calendar days ending on ``end``; None if any day is missing."""
    values = []
    for back in range(days):
        day = end - dt.timedelta(days=back)
        if day not in by_day:
            return None
        result = value(day)
        if result is None:
            return None
        values.append(result)
    return values


def oracle_features(by_day: dict[dt.date, dict], day: dt.date) -> dict:
    def close(d):
        return by_day[d]["close"]

    def change(d):
        previous = d - dt.timedelta(days=1)
        return close(d) - close(previous) if previous in by_day else None

    def log_return(d):
        previous = d - dt.timedelta(days=1)
        return math.log(close(d) / close(previous)) if previous in by_day else None

    bar = by_day[day]
    previous_day = day - dt.timedelta(days=1)
    out = {
        **bar,
        "bars": 1,
        "missing_bars": 0,
        "vwap": bar["quote_volume"] / bar["volume"] if bar["volume"] != 0 else None,
        "return_1d": bar["close"] / by_day[previous_day]["close"] - 1 if previous_day in by_day else None,
        "log_return_1d": log_return(day),
    }
    closes_7 = window_values(by_day, day, 7, close)
    out["sma_7"] = sum(closes_7) / 7 if closes_7 else None
    closes_30 = window_values(by_day, day, 30, close)
    out["sma_30"] = sum(closes_30) / 30 if closes_30 else None
    out["drawdown_30d"] = bar["close"] / max(closes_30) - 1 if closes_30 else None
    returns_30 = window_values(by_day, day, 30, log_return)
    if returns_30:
        mean = sum(returns_30) / 30
        variance = sum((r - mean) ** 2 for r in returns_30) / 29
        out["volatility_30d"] = math.sqrt(variance) * math.sqrt(365)
    else:
        out["volatility_30d"] = None
    changes_14 = window_values(by_day, day, 14, change)
    if changes_14:
        gain = sum(c for c in changes_14 if c > 0) / 14
        loss = sum(-c for c in changes_14 if c < 0) / 14
        out["rsi_14"] = 50.0 if gain + loss == 0 else 100 * gain / (gain + loss)
    else:
        out["rsi_14"] = None
    return out


def oracle_correlation(xs: list[float], ys: list[float]) -> float | None:
    mean_x = sum(xs) / len(xs)
    mean_y = sum(ys) / len(ys)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys))
    sxx = sum((x - mean_x) ** 2 for x in xs)
    syy = sum((y - mean_y) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


# --- the pipeline's side ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def csv_days() -> dict[str, dict[dt.date, dict]]:
    return read_csv_days()


@pytest.fixture(scope="module")
def universe_for_realdata(tmp_path_factory, csv_days):
    """A universe file listing the 9 pairs from their first day in the data (BCH, BNB and TRX are not
    in the bundled universe)."""
    path = tmp_path_factory.mktemp("universe") / "universe.csv"
    lines = ["symbol,base_asset,name,category,coingecko_id,listed_on,delisted_on,stablecoin,notes"]
    for symbol, by_day in sorted(csv_days.items()):
        base = symbol.removesuffix("USDT")
        lines.append(f"{symbol},{base},{base},Layer 1,{base.lower()},{min(by_day)},,false,")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def silver_like() -> pl.DataFrame:
    """The CSVs as silver OHLCV: one 1d bar per day and symbol."""
    frames = []
    for path in sorted(DAILY_DIR.glob("Binance_*USDT_d.csv")):
        raw = pl.read_csv(path, skip_rows=1)
        base = raw["Symbol"][0].removesuffix("USDT")
        open_time = pl.from_epoch("Unix", time_unit="ms").dt.replace_time_zone("UTC")
        frames.append(
            raw.select(
                open_time.dt.date().alias("date"),
                pl.col("Symbol").alias("symbol"),
                pl.lit("1d").alias("interval"),
                open_time.alias("open_time"),
                (open_time + pl.duration(days=1) - pl.duration(milliseconds=1)).alias("close_time"),
                pl.col("Open").alias("open"),
                pl.col("High").alias("high"),
                pl.col("Low").alias("low"),
                pl.col("Close").alias("close"),
                pl.col(f"Volume {base}").alias("volume"),
                pl.col("Volume USDT").alias("quote_volume"),
                pl.col("tradecount").alias("trades"),
                pl.lit(0, dtype=pl.Int32).alias("gap_before"),
                pl.lit("cryptodatadownload").alias("source"),
            )
        )
    return pl.concat(frames).filter(pl.col("date") >= HISTORY_FROM).sort("symbol", "open_time")


@pytest.fixture(scope="module")
def computed(silver_like, universe_for_realdata) -> pl.DataFrame:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CRYPTOLAKE_UNIVERSE", str(universe_for_realdata))
        daily = features.daily_bars(silver_like, now=NOW)
    return features.daily_features(daily)


def test_real_data_has_the_documented_shape(csv_days):
    assert sorted(csv_days) == [
        "ADAUSDT",
        "BCHUSDT",
        "BNBUSDT",
        "BTCUSDT",
        "DOGEUSDT",
        "ETHUSDT",
        "SOLUSDT",
        "TRXUSDT",
        "XRPUSDT",
    ]
    # The folder's README says 5 days; the files miss these 6 days of 2026 in every symbol.
    missing_2026 = {
        dt.date(2026, 1, 8),
        dt.date(2026, 1, 20),
        dt.date(2026, 3, 20),
        dt.date(2026, 3, 21),
        dt.date(2026, 3, 22),
        dt.date(2026, 3, 25),
    }
    for by_day in csv_days.values():
        days_2026 = {
            dt.date(2026, 1, 1) + dt.timedelta(days=k) for k in range((max(by_day) - dt.date(2026, 1, 1)).days + 1)
        }
        assert max(by_day) == dt.date(2026, 3, 30)
        assert days_2026 - set(by_day) == missing_2026


def test_every_feature_matches_the_plain_python_oracle(computed, csv_days):
    tested = computed.filter(pl.col("date") >= FIRST_DAY)
    expected_rows = sum(1 for by_day in csv_days.values() for d in by_day if d >= FIRST_DAY)
    assert tested.height == expected_rows
    assert tested.columns == list(features.DAILY_FEATURES_SCHEMA)
    mismatches = []
    nulls_after_gap = 0
    for got in tested.iter_rows(named=True):
        expected = oracle_features(csv_days[got["symbol"]], got["date"])
        for column in features.DAILY_FEATURES_SCHEMA:
            if column in ("date", "symbol"):
                continue
            if column in ("trades", "bars", "missing_bars"):
                ok = got[column] == expected[column]
            else:
                ok = close_enough(got[column], expected[column])
            if not ok:
                mismatches.append((got["symbol"], got["date"], column, got[column], expected[column]))
        if got["date"].year == 2026 and got["sma_30"] is None and got["symbol"] == "BTCUSDT":
            nulls_after_gap += 1
    assert mismatches[:10] == []
    # The missing days of 2026 null BTC's 30-day windows for a while (and the oracle agrees).
    assert nulls_after_gap >= 30
    assert tested["volatility_30d"].count() > 15_000


def test_correlation_matrices_match_the_plain_python_oracle(computed, csv_days):
    dates = sorted({d for by_day in csv_days.values() for d in by_day if d >= FIRST_DAY})
    result = features.correlations_30d(computed, dates)
    got = {(r["date"], r["symbol_a"], r["symbol_b"]): r["corr_30d"] for r in result.iter_rows(named=True)}

    log_returns: dict[str, dict[dt.date, float]] = {}
    for symbol, by_day in csv_days.items():
        for d, bar in by_day.items():
            previous = d - dt.timedelta(days=1)
            if previous in by_day:
                log_returns.setdefault(symbol, {})[d] = math.log(bar["close"] / by_day[previous]["close"])
    expected = {}
    symbols = sorted(log_returns)
    for end in dates:
        window = [end - dt.timedelta(days=back) for back in range(30)]
        full = [s for s in symbols if all(d in log_returns[s] for d in window)]
        for i, a in enumerate(full):
            for b in full[i + 1 :]:
                expected[(end, a, b)] = oracle_correlation(
                    [log_returns[a][d] for d in window], [log_returns[b][d] for d in window]
                )
    assert set(got) == set(expected)
    assert len(expected) > 60_000
    bad = [(key, got[key], expected[key]) for key in expected if not close_enough(got[key], expected[key])]
    assert bad[:10] == []
