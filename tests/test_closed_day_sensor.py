"""A closed day's cross-symbol gold follows its silver: re-requested when silver changed after gold
was computed, and alerted when it still trails its silver after the grace time.

Before, ``daily_assets_close`` (00:40) computed day D−1's gold once: a failed or late 00:10 close of
the symbol layer left D−1's correlations and market tables computed from incomplete silver for good.
"""

import datetime as dt

import pytest
from dagster import AssetKey, AssetMaterialization, instance_for_test

from cryptolake_assets.sensors.closed_days import closed_day_state, closing_requests
from cryptolake_assets.sensors.problems import closed_day_gold_problems
from partitions import load_universe

DAY = dt.date(2024, 7, 2)
NOW = dt.datetime(2024, 7, 3, 0, 50, tzinfo=dt.UTC)  # after the 00:40 close, within the grace time
LATER = dt.datetime(2024, 7, 3, 3, 0, tzinfo=dt.UTC)  # past the two-hour grace time
SILVER, GOLD = AssetKey(["silver", "ohlcv"]), AssetKey(["gold", "daily_returns"])
LISTED = [info.symbol for info in load_universe() if info.is_listed_on(DAY)]


@pytest.fixture
def instance():
    with instance_for_test() as instance:
        yield instance


def _silver(instance, symbols):
    for symbol in symbols:
        instance.report_runless_asset_event(AssetMaterialization(asset_key=SILVER, partition=f"{DAY}|{symbol}"))


def _gold(instance):
    instance.report_runless_asset_event(AssetMaterialization(asset_key=GOLD, partition=str(DAY)))


def test_gold_computed_after_complete_silver_needs_nothing(instance):
    _silver(instance, LISTED)
    _gold(instance)
    assert closing_requests(instance, NOW) == []
    assert closed_day_gold_problems(instance, LATER) == []


def test_silver_rewritten_after_gold_requests_the_day_once_per_change(instance):
    _silver(instance, LISTED)
    _gold(instance)
    _silver(instance, ["BTCUSDT"])  # the symbol layer re-ran after the 00:40 close
    requests = closing_requests(instance, NOW)
    state = closed_day_state(instance, DAY)
    assert state.listed == len(LISTED) == state.with_silver
    assert [(r.partition_key, r.run_key) for r in requests] == [(str(DAY), f"reclose:{DAY}:{state.newest_silver}")]
    assert closing_requests(instance, NOW)[0].run_key == requests[0].run_key  # same change, same key: one run

    problems = closed_day_gold_problems(instance, LATER)
    assert [p.key for p in problems] == [f"closed_gold:{DAY}"]
    assert (
        problems[0].line
        == f"`{DAY}`: gold/daily_returns is older than its silver ({len(LISTED)}/{len(LISTED)} symbols have silver)"
    )
    assert closed_day_gold_problems(instance, NOW) == []  # within the grace time the sensor gets its chance

    _gold(instance)
    assert closing_requests(instance, NOW) == []
    assert closed_day_gold_problems(instance, LATER) == []


def test_incomplete_silver_waits_for_the_missing_symbols(instance):
    _silver(instance, LISTED[:-1])
    assert closing_requests(instance, NOW) == []
    problems = closed_day_gold_problems(instance, LATER)
    assert (
        problems[0].line
        == f"`{DAY}`: gold/daily_returns was never computed ({len(LISTED) - 1}/{len(LISTED)} symbols have silver)"
    )
    _silver(instance, LISTED[-1:])
    assert [r.partition_key for r in closing_requests(instance, NOW)] == [str(DAY)]
