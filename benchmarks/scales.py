"""What each benchmark scale measures: data sizes per section (issue 8)."""

import datetime as dt
from dataclasses import dataclass


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
    backfill_timeout: float  # seconds per launch; a backfill still running then is stopped and reported
    # (3) REST ingestion against the rate-limited fake and (4) archive vs REST: the same range,
    # symbols × whole calendar months of 1-minute klines from ingest_start.
    ingest_symbols: int
    ingest_months: int
    ingest_start: dt.date = dt.date(2024, 1, 1)

    @property
    def ingest_end(self) -> dt.date:
        """First day after the ingested months."""
        month = self.ingest_start.month - 1 + self.ingest_months
        return dt.date(self.ingest_start.year + month // 12, month % 12 + 1, 1)


SCALES = {
    "small": Scale(
        name="small",
        feature_sets=(
            FeatureSet("hourly", symbols=6, days=90, interval="1h"),
            FeatureSet("minute", symbols=3, days=20, interval="1m"),
        ),
        backfill_start=dt.date(2023, 1, 1),
        backfill_end=dt.date(2023, 1, 5),
        backfill_symbols=2,
        backfill_timeout=600,
        ingest_symbols=2,
        ingest_months=1,
    ),
    "medium": Scale(
        name="medium",
        feature_sets=(FeatureSet("hourly", symbols=50, days=730, interval="1h"),),
        backfill_start=dt.date(2023, 1, 1),
        backfill_end=dt.date(2024, 12, 31),
        backfill_symbols=None,
        backfill_timeout=900,
        ingest_symbols=10,
        ingest_months=12,
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
        backfill_timeout=900,
        ingest_symbols=10,
        ingest_months=12,
    ),
}
