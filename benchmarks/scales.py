"""What each benchmark scale measures: data sizes per section (issue 8)."""

import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FeatureSet:
    """A synthetic silver OHLCV data set for the silver → gold features benchmark."""

    name: str
    symbols: int
    days: int
    interval: str  # "1h" or "1m"
    start: dt.date = dt.date(2023, 1, 1)

    @property
    def bars_per_day(self) -> int:
        return {"1h": 24, "1m": 1440}[self.interval]

    @property
    def nominal_rows(self) -> int:
        return self.symbols * self.days * self.bars_per_day


@dataclass(frozen=True)
class Scale:
    name: str
    feature_sets: tuple[FeatureSet, ...]
    # (2) Dagster backfill: first/last day, symbols (None = the default universe), interval.
    backfill_start: dt.date
    backfill_end: dt.date
    backfill_symbols: int | None
    # (3) REST ingestion against the rate-limited fake: symbols × days of 1-minute klines.
    rest_symbols: int
    rest_days: int
    # (4) archive vs REST: symbols × months of 1-minute klines.
    archive_symbols: int
    archive_months: int
    notes: tuple[str, ...] = field(default=())


SCALES = {
    "small": Scale(
        name="small",
        feature_sets=(
            FeatureSet("hourly", symbols=6, days=90, interval="1h"),
            FeatureSet("minute", symbols=3, days=20, interval="1m"),
        ),
        backfill_start=dt.date(2023, 1, 1),
        backfill_end=dt.date(2023, 1, 10),
        backfill_symbols=3,
        rest_symbols=2,
        rest_days=3,
        archive_symbols=2,
        archive_months=1,
    ),
    "medium": Scale(
        name="medium",
        feature_sets=(FeatureSet("hourly", symbols=50, days=730, interval="1h"),),
        backfill_start=dt.date(2023, 1, 1),
        backfill_end=dt.date(2024, 12, 31),
        backfill_symbols=None,
        rest_symbols=10,
        rest_days=60,
        archive_symbols=10,
        archive_months=12,
    ),
    "large": Scale(
        name="large",
        feature_sets=(
            FeatureSet("hourly", symbols=50, days=730, interval="1h"),
            FeatureSet("minute", symbols=35, days=365, interval="1m"),
        ),
        backfill_start=dt.date(2023, 1, 1),
        backfill_end=dt.date(2024, 12, 31),
        backfill_symbols=None,
        rest_symbols=10,
        rest_days=60,
        archive_symbols=10,
        archive_months=12,
    ),
}
