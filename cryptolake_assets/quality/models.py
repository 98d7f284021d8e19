"""One Pandera (polars) model per medallion table: columns, types, nullability and named value rules.

These models are what the asset checks run (``quality/catalog.py`` builds them); nothing is written twice.
Every value rule is a *named* check so a failure maps to one Dagster asset check of the same name;
failures of the built-in structure checks (missing/extra column, dtype, null) map to ``schema``.
Row-wise rules return one boolean per row (True = row is fine), so pandera reports the failing
row indices and the asset check can show the rows themselves.
"""

import datetime as dt

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData
from pandera.engines.polars_engine import DateTime

from cryptolake_assets.silver.rules import ABS_TOL, REL_TOL, ROW_RULES
from partitions import categories, daily_partitions, load_universe
from resources.kline_format import INTERVAL_MS

UTC = {"time_unit": "us", "time_zone": "UTC"}  # Datetime(us, UTC): the lake stores UTC only

# Robust outlier rule: |log return − median| beyond OUTLIER_Z robust standard deviations
# (1.4826 × MAD) of the returns of the bar's own partition (symbol, day), and at least OUTLIER_MIN_ABS.
OUTLIER_Z = 10.0
OUTLIER_MIN_ABS = 0.01


def _rows(data: PolarsData, ok: pl.Expr) -> pl.LazyFrame:
    return data.lazyframe.select(ok.fill_null(False).alias("ok"))


def _unique(*keys: str) -> pl.Expr:
    return ~pl.struct(list(keys)).is_duplicated()


def first_calendar_day() -> dt.date:
    """The first day of ``gold.dim_date`` (the first daily partition)."""
    return daily_partitions.start.date()


def _ohlc_ok() -> pl.Expr:
    return (pl.col("low") <= pl.min_horizontal("open", "close")) & (pl.col("high") >= pl.max_horizontal("open", "close"))


def _prices_positive() -> pl.Expr:
    return pl.min_horizontal("open", "high", "low", "close") > 0


class BronzeKlines(pa.DataFrameModel):
    """bronze.klines: the 12 exchange fields as received (prices as strings, times as epoch ms)."""

    date: pl.Date
    symbol: pl.String
    open_time: pl.Int64
    open: pl.String
    high: pl.String
    low: pl.String
    close: pl.String
    volume: pl.String
    close_time: pl.Int64
    quote_asset_volume: pl.String
    number_of_trades: pl.Int64
    taker_buy_base_volume: pl.String
    taker_buy_quote_volume: pl.String
    ignore: pl.String = pa.Field(nullable=True)
    interval: pl.String = pa.Field(isin=list(INTERVAL_MS))
    source: pl.String
    ingested_at: DateTime = pa.Field(dtype_kwargs=UTC)

    class Config:
        strict = True

    @pa.dataframe_check(name="date_is_open_time_day")
    def date_is_open_time_day(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, pl.col("date") == pl.from_epoch("open_time", time_unit="ms").dt.date())

    @pa.dataframe_check(name="unique_symbol_open_time")
    def unique_symbol_open_time(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, _unique("symbol", "open_time"))

    @pa.dataframe_check(name="close_after_open")
    def close_after_open(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, pl.col("close_time") > pl.col("open_time"))

    @pa.dataframe_check(name="numbers_parse")
    def numbers_parse(cls, data: PolarsData) -> pl.LazyFrame:
        fields = ["open", "high", "low", "close", "volume", "quote_asset_volume", "taker_buy_base_volume", "taker_buy_quote_volume"]
        parsed = [pl.col(f).str.strip_chars().cast(pl.Float64, strict=False) for f in fields]
        return _rows(data, pl.all_horizontal([p.is_not_null() & p.is_finite() for p in parsed]))


class SilverOhlcv(pa.DataFrameModel):
    """silver.ohlcv: typed, UTC, de-duplicated bars; only rows that passed the silver row rules."""

    date: pl.Date
    symbol: pl.String
    interval: pl.String = pa.Field(isin=list(INTERVAL_MS))
    open_time: DateTime = pa.Field(dtype_kwargs=UTC)
    close_time: DateTime = pa.Field(dtype_kwargs=UTC)
    open: pl.Float64
    high: pl.Float64
    low: pl.Float64
    close: pl.Float64
    volume: pl.Float64
    quote_volume: pl.Float64
    trades: pl.Int64
    taker_buy_base_volume: pl.Float64
    taker_buy_quote_volume: pl.Float64
    gap_before: pl.Int32 = pa.Field(ge=0)
    source: pl.String

    class Config:
        strict = True

    @pa.dataframe_check(name="date_is_open_time_day")
    def date_is_open_time_day(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, pl.col("date") == pl.col("open_time").dt.date())

    @pa.dataframe_check(name="unique_symbol_open_time")
    def unique_symbol_open_time(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, _unique("symbol", "open_time"))

    @pa.dataframe_check(name="prices_positive")
    def prices_positive(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, _prices_positive())

    @pa.dataframe_check(name="ohlc_consistent")
    def ohlc_consistent(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, _ohlc_ok())

    @pa.dataframe_check(name="volumes_non_negative")
    def volumes_non_negative(cls, data: PolarsData) -> pl.LazyFrame:
        volumes = pl.min_horizontal("volume", "quote_volume", "taker_buy_base_volume", "taker_buy_quote_volume")
        return _rows(data, (volumes >= 0) & (pl.col("trades") >= 0))

    @pa.dataframe_check(name="quote_volume_consistent")
    def quote_volume_consistent(cls, data: PolarsData) -> pl.LazyFrame:
        # Every trade of a bar is priced inside [low, high], so Σ price × qty lies in [low, high] × volume;
        # the taker-buy part cannot exceed the whole.
        q, v = pl.col("quote_volume"), pl.col("volume")
        ok = (
            (q >= pl.col("low") * v * (1 - REL_TOL) - ABS_TOL)
            & (q <= pl.col("high") * v * (1 + REL_TOL) + ABS_TOL)
            & (pl.col("taker_buy_base_volume") <= v * (1 + REL_TOL) + ABS_TOL)
            & (pl.col("taker_buy_quote_volume") <= q * (1 + REL_TOL) + ABS_TOL)
        )
        return _rows(data, ok)

    @pa.dataframe_check(name="close_after_open")
    def close_after_open(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, pl.col("close_time") > pl.col("open_time"))

    @pa.dataframe_check(name="on_interval_grid")
    def on_interval_grid(cls, data: PolarsData) -> pl.LazyFrame:
        step = pl.col("interval").replace_strict(INTERVAL_MS, default=None, return_dtype=pl.Int64)
        return _rows(data, pl.col("open_time").dt.epoch("ms") % step == 0)

    @pa.dataframe_check(name="return_outliers")
    def return_outliers(cls, data: PolarsData) -> pl.LazyFrame:
        flagged = (
            data.lazyframe.with_row_index("_row")
            .sort("symbol", "open_time")
            .with_columns(_outlier=return_outlier_flag())
            .sort("_row")
        )
        return flagged.select((~pl.col("_outlier")).alias("ok"))


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


class OhlcvQuarantine(pa.DataFrameModel):
    """silver.ohlcv_quarantine: the raw bronze columns plus the rule, the reason and when."""

    date: pl.Date
    symbol: pl.String
    open_time: pl.Int64 = pa.Field(nullable=True)
    open: pl.String = pa.Field(nullable=True)
    high: pl.String = pa.Field(nullable=True)
    low: pl.String = pa.Field(nullable=True)
    close: pl.String = pa.Field(nullable=True)
    volume: pl.String = pa.Field(nullable=True)
    close_time: pl.Int64 = pa.Field(nullable=True)
    quote_asset_volume: pl.String = pa.Field(nullable=True)
    number_of_trades: pl.Int64 = pa.Field(nullable=True)
    taker_buy_base_volume: pl.String = pa.Field(nullable=True)
    taker_buy_quote_volume: pl.String = pa.Field(nullable=True)
    ignore: pl.String = pa.Field(nullable=True)
    interval: pl.String
    source: pl.String
    ingested_at: DateTime = pa.Field(dtype_kwargs=UTC)
    rule: pl.String
    reason: pl.String
    quarantined_at: DateTime = pa.Field(dtype_kwargs=UTC)

    class Config:
        strict = True

    @pa.dataframe_check(name="rule_known")
    def rule_known(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, pl.col("rule").is_in([r.rule for r in ROW_RULES]) & (pl.col("reason").str.len_chars() > 0))


class DailyFeatures(pa.DataFrameModel):
    """gold.daily_features: the day's bars and its window features (null = window incomplete)."""

    date: pl.Date
    symbol: pl.String
    open: pl.Float64
    high: pl.Float64
    low: pl.Float64
    close: pl.Float64
    volume: pl.Float64
    quote_volume: pl.Float64
    trades: pl.Int64
    bars: pl.Int64 = pa.Field(ge=1)
    missing_bars: pl.Int64 = pa.Field(ge=0)
    vwap: pl.Float64 = pa.Field(nullable=True)
    return_1d: pl.Float64 = pa.Field(nullable=True)
    log_return_1d: pl.Float64 = pa.Field(nullable=True)
    sma_7: pl.Float64 = pa.Field(nullable=True)
    sma_30: pl.Float64 = pa.Field(nullable=True)
    volatility_30d: pl.Float64 = pa.Field(nullable=True)
    rsi_14: pl.Float64 = pa.Field(nullable=True)
    drawdown_30d: pl.Float64 = pa.Field(nullable=True)

    class Config:
        strict = True

    @pa.dataframe_check(name="unique_symbol_date")
    def unique_symbol_date(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, _unique("symbol", "date"))

    @pa.dataframe_check(name="ohlc_consistent")
    def ohlc_consistent(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, _ohlc_ok() & _prices_positive() & (pl.min_horizontal("volume", "quote_volume", "trades") >= 0))

    @pa.dataframe_check(name="rsi_in_range")
    def rsi_in_range(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, pl.col("rsi_14").is_null() | pl.col("rsi_14").is_between(0, 100))

    @pa.dataframe_check(name="volatility_non_negative")
    def volatility_non_negative(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, pl.col("volatility_30d").is_null() | (pl.col("volatility_30d") >= 0))

    @pa.dataframe_check(name="null_where_window_incomplete")
    def null_where_window_incomplete(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, features_window_ok())



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
    checks = [
        pl.col(feature).is_null() | (days_of_history >= days) for feature, days in FEATURE_WINDOW_DAYS.items()
    ]
    for longer, long_days in FEATURE_WINDOW_DAYS.items():
        for shorter, short_days in FEATURE_WINDOW_DAYS.items():
            if short_days <= long_days and longer != shorter:
                checks.append(pl.col(longer).is_null() | pl.col(shorter).is_not_null())
    return pl.all_horizontal(checks)


class Correlations(pa.DataFrameModel):
    """gold.correlations: one row per date and unordered pair (symbol_a < symbol_b)."""

    date: pl.Date
    symbol_a: pl.String
    symbol_b: pl.String
    corr_30d: pl.Float64 = pa.Field(nullable=True)  # null: a constant series (zero variance)

    class Config:
        strict = True

    @pa.dataframe_check(name="corr_in_range")
    def corr_in_range(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, pl.col("corr_30d").is_null() | pl.col("corr_30d").is_between(-1 - 1e-12, 1 + 1e-12))

    @pa.dataframe_check(name="one_row_per_pair")
    def one_row_per_pair(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, _unique("date", "symbol_a", "symbol_b") & (pl.col("symbol_a") < pl.col("symbol_b")))


class DimSymbol(pa.DataFrameModel):
    """gold.dim_symbol: one row per universe symbol with a valid listing window."""

    symbol: pl.String
    base_asset: pl.String
    name: pl.String
    category: pl.String
    coingecko_id: pl.String = pa.Field(nullable=True)
    listed_on: pl.Date
    delisted_on: pl.Date = pa.Field(nullable=True)
    stablecoin: pl.Boolean

    class Config:
        strict = True

    @pa.dataframe_check(name="unique_symbol")
    def unique_symbol(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, _unique("symbol"))

    @pa.dataframe_check(name="listing_window_valid")
    def listing_window_valid(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(
            data,
            (pl.col("delisted_on").is_null() | (pl.col("delisted_on") >= pl.col("listed_on")))
            & pl.col("category").is_in(categories()),
        )


class DimDate(pa.DataFrameModel):
    """gold.dim_date: one row per calendar day of the partitions."""

    date: pl.Date
    year: pl.Int32
    quarter: pl.Int8 = pa.Field(in_range={"min_value": 1, "max_value": 4})
    month: pl.Int8 = pa.Field(in_range={"min_value": 1, "max_value": 12})
    month_name: pl.String
    day_of_month: pl.Int8 = pa.Field(in_range={"min_value": 1, "max_value": 31})
    day_of_year: pl.Int16 = pa.Field(in_range={"min_value": 1, "max_value": 366})
    iso_year: pl.Int32
    iso_week: pl.Int8 = pa.Field(in_range={"min_value": 1, "max_value": 53})
    day_of_week: pl.Int8 = pa.Field(in_range={"min_value": 1, "max_value": 7})
    day_name: pl.String
    is_weekend: pl.Boolean
    is_month_end: pl.Boolean

    class Config:
        strict = True

    @pa.dataframe_check(name="unique_date")
    def unique_date(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, _unique("date"))

    @pa.dataframe_check(name="attributes_match_date")
    def attributes_match_date(cls, data: PolarsData) -> pl.LazyFrame:
        d = pl.col("date")
        return _rows(
            data,
            (pl.col("year") == d.dt.year())
            & (pl.col("month") == d.dt.month())
            & (pl.col("day_of_month") == d.dt.day())
            & (pl.col("day_of_week") == d.dt.weekday())
            & (pl.col("is_weekend") == (d.dt.weekday() >= 6)),
        )


class CategoryDaily(pa.DataFrameModel):
    """gold.category_daily: per day and category, member counts and mean returns."""

    date: pl.Date
    category: pl.String
    members: pl.Int64
    members_with_return_1d: pl.Int64
    mean_return_1d: pl.Float64 = pa.Field(nullable=True)
    members_with_return_30d: pl.Int64
    mean_return_30d: pl.Float64 = pa.Field(nullable=True)

    class Config:
        strict = True

    @pa.dataframe_check(name="unique_date_category")
    def unique_date_category(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, _unique("date", "category") & pl.col("category").is_in(categories()))

    @pa.dataframe_check(name="member_counts_consistent")
    def member_counts_consistent(cls, data: PolarsData) -> pl.LazyFrame:
        counts = (
            (pl.col("members") >= 1)
            & pl.col("members_with_return_1d").is_between(0, pl.col("members"))
            & pl.col("members_with_return_30d").is_between(0, pl.col("members"))
            & ((pl.col("members_with_return_1d") == 0) == pl.col("mean_return_1d").is_null())
            & ((pl.col("members_with_return_30d") == 0) == pl.col("mean_return_30d").is_null())
            & (pl.col("mean_return_1d").is_null() | (pl.col("mean_return_1d") > -1))
        )
        return _rows(data, counts)


class MarketDaily(pa.DataFrameModel):
    """gold.market_daily: per day, breadth and the best and worst performer."""

    date: pl.Date
    symbols: pl.Int64
    total_quote_volume: pl.Float64
    advancers: pl.Int64
    decliners: pl.Int64
    unchanged: pl.Int64
    best_symbol: pl.String = pa.Field(nullable=True)
    best_return_1d: pl.Float64 = pa.Field(nullable=True)
    worst_symbol: pl.String = pa.Field(nullable=True)
    worst_return_1d: pl.Float64 = pa.Field(nullable=True)

    class Config:
        strict = True

    @pa.dataframe_check(name="unique_date")
    def unique_date(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, _unique("date"))

    @pa.dataframe_check(name="breadth_consistent")
    def breadth_consistent(cls, data: PolarsData) -> pl.LazyFrame:
        breadth = pl.col("advancers") + pl.col("decliners") + pl.col("unchanged")
        return _rows(
            data,
            (pl.min_horizontal("advancers", "decliners", "unchanged") >= 0)
            & (breadth <= pl.col("symbols"))
            & (pl.col("total_quote_volume") >= 0)
            & (pl.col("best_return_1d").is_null() | (pl.col("best_return_1d") >= pl.col("worst_return_1d"))),
        )



def _non_negative(*columns: str) -> pl.Expr:
    """Each column ≥ 0 where it has a value (null: the source did not give one)."""
    return pl.all_horizontal([pl.col(c).is_null() | (pl.col(c) >= 0) for c in columns])


FEAR_GREED_CLASSES = ["Extreme Fear", "Fear", "Neutral", "Greed", "Extreme Greed"]
ROI = pl.Struct({"times": pl.Float64(), "currency": pl.String(), "percentage": pl.Float64()})
TOP = pl.List(pl.Struct({"symbol": pl.String(), "market_cap": pl.Float64(), "change_pct_24h": pl.Float64()}))
def _nullable():
    return pa.Field(nullable=True)


class BronzeCoingeckoMarkets(pa.DataFrameModel):
    """bronze.coingecko_markets: /coins/markets objects as CoinGecko sent them, by capture day."""

    date: pl.Date
    id: pl.String
    symbol: pl.String
    name: pl.String
    image: pl.String = _nullable()
    current_price: pl.Float64 = _nullable()
    market_cap: pl.Float64 = _nullable()
    market_cap_rank: pl.Int64 = _nullable()
    fully_diluted_valuation: pl.Float64 = _nullable()
    total_volume: pl.Float64 = _nullable()
    high_24h: pl.Float64 = _nullable()
    low_24h: pl.Float64 = _nullable()
    price_change_24h: pl.Float64 = _nullable()
    price_change_percentage_24h: pl.Float64 = _nullable()
    market_cap_change_24h: pl.Float64 = _nullable()
    market_cap_change_percentage_24h: pl.Float64 = _nullable()
    circulating_supply: pl.Float64 = _nullable()
    total_supply: pl.Float64 = _nullable()
    max_supply: pl.Float64 = _nullable()
    ath: pl.Float64 = _nullable()
    ath_change_percentage: pl.Float64 = _nullable()
    ath_date: pl.String = _nullable()
    atl: pl.Float64 = _nullable()
    atl_change_percentage: pl.Float64 = _nullable()
    atl_date: pl.String = _nullable()
    roi: pl.Struct = pa.Field(nullable=True, dtype_kwargs={"fields": dict(ROI.to_schema())})
    last_updated: pl.String
    ingested_at: DateTime = pa.Field(dtype_kwargs=UTC)

    class Config:
        strict = True

    @pa.dataframe_check(name="unique_date_id")
    def unique_date_id(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, _unique("date", "id"))

    @pa.dataframe_check(name="amounts_non_negative")
    def amounts_non_negative(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, _non_negative("current_price", "market_cap", "total_volume", "circulating_supply", "total_supply", "max_supply"))

    @pa.dataframe_check(name="last_updated_parses")
    def last_updated_parses(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, pl.col("last_updated").str.to_datetime(time_zone="UTC", strict=False).is_not_null())


class SilverCoingeckoMarkets(pa.DataFrameModel):
    """silver.coingecko_markets: one typed snapshot row per capture day and universe symbol."""

    date: pl.Date
    symbol: pl.String
    coingecko_id: pl.String
    name: pl.String
    market_cap_rank: pl.Int64 = pa.Field(nullable=True, ge=1)
    price_usd: pl.Float64 = _nullable()
    market_cap: pl.Float64 = _nullable()
    fully_diluted_valuation: pl.Float64 = _nullable()
    total_volume_24h: pl.Float64 = _nullable()
    high_24h: pl.Float64 = _nullable()
    low_24h: pl.Float64 = _nullable()
    price_change_24h: pl.Float64 = _nullable()
    price_change_pct_24h: pl.Float64 = _nullable()
    market_cap_change_24h: pl.Float64 = _nullable()
    market_cap_change_pct_24h: pl.Float64 = _nullable()
    circulating_supply: pl.Float64 = _nullable()
    total_supply: pl.Float64 = _nullable()
    max_supply: pl.Float64 = _nullable()
    ath: pl.Float64 = _nullable()
    ath_change_pct: pl.Float64 = _nullable()
    ath_date: DateTime = pa.Field(nullable=True, dtype_kwargs=UTC)
    atl: pl.Float64 = _nullable()
    atl_change_pct: pl.Float64 = _nullable()
    atl_date: DateTime = pa.Field(nullable=True, dtype_kwargs=UTC)
    roi_times: pl.Float64 = _nullable()
    roi_currency: pl.String = _nullable()
    roi_percentage: pl.Float64 = _nullable()
    last_updated: DateTime = pa.Field(dtype_kwargs=UTC)
    ingested_at: DateTime = pa.Field(dtype_kwargs=UTC)
    is_stale: pl.Boolean

    class Config:
        strict = True

    @pa.dataframe_check(name="unique_date_symbol")
    def unique_date_symbol(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, _unique("date", "symbol"))

    @pa.dataframe_check(name="amounts_non_negative")
    def amounts_non_negative(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, _non_negative("price_usd", "market_cap", "total_volume_24h", "circulating_supply", "total_supply", "max_supply", "high_24h", "low_24h"))

    @pa.dataframe_check(name="range_24h_consistent")
    def range_24h_consistent(cls, data: PolarsData) -> pl.LazyFrame:
        low, high = pl.col("low_24h"), pl.col("high_24h")
        return _rows(data, low.is_null() | high.is_null() | (low <= high))

    @pa.dataframe_check(name="supply_consistent")
    def supply_consistent(cls, data: PolarsData) -> pl.LazyFrame:
        # CoinGecko rounds supplies independently: 1e-6 relative slack.
        c, m = pl.col("circulating_supply"), pl.col("max_supply")
        return _rows(data, c.is_null() | m.is_null() | (m == 0) | (c <= m * (1 + REL_TOL)))


class BronzeFearGreed(pa.DataFrameModel):
    """bronze.fear_greed: the index's data objects as Alternative.me sent them (strings), per day."""

    date: pl.Date
    value: pl.String
    value_classification: pl.String
    timestamp: pl.String
    time_until_update: pl.String = _nullable()
    ingested_at: DateTime = pa.Field(dtype_kwargs=UTC)

    class Config:
        strict = True

    @pa.dataframe_check(name="unique_date")
    def unique_date(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, _unique("date"))

    @pa.dataframe_check(name="value_is_index")
    def value_is_index(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, pl.col("value").str.strip_chars().cast(pl.Int64, strict=False).is_between(0, 100))

    @pa.dataframe_check(name="date_is_timestamp_day")
    def date_is_timestamp_day(cls, data: PolarsData) -> pl.LazyFrame:
        seconds = pl.col("timestamp").str.strip_chars().cast(pl.Int64, strict=False)
        return _rows(data, pl.from_epoch(seconds, time_unit="s").dt.date() == pl.col("date"))


class SilverFearGreed(pa.DataFrameModel):
    """silver.fear_greed: one row per day, the integer index or an explicit gap (is_missing)."""

    date: pl.Date
    value: pl.Int64 = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 100})
    value_classification: pl.String = pa.Field(nullable=True, isin=FEAR_GREED_CLASSES)
    published_at: DateTime = pa.Field(nullable=True, dtype_kwargs=UTC)
    is_missing: pl.Boolean
    ingested_at: DateTime = pa.Field(nullable=True, dtype_kwargs=UTC)

    class Config:
        strict = True

    @pa.dataframe_check(name="unique_date")
    def unique_date(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, _unique("date"))

    @pa.dataframe_check(name="missing_means_no_value")
    def missing_means_no_value(cls, data: PolarsData) -> pl.LazyFrame:
        value_null = pl.col("value").is_null()
        return _rows(data, (pl.col("is_missing") == value_null) & (value_null == pl.col("value_classification").is_null()))


class DailyReturns(pa.DataFrameModel):
    """gold.daily_returns: per day and symbol the close, quote volume and 1-day returns."""

    date: pl.Date
    symbol: pl.String
    close: pl.Float64 = pa.Field(gt=0)
    quote_volume: pl.Float64 = pa.Field(ge=0)
    return_1d: pl.Float64 = _nullable()
    log_return_1d: pl.Float64 = _nullable()

    class Config:
        strict = True

    @pa.dataframe_check(name="unique_symbol_date")
    def unique_symbol_date(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, _unique("symbol", "date"))

    @pa.dataframe_check(name="returns_consistent")
    def returns_consistent(cls, data: PolarsData) -> pl.LazyFrame:
        r, lr = pl.col("return_1d"), pl.col("log_return_1d")
        both_null = r.is_null() & lr.is_null()
        agree = (r > -1) & ((r + 1).log() - lr).abs().le(1e-9 * (1 + lr.abs()))
        return _rows(data, both_null | agree)


class MarketOverview(pa.DataFrameModel):
    """gold.market_overview: per day Binance breadth, CoinGecko market cap and Fear & Greed."""

    date: pl.Date
    symbols_traded: pl.Int64 = pa.Field(nullable=True, ge=0)
    total_quote_volume: pl.Float64 = pa.Field(nullable=True, ge=0)
    advancers: pl.Int64 = pa.Field(nullable=True, ge=0)
    decliners: pl.Int64 = pa.Field(nullable=True, ge=0)
    coins_with_market_cap: pl.Int64 = pa.Field(ge=0)
    universe_market_cap: pl.Float64 = pa.Field(nullable=True, ge=0)
    universe_market_cap_change_pct_24h: pl.Float64 = _nullable()
    btc_dominance: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 1})
    top_by_market_cap: pl.List = pa.Field(nullable=True, dtype_kwargs={"inner": TOP.inner})
    fear_greed_value: pl.Int64 = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 100})
    fear_greed_classification: pl.String = pa.Field(nullable=True, isin=FEAR_GREED_CLASSES)
    fear_greed_missing: pl.Boolean = _nullable()
    fear_greed_7d_mean: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 100})

    class Config:
        strict = True

    @pa.dataframe_check(name="unique_date")
    def unique_date(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, _unique("date"))

    @pa.dataframe_check(name="breadth_consistent")
    def breadth_consistent(cls, data: PolarsData) -> pl.LazyFrame:
        moved = pl.col("advancers") + pl.col("decliners")
        return _rows(data, pl.col("symbols_traded").is_null() | (moved <= pl.col("symbols_traded")))

    @pa.dataframe_check(name="market_cap_present_when_counted")
    def market_cap_present_when_counted(cls, data: PolarsData) -> pl.LazyFrame:
        counted = pl.col("coins_with_market_cap") > 0
        return _rows(data, counted == pl.col("universe_market_cap").is_not_null())


class DimSymbolMarket(pa.DataFrameModel):
    """gold.dim_symbol_market: per universe symbol its latest CoinGecko snapshot."""

    symbol: pl.String
    coingecko_id: pl.String
    coingecko_name: pl.String = _nullable()
    market_cap_rank: pl.Int64 = pa.Field(nullable=True, ge=1)
    market_cap: pl.Float64 = pa.Field(nullable=True, ge=0)
    circulating_supply: pl.Float64 = pa.Field(nullable=True, ge=0)
    total_supply: pl.Float64 = pa.Field(nullable=True, ge=0)
    max_supply: pl.Float64 = pa.Field(nullable=True, ge=0)
    snapshot_date: pl.Date
    last_updated: DateTime = pa.Field(dtype_kwargs=UTC)
    is_stale: pl.Boolean

    class Config:
        strict = True

    @pa.dataframe_check(name="unique_symbol")
    def unique_symbol(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, _unique("symbol"))


def _in(column: str, low: float, high: float) -> pl.Expr:
    return pl.col(column).is_null() | pl.col(column).is_between(low, high)


class MlFeatures(pa.DataFrameModel):
    """gold.ml_features: per day and symbol the point-in-time features and next-day targets."""

    date: pl.Date
    symbol: pl.String
    category: pl.String = _nullable()
    ret_1d: pl.Float64 = _nullable()
    ret_3d: pl.Float64 = _nullable()
    ret_7d: pl.Float64 = _nullable()
    ret_30d: pl.Float64 = _nullable()
    volatility_30d: pl.Float64 = pa.Field(nullable=True, ge=0)
    rsi_14: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 100})
    drawdown_30d: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": -1, "max_value": 0})
    volume_zscore_30d: pl.Float64 = _nullable()
    corr_btc_30d: pl.Float64 = _nullable()
    category_return_1d: pl.Float64 = _nullable()
    market_breadth: pl.Float64 = _nullable()
    fear_greed: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 100})
    market_cap_rank: pl.Float64 = pa.Field(nullable=True, ge=1)
    target_log_return_1d: pl.Float64 = _nullable()
    target_up: pl.Boolean = _nullable()

    class Config:
        strict = True

    @pa.dataframe_check(name="unique_date_symbol")
    def unique_date_symbol(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, _unique("date", "symbol"))

    @pa.dataframe_check(name="features_in_range")
    def features_in_range(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, _in("corr_btc_30d", -1 - 1e-12, 1 + 1e-12) & _in("market_breadth", -1, 1))

    @pa.dataframe_check(name="target_consistent")
    def target_consistent(cls, data: PolarsData) -> pl.LazyFrame:
        target = pl.col("target_log_return_1d")
        return _rows(data, (target.is_null() & pl.col("target_up").is_null()) | (pl.col("target_up") == (target > 0)))


class Predictions(pa.DataFrameModel):
    """gold.predictions: per day, symbol and model the walk-forward prediction."""

    date: pl.Date
    symbol: pl.String
    model: pl.String = pa.Field(isin=["linear", "gbm"])
    model_version: pl.String
    trained_on: pl.Date
    trained_through: pl.Date
    training_rows: pl.Int64 = pa.Field(ge=1)
    predicted_log_return: pl.Float64
    prob_up: pl.Float64 = pa.Field(in_range={"min_value": 0, "max_value": 1})

    class Config:
        strict = True

    @pa.dataframe_check(name="unique_date_symbol_model")
    def unique_date_symbol_model(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, _unique("date", "symbol", "model"))

    @pa.dataframe_check(name="trained_before_date")
    def trained_before_date(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(
            data,
            (pl.col("trained_on") <= pl.col("date"))
            & (pl.col("trained_through") + pl.duration(days=1) < pl.col("trained_on")),
        )


class ModelEvaluation(pa.DataFrameModel):
    """gold.model_evaluation: per day and strategy the out-of-sample figures."""

    date: pl.Date
    strategy: pl.String  # type: ignore[assignment]  # the column is named strategy (pandera's classmethod)
    symbols: pl.Int64 = pa.Field(ge=1)
    hits: pl.Int64 = pa.Field(ge=0)
    hit_rate: pl.Float64 = pa.Field(in_range={"min_value": 0, "max_value": 1})
    ic: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": -1 - 1e-12, "max_value": 1 + 1e-12})
    long_short_return: pl.Float64 = _nullable()
    cumulative_long_short: pl.Float64

    class Config:
        strict = True

    @pa.dataframe_check(name="unique_date_strategy")
    def unique_date_strategy(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, _unique("date", "strategy") & (pl.col("hits") <= pl.col("symbols")))
