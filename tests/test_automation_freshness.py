"""Freshness: per-layer asset policies for the freshness daemon, and the per-symbol detector.

The daemon rates an asset by its newest materialization of any partition, so it cannot see one
symbol falling behind; the detector checks each listed symbol's latest expected day instead, and
only counts a materialization made after that day closed (an intraday refresh is not the close).
"""

import datetime as dt

from dagster import AssetKey, AssetMaterialization, AssetSpec, DagsterInstance, Definitions, FreshnessPolicy, asset

from cryptolake_assets.freshness import (
    FRESHNESS_POLICIES_BY_LAYER,
    apply_freshness,
    expected_symbols,
    find_stale_symbols,
    latest_expected_day,
    with_layer_freshness,
)
from partitions import daily_partitions, daily_symbol_partitions, universe_symbols

BRONZE = AssetKey(["bronze", "klines"])
HOUR = dt.timedelta(hours=1)


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def test_layer_policies_go_to_daily_partitioned_assets_only():
    own = FreshnessPolicy.time_window(fail_window=dt.timedelta(days=2))
    specs = [
        AssetSpec(["bronze", "klines"], partitions_def=daily_symbol_partitions),
        AssetSpec(["silver", "ohlcv"], partitions_def=daily_symbol_partitions),
        AssetSpec(["gold", "market_breadth"], partitions_def=daily_partitions),
        AssetSpec(["gold", "symbols"]),  # unpartitioned reference table: no schedule keeps it "fresh"
        AssetSpec(["gold", "custom"], partitions_def=daily_partitions, freshness_policy=own),
        AssetSpec(["scratch", "x"], partitions_def=daily_partitions),
    ]

    policies = [spec.freshness_policy for spec in map(with_layer_freshness, specs)]

    assert policies[0] == FreshnessPolicy.time_window(fail_window=3 * HOUR, warn_window=2 * HOUR)
    assert policies[1] == FreshnessPolicy.time_window(fail_window=3 * HOUR, warn_window=2 * HOUR)
    assert policies[2] == FreshnessPolicy.cron(deadline_cron="0 2 * * *", lower_bound_delta=2 * HOUR)
    assert policies[3:] == [None, own, None]
    assert set(FRESHNESS_POLICIES_BY_LAYER) == {"bronze", "silver", "gold"}


def test_policies_reach_the_asset_graph_through_definitions():
    @asset(key=["bronze", "klines"], partitions_def=daily_symbol_partitions)
    def klines():
        return None

    via_list = Definitions(assets=apply_freshness([klines])).get_repository_def().asset_graph.get(BRONZE)
    via_map = Definitions(assets=[klines]).map_asset_specs(func=with_layer_freshness)
    assert via_list.freshness_policy == FRESHNESS_POLICIES_BY_LAYER["bronze"]
    assert (
        via_map.get_repository_def().asset_graph.get(BRONZE).freshness_policy == FRESHNESS_POLICIES_BY_LAYER["bronze"]
    )


def test_latest_expected_day_moves_at_close_plus_deadline():
    assert latest_expected_day(at(2024, 7, 3, 0, 59), HOUR) == dt.date(2024, 7, 1)
    assert latest_expected_day(at(2024, 7, 3, 1, 0), HOUR) == dt.date(2024, 7, 2)
    assert latest_expected_day(at(2024, 7, 3, 1, 59), 2 * HOUR) == dt.date(2024, 7, 1)


def test_expected_symbols_respect_listing_windows():
    assert "TAOUSDT" not in expected_symbols(dt.date(2024, 4, 10))
    assert "TAOUSDT" in expected_symbols(dt.date(2024, 4, 11))
    assert "AGIXUSDT" in expected_symbols(dt.date(2024, 7, 1))
    assert set(universe_symbols()) - set(expected_symbols(dt.date(2024, 7, 2))) == {"BUSDUSDT", "AGIXUSDT", "OCEANUSDT"}


def test_missing_day_is_stale_only_past_its_deadline_and_only_for_listed_symbols():
    with DagsterInstance.ephemeral() as instance:
        listed = expected_symbols(dt.date(2024, 7, 2))
        for symbol in listed:
            if symbol != "SOLUSDT":
                instance.report_runless_asset_event(AssetMaterialization(BRONZE, partition=f"2024-07-02|{symbol}"))

        stale = find_stale_symbols(instance, BRONZE, at(2024, 7, 3, 1, 30))
        before_deadline = find_stale_symbols(instance, BRONZE, at(2024, 7, 3, 0, 30))
        before_start = find_stale_symbols(instance, BRONZE, at(2020, 1, 5, 3, 0))

    assert [(s.symbol, s.day, s.deadline) for s in stale] == [("SOLUSDT", dt.date(2024, 7, 2), at(2024, 7, 3, 1, 0))]
    assert stale[0].describe() == "SOLUSDT: 2024-07-02 missing (due 2024-07-03 01:00 UTC)"
    # Before 01:00 the expected day is still 2024-07-01, which nobody materialized here.
    assert {s.day for s in before_deadline} == {dt.date(2024, 7, 1)}
    assert len(before_deadline) == len(expected_symbols(dt.date(2024, 7, 1)))
    assert before_start == []


def test_an_intraday_refresh_does_not_count_as_the_closed_day():
    today = dt.datetime.now(dt.UTC).date()
    yesterday = today - dt.timedelta(days=1)
    with DagsterInstance.ephemeral() as instance:
        # Both written now: for yesterday that is after its close, for today it is intraday.
        instance.report_runless_asset_event(AssetMaterialization(BRONZE, partition=f"{yesterday}|BTCUSDT"))
        instance.report_runless_asset_event(AssetMaterialization(BRONZE, partition=f"{today}|BTCUSDT"))

        judged_yesterday = find_stale_symbols(instance, BRONZE, dt.datetime.combine(today, dt.time(1, 30), dt.UTC))
        judged_today = find_stale_symbols(
            instance, BRONZE, dt.datetime.combine(today + dt.timedelta(days=1), dt.time(1, 30), dt.UTC)
        )

    assert "BTCUSDT" not in {s.symbol for s in judged_yesterday}
    assert "BTCUSDT" in {s.symbol for s in judged_today}
