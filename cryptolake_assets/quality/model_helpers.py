"""Building blocks the Pandera models of every layer share: the UTC datetime type, row-wise rule
helpers (True = the row is fine) and the reference values some rules check against."""

import datetime as dt

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData
from pandera.engines.polars_engine import DateTime

from partitions import daily_partitions, load_universe

UTC = {"time_unit": "us", "time_zone": "UTC"}  # Datetime(us, UTC): the lake stores UTC only


# Robust outlier rule: |log return − median| beyond OUTLIER_Z robust standard deviations
# (1.4826 × MAD) of the returns of the bar's own partition (symbol, day), and at least OUTLIER_MIN_ABS.
OUTLIER_Z = 10.0


OUTLIER_MIN_ABS = 0.01


def row_checks(data: PolarsData, ok: pl.Expr) -> pl.LazyFrame:
    return data.lazyframe.select(ok.fill_null(False).alias("ok"))


def unique_on(*keys: str) -> pl.Expr:
    return ~pl.struct(list(keys)).is_duplicated()


def first_calendar_day() -> dt.date:
    """The first day of ``gold.dim_date`` (the first daily partition)."""
    return daily_partitions.start.date()


def ohlc_ok() -> pl.Expr:
    return (pl.col("low") <= pl.min_horizontal("open", "close")) & (
        pl.col("high") >= pl.max_horizontal("open", "close")
    )


def prices_positive() -> pl.Expr:
    return pl.min_horizontal("open", "high", "low", "close") > 0


def return_outlier_flag() -> pl.Expr:
    """Bar-to-bar |log return| beyond a robust threshold of its partition (rows sorted by symbol, time).

    Robust z-score: |r − median(r)| / (1.4826 × MAD) > OUTLIER_Z, and |r| ≥ OUTLIER_MIN_ABS so a
    near-flat series (MAD ≈ 0) does not flag every tick.
    """
    # Per partition (symbol, UTC day): the flag of a bar depends only on its own partition's bars, so
    # a partition's result is the same whether it is checked alone or inside any range. The first
    # bar of a day has no return (the previous day's close is another partition).
    r = (pl.col("close") / pl.col("close").shift(1)).log().over("symbol", "date")
    deviation = (r - r.median().over("symbol", "date")).abs()
    mad = deviation.median().over("symbol", "date")
    return ((deviation > OUTLIER_Z * 1.4826 * mad) & (r.abs() >= OUTLIER_MIN_ABS)).fill_null(False)


# Calendar days of closes each feature needs (all must be present, else the feature is null).
FEATURE_WINDOW_DAYS = {
    "return_1d": 2,
    "log_return_1d": 2,
    "sma_7": 7,
    "rsi_14": 15,  # 14 close-to-close changes
    "sma_30": 30,
    "drawdown_30d": 30,
    "volatility_30d": 31,  # 30 log returns
}


def features_window_ok() -> pl.Expr:
    """True where the features' nulls are consistent with their windows, judged from one row.

    * Before a window can be complete (the symbol's history starts at the later of its listing day
      and the first partition), the feature must be null.
    * Windows ending on the same day are nested ([D−n+1, D]): a feature with a complete longer
      window implies every shorter one is complete, and equal windows are null together.
    """
    history_start = pl.max_horizontal(
        pl.col("symbol").replace_strict(
            {info.symbol: info.listed_on for info in load_universe()}, default=None, return_dtype=pl.Date
        ),
        pl.lit(first_calendar_day()),
    )
    days_of_history = (pl.col("date") - history_start).dt.total_days() + 1
    checks = [pl.col(feature).is_null() | (days_of_history >= days) for feature, days in FEATURE_WINDOW_DAYS.items()]
    for longer, long_days in FEATURE_WINDOW_DAYS.items():
        for shorter, short_days in FEATURE_WINDOW_DAYS.items():
            if short_days <= long_days and longer != shorter:
                checks.append(pl.col(longer).is_null() | pl.col(shorter).is_not_null())
    return pl.all_horizontal(checks)


def non_negative(*columns: str) -> pl.Expr:
    """Each column ≥ 0 where it has a value (null: the source did not give one)."""
    return pl.all_horizontal([pl.col(c).is_null() | (pl.col(c) >= 0) for c in columns])


FEAR_GREED_CLASSES = ["Extreme Fear", "Fear", "Neutral", "Greed", "Extreme Greed"]


ROI = pl.Struct({"times": pl.Float64(), "currency": pl.String(), "percentage": pl.Float64()})


TOP = pl.List(pl.Struct({"symbol": pl.String(), "market_cap": pl.Float64(), "change_pct_24h": pl.Float64()}))


def nullable_field():
    return pa.Field(nullable=True)


def within(column: str, low: float, high: float) -> pl.Expr:
    return pl.col(column).is_null() | pl.col(column).is_between(low, high)


VWAP_SLACK = 1e-9  # relative: Σ p·q / Σ q can round a hair outside [low, high]


def inside_low_high(*columns: str) -> pl.Expr:
    """Each of ``columns`` within [low, high] (bars of the live stream)."""
    return pl.all_horizontal([(pl.col(c) >= pl.col("low")) & (pl.col(c) <= pl.col("high")) for c in columns])


def vwap_inside_low_high() -> pl.Expr:
    slack = pl.col("high").abs() * VWAP_SLACK
    return (pl.col("vwap") >= pl.col("low") - slack) & (pl.col("vwap") <= pl.col("high") + slack)


class TradeBars(pa.DataFrameModel):
    """The columns and rules every bar built from trades shares (silver.bars_1s, gold.bars_1m):
    one bar per (symbol, window with trades), open and close inside [low, high], VWAP too."""

    date: pl.Date
    symbol: pl.String
    window_start: DateTime = pa.Field(dtype_kwargs=UTC)
    open: pl.Float64 = pa.Field(gt=0)
    high: pl.Float64 = pa.Field(gt=0)
    low: pl.Float64 = pa.Field(gt=0)
    close: pl.Float64 = pa.Field(gt=0)
    volume_base: pl.Float64 = pa.Field(gt=0)
    volume_quote: pl.Float64 = pa.Field(gt=0)
    trade_count: pl.Int64 = pa.Field(ge=1)
    vwap: pl.Float64

    class Config:
        strict = True

    @pa.dataframe_check(name="unique_symbol_window")
    def unique_symbol_window(cls, data: PolarsData) -> pl.LazyFrame:
        return row_checks(data, unique_on("symbol", "window_start"))

    @pa.dataframe_check(name="bar_inside_low_high")
    def bar_inside_low_high(cls, data: PolarsData) -> pl.LazyFrame:
        return row_checks(data, inside_low_high("open", "close"))

    @pa.dataframe_check(name="vwap_inside_low_high")
    def vwap_inside_low_high(cls, data: PolarsData) -> pl.LazyFrame:
        return row_checks(data, vwap_inside_low_high())
