"""Every data-quality check: a clean table passes all of them, and a minimal bad table fails exactly
the targeted check (and no other ERROR check) with the expected number of failing rows.

The clean tables come from the project's own transforms (bronze → silver, gold feature functions),
so a check that rejects what the pipeline produces fails here, not in a user's backfill.
"""

import datetime as dt

import polars as pl
import pytest

from cryptolake_assets.gold import features
from cryptolake_assets.gold.dim_date import date_dimension
from cryptolake_assets.gold.dim_symbol import symbol_dimension
from cryptolake_assets.quality.catalog import TABLES, catalog_markdown
from cryptolake_assets.quality.factory import ERROR, RuleContext, evaluate_table
from cryptolake_assets.silver.transform import split_valid_rows, to_silver
from partitions import load_universe, symbol_info
from resources.kline_format import bronze_klines_frame

H = 3_600_000
DAY = dt.date(2024, 1, 15)
DAY_MS = int(dt.datetime.combine(DAY, dt.time(), tzinfo=dt.UTC).timestamp() * 1000)
INGESTED = dt.datetime(2024, 2, 1, tzinfo=dt.UTC)
NOW = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
FEATURE_DAYS = [dt.date(2024, 1, 1) + dt.timedelta(days=n) for n in range(45)]
BY_ASSET = {"/".join(t.asset): t for t in TABLES}


def _kline(hour: int) -> list:
    # A gentle zig-zag: consecutive log returns of about ±0.1 %, no outliers.
    price = 100.0 + (hour % 3) * 0.1
    low, high = price - 0.5, price + 0.6
    volume = 2.0 + hour / 10
    quote = volume * (low + high) / 2
    return [
        DAY_MS + hour * H,
        f"{price:.2f}",
        f"{high:.2f}",
        f"{low:.2f}",
        f"{price + 0.05:.2f}",
        f"{volume:.4f}",
        DAY_MS + (hour + 1) * H - 1,
        f"{quote:.6f}",
        10 + hour,
        f"{volume / 2:.4f}",
        f"{quote / 2:.6f}",
        "0",
    ]


def clean_bronze() -> pl.DataFrame:
    return bronze_klines_frame(
        [_kline(h) for h in range(24)], symbol="BTCUSDT", interval="1h", source="test", ingested_at=INGESTED
    )


def clean_silver() -> pl.DataFrame:
    valid, quarantine = split_valid_rows(clean_bronze(), quarantined_at=INGESTED)
    assert quarantine.is_empty()
    return to_silver(valid, {"BTCUSDT": symbol_info("BTCUSDT").listed_on})


def clean_quarantine() -> pl.DataFrame:
    return split_valid_rows(clean_bronze(), quarantined_at=INGESTED)[1]


def one_quarantined_row() -> pl.DataFrame:
    bad = clean_bronze().with_columns(
        close_time=pl.when(pl.col("open_time") == DAY_MS).then(DAY_MS - 1).otherwise("close_time")
    )
    quarantine = split_valid_rows(bad, quarantined_at=INGESTED)[1]
    assert quarantine["rule"].to_list() == ["close_before_open"]
    return quarantine


def daily_silver() -> pl.DataFrame:
    """One daily bar per symbol per day over 45 days (prices wander; no gaps)."""
    rows = []
    for index, symbol in enumerate(SYMBOLS):
        for n, day in enumerate(FEATURE_DAYS):
            close = 100.0 * (index + 1) * (1 + 0.01 * ((n * (index + 2)) % 7 - 3))
            open_time = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
            rows.append(
                {
                    "date": day,
                    "symbol": symbol,
                    "interval": "1d",
                    "open_time": open_time,
                    "open": close * 0.99,
                    "high": close * 1.02,
                    "low": close * 0.97,
                    "close": close,
                    "volume": 5.0,
                    "quote_volume": 5.0 * close,
                    "trades": 7,
                }
            )
    return pl.DataFrame(rows)


def clean_features() -> pl.DataFrame:
    return features.daily_features(features.daily_bars(daily_silver(), now=NOW))


def clean_correlations() -> pl.DataFrame:
    frame = features.correlations_30d(clean_features(), FEATURE_DAYS[-3:])
    assert len(frame) == 9  # 3 pairs × 3 days
    return frame


def _returns() -> pl.DataFrame:
    return clean_features().select("date", "symbol", "close", "quote_volume", "return_1d")


def clean_category_daily() -> pl.DataFrame:
    return features.category_daily(_returns(), FEATURE_DAYS[-2:], {i.symbol: i.category for i in load_universe()})


def clean_market_daily() -> pl.DataFrame:
    return features.market_daily(_returns(), FEATURE_DAYS[-2:])


def clean_dim_date() -> pl.DataFrame:
    return date_dimension(FEATURE_DAYS[:10])


CLEAN = {
    "bronze/klines": clean_bronze,
    "silver/ohlcv": clean_silver,
    "silver/ohlcv_quarantine": clean_quarantine,
    "gold/daily_features": clean_features,
    "gold/correlations": clean_correlations,
    "gold/dim_symbol": lambda: symbol_dimension(load_universe()),
    "gold/dim_date": clean_dim_date,
    "gold/category_daily": clean_category_daily,
    "gold/market_daily": clean_market_daily,
}


def dimensions() -> dict[str, pl.DataFrame]:
    """The dimension tables the referential rules read: the universe's symbols, the test calendar."""
    return {"gold/dim_symbol": symbol_dimension(load_universe()), "gold/dim_date": date_dimension(FEATURE_DAYS)}


def context_for(asset: str, frame: pl.DataFrame) -> RuleContext:
    if asset in ("silver/ohlcv",):
        return RuleContext(partition_keys=(f"{DAY}|BTCUSDT",), now=NOW, interval="1h")
    return RuleContext(now=NOW, dimensions=dimensions())


def at(rows: int | list[int], column: str, value) -> pl.Expr:
    """``column`` with ``value`` in the given row(s)."""
    rows = [rows] if isinstance(rows, int) else rows
    return pl.when(pl.int_range(pl.len()).is_in(rows)).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)


def duplicate(row: int):
    return lambda f: pl.concat([f, f[row]])


def findings(asset: str, frame: pl.DataFrame) -> dict[str, tuple[str, int]]:
    table = BY_ASSET[asset]
    return {f.rule.name: (f.rule.severity, f.count) for f in evaluate_table(table, frame, context_for(asset, frame))}


@pytest.mark.parametrize("asset", list(CLEAN))
def test_clean_table_passes_every_check(asset):
    frame = CLEAN[asset]()
    assert not frame.is_empty() or asset == "silver/ohlcv_quarantine"
    assert {name: count for name, (_, count) in findings(asset, frame).items() if count} == {}


# (asset, check, mutation of the clean table, expected failing rows)
BAD_INPUTS = [
    ("bronze/klines", "schema", lambda f: f.with_columns(at([2, 4], "source", None)), 2),
    ("bronze/klines", "date_is_open_time_day", lambda f: f.with_columns(at(3, "date", DAY + dt.timedelta(days=1))), 1),
    ("bronze/klines", "unique_symbol_open_time", duplicate(5), 2),
    ("bronze/klines", "close_after_open", lambda f: f.with_columns(at(2, "close_time", DAY_MS + 2 * H - 1 - H)), 1),
    ("bronze/klines", "numbers_parse", lambda f: f.with_columns(at(1, "open", "abc")), 1),
    ("silver/ohlcv", "schema", lambda f: f.with_columns(at(0, "gap_before", -1)), 1),
    ("silver/ohlcv", "date_is_open_time_day", lambda f: f.with_columns(at(3, "date", DAY - dt.timedelta(days=1))), 1),
    ("silver/ohlcv", "unique_symbol_open_time", duplicate(7), 2),
    ("silver/ohlcv", "prices_positive", lambda f: f.with_columns(at(4, "low", -1.0)), 1),
    (
        "silver/ohlcv",
        "ohlc_consistent",
        lambda f: f.with_columns(
            (pl.col("open") + pl.when(pl.int_range(pl.len()) == 6).then(1.0).otherwise(0.0)).alias("open")
        ),
        1,
    ),
    ("silver/ohlcv", "volumes_non_negative", lambda f: f.with_columns(at(8, "trades", -1)), 1),
    (
        "silver/ohlcv",
        "quote_volume_consistent",
        lambda f: f.with_columns(
            (pl.col("quote_volume") * pl.when(pl.int_range(pl.len()) == 9).then(2.0).otherwise(1.0)).alias(
                "quote_volume"
            )
        ),
        1,
    ),
    (
        "silver/ohlcv",
        "close_after_open",
        lambda f: f.with_columns(at(10, "close_time", dt.datetime.combine(DAY, dt.time(9, 59), tzinfo=dt.UTC))),
        1,
    ),
    (
        "silver/ohlcv",
        "on_interval_grid",
        lambda f: f.with_columns(
            at(11, "open_time", dt.datetime.combine(DAY, dt.time(11, 28, 14, 789000), tzinfo=dt.UTC))
        ),
        1,
    ),
    ("silver/ohlcv", "complete_bars", lambda f: f.filter(~pl.int_range(pl.len()).is_in([0, 12, 13])), 3),
    (
        "silver/ohlcv",
        "return_outliers",
        lambda f: f.with_columns(
            (pl.col(c) * pl.when(pl.int_range(pl.len()) == 10).then(1.5).otherwise(1.0)).alias(c)
            for c in ("close", "high")
        ),
        2,
    ),
    ("silver/ohlcv_quarantine", "schema", lambda f: one_quarantined_row().drop("quarantined_at"), 1),
    ("silver/ohlcv_quarantine", "rule_known", lambda f: one_quarantined_row().with_columns(rule=pl.lit("made_up")), 1),
    ("silver/ohlcv_quarantine", "quarantine_empty", lambda f: one_quarantined_row(), 1),
    ("gold/daily_features", "schema", lambda f: f.with_columns(at(5, "bars", 0)), 1),
    ("gold/daily_features", "unique_symbol_date", duplicate(40), 2),
    (
        "gold/daily_features",
        "ohlc_consistent",
        lambda f: f.with_columns(
            (pl.col("low") * pl.when(pl.int_range(pl.len()) == 3).then(2.0).otherwise(1.0)).alias("low")
        ),
        1,
    ),
    ("gold/daily_features", "rsi_in_range", lambda f: f.with_columns(at(100, "rsi_14", 101.0)), 1),
    ("gold/daily_features", "volatility_non_negative", lambda f: f.with_columns(at(100, "volatility_30d", -0.1)), 1),
    ("gold/daily_features", "null_where_window_incomplete", lambda f: f.with_columns(at(0, "sma_30", 100.0)), 1),
    ("gold/daily_features", "symbol_in_dim_symbol", lambda f: f.with_columns(at(1, "symbol", "FOOUSDT")), 1),
    ("gold/daily_features", "date_in_dim_date", lambda f: f.with_columns(at(0, "date", dt.date(2022, 12, 31))), 1),
    ("gold/correlations", "schema", lambda f: f.with_columns(pl.col("corr_30d").cast(pl.Float32)), 1),
    ("gold/correlations", "corr_in_range", lambda f: f.with_columns(at(2, "corr_30d", 1.5)), 1),
    (
        "gold/correlations",
        "one_row_per_pair",
        lambda f: f.with_columns(at(1, "symbol_a", f["symbol_b"][1]), at(1, "symbol_b", f["symbol_a"][1])),
        1,
    ),
    ("gold/correlations", "symbols_in_dim_symbol", lambda f: f.with_columns(at(0, "symbol_b", "ZZZUSDT")), 1),
    ("gold/dim_symbol", "schema", lambda f: f.with_columns(at(0, "stablecoin", None)), 1),
    ("gold/dim_symbol", "unique_symbol", duplicate(3), 2),
    (
        "gold/dim_symbol",
        "listing_window_valid",
        lambda f: f.with_columns(at(2, "delisted_on", f["listed_on"][2] - dt.timedelta(days=1))),
        1,
    ),
    ("gold/dim_date", "schema", lambda f: f.with_columns(at(4, "iso_week", 0)), 1),
    ("gold/dim_date", "unique_date", duplicate(2), 2),
    (
        "gold/dim_date",
        "attributes_match_date",
        lambda f: f.with_columns(at(1, "is_weekend", not f["is_weekend"][1])),
        1,
    ),
    ("gold/category_daily", "schema", lambda f: f.with_columns(pl.col("mean_return_1d").cast(pl.Float32)), 1),
    ("gold/category_daily", "unique_date_category", duplicate(0), 2),
    (
        "gold/category_daily",
        "member_counts_consistent",
        lambda f: f.with_columns(at(0, "members_with_return_1d", f["members"][0] + 1)),
        1,
    ),
    ("gold/market_daily", "schema", lambda f: f.with_columns(pl.col("symbols").cast(pl.Int32)), 1),
    ("gold/market_daily", "unique_date", duplicate(1), 2),
    ("gold/market_daily", "breadth_consistent", lambda f: f.with_columns(at(0, "advancers", f["symbols"][0] + 1)), 1),
]


@pytest.mark.parametrize(
    ("asset", "check", "mutate", "expected"), BAD_INPUTS, ids=[f"{a}:{c}" for a, c, _, _ in BAD_INPUTS]
)
def test_minimal_bad_input_fails_only_its_check(asset, check, mutate, expected):
    result = findings(asset, mutate(CLEAN[asset]()))
    severity, count = result[check]
    assert count == expected
    other_errors = {name: n for name, (sev, n) in result.items() if n and sev == ERROR and name != check}
    assert other_errors == {}


def test_every_check_has_a_bad_input_and_there_are_at_least_20():
    catalog = {("/".join(t.asset), r.name) for t in TABLES for r in t.rules}
    from test_ml import BAD_ML_FRAMES  # ml_features, predictions, model_evaluation
    from test_quality_source_tables import BAD_FRAMES  # the CoinGecko, Fear & Greed and market tables
    from test_stream_bars import STREAM_BAD_FRAMES  # the live stream's tables

    bad = BAD_INPUTS + BAD_FRAMES + BAD_ML_FRAMES + STREAM_BAD_FRAMES
    assert {(a, c) for a, c, _, _ in bad} == catalog
    assert len(catalog) >= 20
    severities = {r.severity.value for t in TABLES for r in t.rules}
    assert severities == {"ERROR", "WARN"}


def test_missing_slots_name_the_missing_open_times():
    silver = clean_silver().filter(~pl.col("open_time").dt.hour().is_in([0, 12, 13]))
    [finding] = [
        f
        for f in evaluate_table(BY_ASSET["silver/ohlcv"], silver, context_for("silver/ohlcv", silver))
        if f.rule.name == "complete_bars"
    ]
    assert finding.rows.to_dicts() == [
        {"date": DAY, "symbol": "BTCUSDT", "missing_open_time": dt.datetime.combine(DAY, dt.time(h), tzinfo=dt.UTC)}
        for h in (0, 12, 13)
    ]


def test_empty_partition_of_a_listed_day_misses_every_bar_and_today_only_closed_ones():
    empty = clean_silver().clear()
    table = BY_ASSET["silver/ohlcv"]
    [whole] = [
        f for f in evaluate_table(table, empty, context_for("silver/ohlcv", empty)) if f.rule.name == "complete_bars"
    ]
    assert whole.count == 24
    now = dt.datetime.combine(DAY, dt.time(10, 30), tzinfo=dt.UTC)
    today = clean_silver().filter(pl.col("open_time").dt.hour() < 10)
    context = RuleContext(partition_keys=(f"{DAY}|BTCUSDT",), now=now, interval="1h")
    [partial] = [f for f in evaluate_table(table, today, context) if f.rule.name == "complete_bars"]
    assert partial.count == 0  # 10:00-11:00 has not closed yet
    before_listing = RuleContext(partition_keys=("2017-08-16|BTCUSDT",), now=NOW, interval="1h")
    [unlisted] = [f for f in evaluate_table(table, empty, before_listing) if f.rule.name == "complete_bars"]
    assert unlisted.count == 0


def test_docs_list_every_check():
    from collections import Counter
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "data-quality.md").read_text()
    section = page.split("<!-- section:quality -->")[1].split("<!-- /section:quality -->")[0]
    assert catalog_markdown() in section
    severities = Counter(rule.severity.value for table in TABLES for rule in table.rules)
    total = sum(severities.values())
    assert f"{total} checks, {severities['ERROR']} ERROR and {severities['WARN']} WARN" in " ".join(section.split())
