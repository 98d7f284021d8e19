"""Freshness: per-layer asset policies (evaluated by Dagster's freshness daemon) and the per-symbol
staleness detector the asset-level state cannot replace.

The daemon judges an asset by its latest materialization of *any* partition, so one symbol that
stopped updating among 35 stays invisible there. ``find_stale_symbols`` looks at each symbol's
latest expected UTC day instead: the day must have been materialized after it closed, by a deadline.
"""

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    AssetsDefinition,
    AssetSpec,
    DagsterInstance,
    FreshnessPolicy,
    map_asset_specs,
)

from partitions import daily_partitions, daily_symbol_partitions, load_universe

# The schedules refresh the current day hourly, so bronze and silver (same run) should never be more
# than an hour old: warn after one missed refresh, fail after two. Gold is judged on the day close:
# the closed day must land between 00:00 and 02:00 UTC (later hourly refreshes count as well).
FRESHNESS_POLICIES_BY_LAYER: dict[str, FreshnessPolicy] = {
    "bronze": FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=3), warn_window=dt.timedelta(hours=2)),
    "silver": FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=3), warn_window=dt.timedelta(hours=2)),
    "gold": FreshnessPolicy.cron(deadline_cron="0 2 * * *", lower_bound_delta=dt.timedelta(hours=2), timezone="UTC"),
}

# How long after a UTC day closes its partition must exist, per date × symbol layer.
STALENESS_DEADLINES: dict[AssetKey, dt.timedelta] = {
    AssetKey(["bronze", "klines"]): dt.timedelta(hours=1),
    AssetKey(["silver", "ohlcv"]): dt.timedelta(hours=1),
    AssetKey(["gold", "daily_features"]): dt.timedelta(hours=2),
}


def with_layer_freshness(spec: AssetSpec) -> AssetSpec:
    """Give a daily-partitioned asset its layer's policy (the first key part names the layer).

    Unpartitioned assets are not kept current by the schedules, so they get none; an asset that
    declares its own policy keeps it.
    """
    policy = FRESHNESS_POLICIES_BY_LAYER.get(spec.key.path[0])
    if policy is None or spec.freshness_policy is not None:
        return spec
    if spec.partitions_def not in (daily_symbol_partitions, daily_partitions):
        return spec
    return spec.replace_attributes(freshness_policy=policy)


def apply_freshness(assets: Iterable) -> list:
    """``with_layer_freshness`` over a list of assets; other objects (source assets) pass through."""
    return [
        map_asset_specs(with_layer_freshness, [item])[0] if isinstance(item, (AssetsDefinition, AssetSpec)) else item
        for item in assets
    ]


@dataclass(frozen=True)
class StaleSymbol:
    asset_key: AssetKey
    symbol: str
    day: dt.date  # the latest day that should exist by now
    deadline: dt.datetime

    def describe(self) -> str:
        return f"{self.symbol}: {self.day} missing (due {self.deadline:%Y-%m-%d %H:%M} UTC)"


def latest_expected_day(now: dt.datetime, deadline: dt.timedelta) -> dt.date:
    """The last UTC day whose close + deadline has passed at ``now``."""
    return (now.astimezone(dt.UTC) - deadline).date() - dt.timedelta(days=1)


def expected_symbols(day: dt.date) -> list[str]:
    """Symbols of the partitions that trade on ``day`` (listing window from the universe file)."""
    partition_symbols = set(daily_symbol_partitions.get_partitions_def_for_dimension("symbol").get_partition_keys())
    return [info.symbol for info in load_universe() if info.symbol in partition_symbols and info.is_listed_on(day)]


def find_stale_symbols(
    instance: DagsterInstance,
    asset_key: AssetKey,
    now: dt.datetime,
    deadline: dt.timedelta | None = None,
) -> list[StaleSymbol]:
    """Listed symbols whose latest expected day of ``asset_key`` was not materialized after that
    day closed (missing, or only refreshed intraday) although its deadline has passed."""
    deadline = STALENESS_DEADLINES.get(asset_key, dt.timedelta(hours=1)) if deadline is None else deadline
    day = latest_expected_day(now, deadline)
    first_day = dt.date.fromisoformat(daily_partitions.start.strftime("%Y-%m-%d"))
    if day < first_day:
        return []
    symbols = expected_symbols(day)
    closed_at = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    present = _partitions_materialized_after(instance, asset_key, [f"{day}|{s}" for s in symbols], closed_at)
    return [
        StaleSymbol(asset_key=asset_key, symbol=symbol, day=day, deadline=closed_at + deadline)
        for symbol in symbols
        if f"{day}|{symbol}" not in present
    ]


def _partitions_materialized_after(
    instance: DagsterInstance, asset_key: AssetKey, partition_keys: Sequence[str], after: dt.datetime
) -> set[str]:
    if not partition_keys:
        return set()
    records_filter = AssetRecordsFilter(
        asset_key=asset_key, asset_partitions=list(partition_keys), after_timestamp=after.timestamp()
    )
    present: set[str] = set()
    cursor = None
    while True:
        result = instance.fetch_materializations(records_filter, limit=500, cursor=cursor)
        present.update(record.partition_key for record in result.records if record.partition_key)
        if not result.has_more:
            return present
        cursor = result.cursor
