"""A partition's check result must not depend on how it was run: checked alone (a single-partition
run, or a range of up to 40 evaluated per partition) or inside a larger range (one evaluation of the
whole slice), every rule fails exactly the same rows of each partition."""

import datetime as dt

import polars as pl

from cryptolake_assets.quality.catalog import SILVER_OHLCV
from cryptolake_assets.quality.factory import RuleContext, evaluate_table, partition_rows
from cryptolake_assets.silver.transform import SILVER_OHLCV_SCHEMA

UTC = dt.UTC
DAY1, DAY2 = dt.date(2024, 3, 1), dt.date(2024, 3, 2)
NOW = dt.datetime(2024, 4, 1, tzinfo=UTC)


def bars(day: dt.date, returns: list[float], start: float) -> list[dict]:
    rows, close = [], start
    for hour, r in enumerate(returns):
        opened, close = close, close * (1 + r)
        t = dt.datetime.combine(day, dt.time(hour), tzinfo=UTC)
        rows.append(
            {
                "date": day,
                "symbol": "BTCUSDT",
                "interval": "1h",
                "open_time": t,
                "close_time": t + dt.timedelta(minutes=59, seconds=59, microseconds=999000),
                "open": opened,
                "high": max(opened, close),
                "low": min(opened, close),
                "close": close,
                "volume": 1.0,
                "quote_volume": (opened + close) / 2,
                "trades": 1,
                "taker_buy_base_volume": 0.0,
                "taker_buy_quote_volume": 0.0,
                "gap_before": 0,
                "source": "test",
            }
        )
    return rows


def two_days() -> pl.DataFrame:
    # Day 1 is calm (±0.1 % per hour) with one +2 % hour: an outlier of its own day. Day 2 swings ±3 %
    # per hour: inside a two-day slice its spread would hide day 1's move.
    calm = [0.001 if h % 2 else -0.001 for h in range(24)]
    calm[12] = 0.02
    wild = [0.03 if h % 2 else -0.03 for h in range(24)]
    first = bars(DAY1, calm, 100.0)
    return pl.DataFrame(first + bars(DAY2, wild, first[-1]["close"]), schema=SILVER_OHLCV_SCHEMA)


def failing_by_rule(frame: pl.DataFrame, keys: tuple[str, ...]) -> dict[str, dict[str, list]]:
    """Per rule and partition, the failing open times (or missing slots) of one evaluation of ``keys``."""
    out: dict[str, dict[str, list]] = {}
    for finding in evaluate_table(SILVER_OHLCV, frame, RuleContext(partition_keys=keys, now=NOW, interval="1h")):
        column = "missing_open_time" if finding.rule.name == "complete_bars" else "open_time"
        out[finding.rule.name] = {
            key: sorted(partition_rows(finding.rows, key)[column].to_list()) if finding.count else [] for key in keys
        }
    return out


def test_every_silver_rule_gives_a_partition_the_same_result_alone_and_in_a_range():
    frame = two_days().filter(pl.col("open_time") != dt.datetime(2024, 3, 2, 5, tzinfo=UTC))  # one missing bar
    keys = (f"{DAY1}|BTCUSDT", f"{DAY2}|BTCUSDT")
    alone = {}
    for key in keys:
        for rule, by_partition in failing_by_rule(partition_rows(frame, key), (key,)).items():
            alone.setdefault(rule, {}).update(by_partition)
    in_range = failing_by_rule(frame, keys)
    assert in_range == alone
    # The calm day's +2 % hour is flagged both ways (its return and the one after the jump are
    # judged against that day's own spread); the wild day has no outlier.
    jump = dt.datetime(2024, 3, 1, 12, tzinfo=UTC)
    assert alone["return_outliers"] == {keys[0]: [jump], keys[1]: []}
    assert alone["complete_bars"] == {keys[0]: [], keys[1]: [dt.datetime(2024, 3, 2, 5, tzinfo=UTC)]}
