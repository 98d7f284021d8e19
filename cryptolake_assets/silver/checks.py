"""The Pandera models and catalog entries of the silver tables (OHLCV and its quarantine, CoinGecko, Fear & Greed, 1-second bars): how each
rule is written and why, next to the assets it checks (``quality/catalog.py`` collects them)."""

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData
from pandera.engines.polars_engine import DateTime

from cryptolake_assets.quality.factory import ERROR, SCHEMA_RULE, WARN, Rule, TableQuality
from cryptolake_assets.quality.model_helpers import (
    FEAR_GREED_CLASSES,
    UTC,
    TradeBars,
    non_negative,
    nullable_field,
    ohlc_ok,
    prices_positive,
    return_outlier_flag,
    row_checks,
    unique_on,
)
from cryptolake_assets.quality.rule_helpers import (
    every_row,
    missing_bars,
)
from cryptolake_assets.silver.rules import ABS_TOL, REL_TOL, ROW_RULES
from partitions import daily_partitions, daily_symbol_partitions
from resources.kline_format import INTERVAL_MS


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
        return row_checks(data, pl.col("date") == pl.col("open_time").dt.date())

    @pa.dataframe_check(name="unique_symbol_open_time")
    def unique_symbol_open_time(cls, data: PolarsData) -> pl.LazyFrame:
        return row_checks(data, unique_on("symbol", "open_time"))

    @pa.dataframe_check(name="prices_positive")
    def prices_positive(cls, data: PolarsData) -> pl.LazyFrame:
        return row_checks(data, prices_positive())

    @pa.dataframe_check(name="ohlc_consistent")
    def ohlc_consistent(cls, data: PolarsData) -> pl.LazyFrame:
        return row_checks(data, ohlc_ok())

    @pa.dataframe_check(name="volumes_non_negative")
    def volumes_non_negative(cls, data: PolarsData) -> pl.LazyFrame:
        volumes = pl.min_horizontal("volume", "quote_volume", "taker_buy_base_volume", "taker_buy_quote_volume")
        return row_checks(data, (volumes >= 0) & (pl.col("trades") >= 0))

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
        return row_checks(data, ok)

    @pa.dataframe_check(name="close_after_open")
    def close_after_open(cls, data: PolarsData) -> pl.LazyFrame:
        return row_checks(data, pl.col("close_time") > pl.col("open_time"))

    @pa.dataframe_check(name="on_interval_grid")
    def on_interval_grid(cls, data: PolarsData) -> pl.LazyFrame:
        step = pl.col("interval").replace_strict(INTERVAL_MS, default=None, return_dtype=pl.Int64)
        return row_checks(data, pl.col("open_time").dt.epoch("ms") % step == 0)

    @pa.dataframe_check(name="return_outliers")
    def return_outliers(cls, data: PolarsData) -> pl.LazyFrame:
        flagged = (
            data.lazyframe.with_row_index("_row")
            .sort("symbol", "open_time")
            .with_columns(_outlier=return_outlier_flag())
            .sort("_row")
        )
        return flagged.select((~pl.col("_outlier")).alias("ok"))


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
        return row_checks(
            data, pl.col("rule").is_in([r.rule for r in ROW_RULES]) & (pl.col("reason").str.len_chars() > 0)
        )


class SilverCoingeckoMarkets(pa.DataFrameModel):
    """silver.coingecko_markets: one typed snapshot row per capture day and universe symbol."""

    date: pl.Date
    symbol: pl.String
    coingecko_id: pl.String
    name: pl.String
    market_cap_rank: pl.Int64 = pa.Field(nullable=True, ge=1)
    price_usd: pl.Float64 = nullable_field()
    market_cap: pl.Float64 = nullable_field()
    fully_diluted_valuation: pl.Float64 = nullable_field()
    total_volume_24h: pl.Float64 = nullable_field()
    high_24h: pl.Float64 = nullable_field()
    low_24h: pl.Float64 = nullable_field()
    price_change_24h: pl.Float64 = nullable_field()
    price_change_pct_24h: pl.Float64 = nullable_field()
    market_cap_change_24h: pl.Float64 = nullable_field()
    market_cap_change_pct_24h: pl.Float64 = nullable_field()
    circulating_supply: pl.Float64 = nullable_field()
    total_supply: pl.Float64 = nullable_field()
    max_supply: pl.Float64 = nullable_field()
    ath: pl.Float64 = nullable_field()
    ath_change_pct: pl.Float64 = nullable_field()
    ath_date: DateTime = pa.Field(nullable=True, dtype_kwargs=UTC)
    atl: pl.Float64 = nullable_field()
    atl_change_pct: pl.Float64 = nullable_field()
    atl_date: DateTime = pa.Field(nullable=True, dtype_kwargs=UTC)
    roi_times: pl.Float64 = nullable_field()
    roi_currency: pl.String = nullable_field()
    roi_percentage: pl.Float64 = nullable_field()
    last_updated: DateTime = pa.Field(dtype_kwargs=UTC)
    ingested_at: DateTime = pa.Field(dtype_kwargs=UTC)
    is_stale: pl.Boolean

    class Config:
        strict = True

    @pa.dataframe_check(name="unique_date_symbol")
    def unique_date_symbol(cls, data: PolarsData) -> pl.LazyFrame:
        return row_checks(data, unique_on("date", "symbol"))

    @pa.dataframe_check(name="amounts_non_negative")
    def amounts_non_negative(cls, data: PolarsData) -> pl.LazyFrame:
        return row_checks(
            data,
            non_negative(
                "price_usd",
                "market_cap",
                "total_volume_24h",
                "circulating_supply",
                "total_supply",
                "max_supply",
                "high_24h",
                "low_24h",
            ),
        )

    @pa.dataframe_check(name="range_24h_consistent")
    def range_24h_consistent(cls, data: PolarsData) -> pl.LazyFrame:
        low, high = pl.col("low_24h"), pl.col("high_24h")
        return row_checks(data, low.is_null() | high.is_null() | (low <= high))

    @pa.dataframe_check(name="supply_consistent")
    def supply_consistent(cls, data: PolarsData) -> pl.LazyFrame:
        # CoinGecko rounds supplies independently: 1e-6 relative slack.
        c, m = pl.col("circulating_supply"), pl.col("max_supply")
        return row_checks(data, c.is_null() | m.is_null() | (m == 0) | (c <= m * (1 + REL_TOL)))


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
        return row_checks(data, unique_on("date"))

    @pa.dataframe_check(name="missing_means_no_value")
    def missing_means_no_value(cls, data: PolarsData) -> pl.LazyFrame:
        value_null = pl.col("value").is_null()
        return row_checks(
            data, (pl.col("is_missing") == value_null) & (value_null == pl.col("value_classification").is_null())
        )


SILVER_OHLCV = TableQuality(
    asset=("silver", "ohlcv"),
    model=SilverOhlcv,
    partitions_def=daily_symbol_partitions,
    needs_interval=True,
    rules=(
        Rule(
            SCHEMA_RULE,
            ERROR,
            "Typed columns (Float64 prices/volumes, Int64 trades, Datetime(us, UTC) times, DATE partition column), no nulls, gap_before ≥ 0, a known interval.",
        ),
        Rule("date_is_open_time_day", ERROR, "The DATE partition column is the UTC day of open_time."),
        Rule(
            "unique_symbol_open_time",
            ERROR,
            "Exactly one bar per (symbol, open_time); a duplicate would double-count volume in gold.",
        ),
        Rule("prices_positive", ERROR, "open, high, low, close > 0 (low > 0)."),
        Rule("ohlc_consistent", ERROR, "low ≤ min(open, close) and max(open, close) ≤ high."),
        Rule("volumes_non_negative", ERROR, "volume, quote_volume, taker volumes and trades ≥ 0."),
        Rule(
            "quote_volume_consistent",
            ERROR,
            "low·volume ≤ quote_volume ≤ high·volume (every trade is priced inside the bar; 1e-6 relative slack) and taker volumes ≤ totals.",
        ),
        Rule(
            "close_after_open",
            ERROR,
            "close_time after open_time; a candle closing before it opens must not reach silver.",
        ),
        Rule(
            "on_interval_grid",
            WARN,
            "open_time on the interval grid. Candles after exchange maintenance can start off the hour (2018-02-09 09:28:14.789); they are real trading, kept and listed here.",
        ),
        Rule(
            "complete_bars",
            WARN,
            "Every closed grid slot of the partition has a bar, given the interval and the symbol's listing window (today: closed slots only). Failing rows are the missing open times; gaps are recorded, never filled.",
            missing_bars,
        ),
        Rule(
            "return_outliers",
            WARN,
            "|log return| between consecutive bars beyond 10 robust standard deviations (1.4826·MAD around the median of the partition's own returns, so the result does not depend on the run's range) and ≥ 1 %. Crypto does move: flagged, not removed.",
        ),
    ),
)


SILVER_QUARANTINE = TableQuality(
    asset=("silver", "ohlcv_quarantine"),
    model=OhlcvQuarantine,
    partitions_def=daily_symbol_partitions,
    rules=(
        Rule(
            SCHEMA_RULE,
            ERROR,
            "The raw bronze columns (original values, nulls allowed where unparseable) plus rule, reason and quarantined_at.",
        ),
        Rule(
            "rule_known",
            ERROR,
            "Every quarantined row names a silver row rule and a non-empty reason, so a reader knows why it was held back.",
        ),
        Rule(
            "quarantine_empty",
            WARN,
            "Rows of this partition were quarantined; the sample shows them with their rule.",
            every_row,
        ),
    ),
)


SILVER_COINGECKO_MARKETS = TableQuality(
    asset=("silver", "coingecko_markets"),
    model=SilverCoingeckoMarkets,
    partitions_def=daily_partitions,
    rules=(
        Rule(
            SCHEMA_RULE,
            ERROR,
            "Typed snapshot columns (Float64 amounts, Datetime(us, UTC) times, is_stale flag); date, symbol, coingecko_id, name, last_updated, ingested_at never null; market_cap_rank ≥ 1.",
        ),
        Rule(
            "unique_date_symbol",
            ERROR,
            "One snapshot per capture day and universe symbol; a duplicate would double a market cap in gold.",
        ),
        Rule(
            "amounts_non_negative", ERROR, "Price, market cap, 24 h volume, 24 h high/low and supplies ≥ 0 where given."
        ),
        Rule("range_24h_consistent", ERROR, "low_24h ≤ high_24h where both are given."),
        Rule(
            "supply_consistent",
            WARN,
            "circulating_supply ≤ max_supply (1e-6 relative slack) where a cap is given; CoinGecko's supplies come from different feeds, so this informs.",
        ),
    ),
)


SILVER_FEAR_GREED = TableQuality(
    asset=("silver", "fear_greed"),
    model=SilverFearGreed,
    partitions_def=daily_partitions,
    rules=(
        Rule(
            SCHEMA_RULE,
            ERROR,
            "One row per day: value Int64 0..100, classification one of the five published classes, UTC published_at, is_missing flag.",
        ),
        Rule("unique_date", ERROR, "One row per day (gold's 7-day mean would count a repeat twice)."),
        Rule(
            "missing_means_no_value",
            ERROR,
            "is_missing exactly when value and classification are null: a gap is explicit, never interpolated.",
        ),
    ),
)


# -- the live stream (cryptolake collect) ----------------------------------------------------
class SilverBars1s(TradeBars):
    """silver.bars_1s: one bar per (symbol, second with trades); bid/ask null when no quote came."""

    bid: pl.Float64 = pa.Field(nullable=True)
    ask: pl.Float64 = pa.Field(nullable=True)
    spread: pl.Float64 = pa.Field(nullable=True)

    @pa.dataframe_check(name="date_is_window_day")
    def date_is_window_day(cls, data: PolarsData) -> pl.LazyFrame:
        return row_checks(data, pl.col("date") == pl.col("window_start").dt.date())

    @pa.dataframe_check(name="second_has_quote")
    def second_has_quote(cls, data: PolarsData) -> pl.LazyFrame:
        return row_checks(data, pl.col("bid").is_not_null() & pl.col("ask").is_not_null())


SILVER_BARS_1S = TableQuality(
    asset=("silver", "bars_1s"),
    model=SilverBars1s,
    partitions_def=daily_symbol_partitions,
    rules=(
        Rule(
            SCHEMA_RULE,
            ERROR,
            "The 1-second bar columns with their types; prices and volumes > 0, trade_count ≥ 1; bid/ask/spread nullable.",
        ),
        Rule("date_is_window_day", ERROR, "The DATE partition column is the UTC day of window_start."),
        Rule("unique_symbol_window", ERROR, "One bar per (symbol, second)."),
        Rule("bar_inside_low_high", ERROR, "low ≤ open, close ≤ high."),
        Rule(
            "vwap_inside_low_high",
            ERROR,
            "low ≤ vwap ≤ high (1e-9 relative slack): every trade is priced inside the bar.",
        ),
        Rule("second_has_quote", WARN, "A second with trades but no quote received (bid/ask null)."),
    ),
)
