"""The Pandera models and catalog entries of the gold tables (features, returns, correlations, dimensions, market summaries, ML, 1-minute bars): how each
rule is written and why, next to the assets it checks (``quality/catalog.py`` collects them)."""

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData
from pandera.engines.polars_engine import DateTime

from cryptolake_assets.quality.factory import ERROR, SCHEMA_RULE, Rule, TableQuality
from cryptolake_assets.quality.model_helpers import (
    FEAR_GREED_CLASSES,
    TOP,
    UTC,
    TradeBars,
    features_window_ok,
    nullable_field,
    ohlc_ok,
    prices_positive,
    row_checks,
    unique_on,
    within,
)
from cryptolake_assets.quality.rule_helpers import (
    DIM_DATE,
    DIM_SYMBOL,
    date_in_dim_date,
    symbols_in_dim_symbol,
)
from partitions import categories, daily_partitions, daily_symbol_partitions


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
        return row_checks(data, unique_on("symbol", "date"))

    @pa.dataframe_check(name="ohlc_consistent")
    def ohlc_consistent(cls, data: PolarsData) -> pl.LazyFrame:
        return row_checks(
            data, ohlc_ok() & prices_positive() & (pl.min_horizontal("volume", "quote_volume", "trades") >= 0)
        )

    @pa.dataframe_check(name="rsi_in_range")
    def rsi_in_range(cls, data: PolarsData) -> pl.LazyFrame:
        return row_checks(data, pl.col("rsi_14").is_null() | pl.col("rsi_14").is_between(0, 100))

    @pa.dataframe_check(name="volatility_non_negative")
    def volatility_non_negative(cls, data: PolarsData) -> pl.LazyFrame:
        return row_checks(data, pl.col("volatility_30d").is_null() | (pl.col("volatility_30d") >= 0))

    @pa.dataframe_check(name="null_where_window_incomplete")
    def null_where_window_incomplete(cls, data: PolarsData) -> pl.LazyFrame:
        return row_checks(data, features_window_ok())


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
        return row_checks(data, pl.col("corr_30d").is_null() | pl.col("corr_30d").is_between(-1 - 1e-12, 1 + 1e-12))

    @pa.dataframe_check(name="one_row_per_pair")
    def one_row_per_pair(cls, data: PolarsData) -> pl.LazyFrame:
        return row_checks(data, unique_on("date", "symbol_a", "symbol_b") & (pl.col("symbol_a") < pl.col("symbol_b")))


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
        return row_checks(data, unique_on("symbol"))

    @pa.dataframe_check(name="listing_window_valid")
    def listing_window_valid(cls, data: PolarsData) -> pl.LazyFrame:
        return row_checks(
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
        return row_checks(data, unique_on("date"))

    @pa.dataframe_check(name="attributes_match_date")
    def attributes_match_date(cls, data: PolarsData) -> pl.LazyFrame:
        d = pl.col("date")
        return row_checks(
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
        return row_checks(data, unique_on("date", "category") & pl.col("category").is_in(categories()))

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
        return row_checks(data, counts)


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
        return row_checks(data, unique_on("date"))

    @pa.dataframe_check(name="breadth_consistent")
    def breadth_consistent(cls, data: PolarsData) -> pl.LazyFrame:
        breadth = pl.col("advancers") + pl.col("decliners") + pl.col("unchanged")
        return row_checks(
            data,
            (pl.min_horizontal("advancers", "decliners", "unchanged") >= 0)
            & (breadth <= pl.col("symbols"))
            & (pl.col("total_quote_volume") >= 0)
            & (pl.col("best_return_1d").is_null() | (pl.col("best_return_1d") >= pl.col("worst_return_1d"))),
        )


class DailyReturns(pa.DataFrameModel):
    """gold.daily_returns: per day and symbol the close, quote volume and 1-day returns."""

    date: pl.Date
    symbol: pl.String
    close: pl.Float64 = pa.Field(gt=0)
    quote_volume: pl.Float64 = pa.Field(ge=0)
    return_1d: pl.Float64 = nullable_field()
    log_return_1d: pl.Float64 = nullable_field()

    class Config:
        strict = True

    @pa.dataframe_check(name="unique_symbol_date")
    def unique_symbol_date(cls, data: PolarsData) -> pl.LazyFrame:
        return row_checks(data, unique_on("symbol", "date"))

    @pa.dataframe_check(name="returns_consistent")
    def returns_consistent(cls, data: PolarsData) -> pl.LazyFrame:
        r, lr = pl.col("return_1d"), pl.col("log_return_1d")
        both_null = r.is_null() & lr.is_null()
        agree = (r > -1) & ((r + 1).log() - lr).abs().le(1e-9 * (1 + lr.abs()))
        return row_checks(data, both_null | agree)


class MarketOverview(pa.DataFrameModel):
    """gold.market_overview: per day Binance breadth, CoinGecko market cap and Fear & Greed."""

    date: pl.Date
    symbols_traded: pl.Int64 = pa.Field(nullable=True, ge=0)
    total_quote_volume: pl.Float64 = pa.Field(nullable=True, ge=0)
    advancers: pl.Int64 = pa.Field(nullable=True, ge=0)
    decliners: pl.Int64 = pa.Field(nullable=True, ge=0)
    coins_with_market_cap: pl.Int64 = pa.Field(ge=0)
    universe_market_cap: pl.Float64 = pa.Field(nullable=True, ge=0)
    universe_market_cap_change_pct_24h: pl.Float64 = nullable_field()
    btc_dominance: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 1})
    top_by_market_cap: pl.List = pa.Field(nullable=True, dtype_kwargs={"inner": TOP.inner})
    fear_greed_value: pl.Int64 = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 100})
    fear_greed_classification: pl.String = pa.Field(nullable=True, isin=FEAR_GREED_CLASSES)
    fear_greed_missing: pl.Boolean = nullable_field()
    fear_greed_7d_mean: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 100})

    class Config:
        strict = True

    @pa.dataframe_check(name="unique_date")
    def unique_date(cls, data: PolarsData) -> pl.LazyFrame:
        return row_checks(data, unique_on("date"))

    @pa.dataframe_check(name="breadth_consistent")
    def breadth_consistent(cls, data: PolarsData) -> pl.LazyFrame:
        moved = pl.col("advancers") + pl.col("decliners")
        return row_checks(data, pl.col("symbols_traded").is_null() | (moved <= pl.col("symbols_traded")))

    @pa.dataframe_check(name="market_cap_present_when_counted")
    def market_cap_present_when_counted(cls, data: PolarsData) -> pl.LazyFrame:
        counted = pl.col("coins_with_market_cap") > 0
        return row_checks(data, counted == pl.col("universe_market_cap").is_not_null())


class DimSymbolMarket(pa.DataFrameModel):
    """gold.dim_symbol_market: per universe symbol its latest CoinGecko snapshot."""

    symbol: pl.String
    coingecko_id: pl.String
    coingecko_name: pl.String = nullable_field()
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
        return row_checks(data, unique_on("symbol"))


class MlFeatures(pa.DataFrameModel):
    """gold.ml_features: per day and symbol the point-in-time features and next-day targets."""

    date: pl.Date
    symbol: pl.String
    category: pl.String = nullable_field()
    ret_1d: pl.Float64 = nullable_field()
    ret_3d: pl.Float64 = nullable_field()
    ret_7d: pl.Float64 = nullable_field()
    ret_30d: pl.Float64 = nullable_field()
    volatility_30d: pl.Float64 = pa.Field(nullable=True, ge=0)
    rsi_14: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 100})
    drawdown_30d: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": -1, "max_value": 0})
    volume_zscore_30d: pl.Float64 = nullable_field()
    corr_btc_30d: pl.Float64 = nullable_field()
    category_return_1d: pl.Float64 = nullable_field()
    market_breadth: pl.Float64 = nullable_field()
    fear_greed: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 100})
    market_cap_rank: pl.Float64 = pa.Field(nullable=True, ge=1)
    target_log_return_1d: pl.Float64 = nullable_field()
    target_up: pl.Boolean = nullable_field()

    class Config:
        strict = True

    @pa.dataframe_check(name="unique_date_symbol")
    def unique_date_symbol(cls, data: PolarsData) -> pl.LazyFrame:
        return row_checks(data, unique_on("date", "symbol"))

    @pa.dataframe_check(name="features_in_range")
    def features_in_range(cls, data: PolarsData) -> pl.LazyFrame:
        return row_checks(data, within("corr_btc_30d", -1 - 1e-12, 1 + 1e-12) & within("market_breadth", -1, 1))

    @pa.dataframe_check(name="target_consistent")
    def target_consistent(cls, data: PolarsData) -> pl.LazyFrame:
        target = pl.col("target_log_return_1d")
        return row_checks(
            data, (target.is_null() & pl.col("target_up").is_null()) | (pl.col("target_up") == (target > 0))
        )


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
        return row_checks(data, unique_on("date", "symbol", "model"))

    @pa.dataframe_check(name="trained_before_date")
    def trained_before_date(cls, data: PolarsData) -> pl.LazyFrame:
        return row_checks(
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
    long_short_return: pl.Float64 = nullable_field()
    cumulative_long_short: pl.Float64

    class Config:
        strict = True

    @pa.dataframe_check(name="unique_date_strategy")
    def unique_date_strategy(cls, data: PolarsData) -> pl.LazyFrame:
        return row_checks(data, unique_on("date", "strategy") & (pl.col("hits") <= pl.col("symbols")))


GOLD_DAILY_FEATURES = TableQuality(
    asset=("gold", "daily_features"),
    model=DailyFeatures,
    partitions_def=daily_symbol_partitions,
    rules=(
        Rule(
            SCHEMA_RULE,
            ERROR,
            "The 19 feature columns with their types, non-null day aggregates, bars ≥ 1, missing_bars ≥ 0.",
        ),
        Rule("unique_symbol_date", ERROR, "One row per (symbol, date)."),
        Rule("ohlc_consistent", ERROR, "Daily low ≤ open, close ≤ high, prices > 0, volumes and trades ≥ 0."),
        Rule("rsi_in_range", ERROR, "rsi_14 within [0, 100] (or null)."),
        Rule("volatility_non_negative", ERROR, "volatility_30d ≥ 0 (or null)."),
        Rule(
            "null_where_window_incomplete",
            ERROR,
            "A feature is null while its window reaches before the symbol's history (listing day or first partition), and windows nest: a complete n-day window implies every shorter one is complete.",
        ),
        Rule(
            "symbol_in_dim_symbol",
            ERROR,
            'Referential: every symbol is a row of the gold.dim_symbol table (read through the I/O manager); WARN "cannot verify" while dim_symbol is not materialized.',
            symbols_in_dim_symbol("symbol"),
        ),
        Rule(
            "date_in_dim_date",
            ERROR,
            'Referential: every date is a row of the gold.dim_date table; WARN "cannot verify" while dim_date is not materialized.',
            date_in_dim_date,
        ),
    ),
    dimensions=(DIM_SYMBOL, DIM_DATE),
)


GOLD_CORRELATIONS = TableQuality(
    asset=("gold", "correlations"),
    model=Correlations,
    partitions_def=daily_partitions,
    rules=(
        Rule(SCHEMA_RULE, ERROR, "date, symbol_a, symbol_b, corr_30d (Float64, null only for a constant series)."),
        Rule("corr_in_range", ERROR, "corr_30d within [−1, 1] (1e-12 float slack)."),
        Rule("one_row_per_pair", ERROR, "One row per date and unordered pair: symbol_a < symbol_b, no duplicates."),
        Rule(
            "symbols_in_dim_symbol",
            ERROR,
            'Referential: both symbols are rows of the gold.dim_symbol table; WARN "cannot verify" while dim_symbol is not materialized.',
            symbols_in_dim_symbol("symbol_a", "symbol_b"),
        ),
    ),
    dimensions=(DIM_SYMBOL,),
)


GOLD_DIM_SYMBOL = TableQuality(
    asset=("gold", "dim_symbol"),
    model=DimSymbol,
    partitions_def=None,
    rules=(
        Rule(SCHEMA_RULE, ERROR, "Symbol dimension columns and types; only coingecko_id and delisted_on nullable."),
        Rule("unique_symbol", ERROR, "One row per symbol (the key facts join on)."),
        Rule("listing_window_valid", ERROR, "delisted_on ≥ listed_on, category one of the universe's categories."),
    ),
)


GOLD_DIM_DATE = TableQuality(
    asset=("gold", "dim_date"),
    model=DimDate,
    partitions_def=daily_partitions,
    rules=(
        Rule(
            SCHEMA_RULE,
            ERROR,
            "Calendar columns and types, attributes in their ranges (month 1-12, ISO weekday 1-7, ...).",
        ),
        Rule("unique_date", ERROR, "One row per date (the key facts join on)."),
        Rule("attributes_match_date", ERROR, "year, month, day, weekday and weekend flag agree with the date."),
    ),
)


GOLD_CATEGORY_DAILY = TableQuality(
    asset=("gold", "category_daily"),
    model=CategoryDaily,
    partitions_def=daily_partitions,
    rules=(
        Rule(SCHEMA_RULE, ERROR, "Category summary columns and types."),
        Rule("unique_date_category", ERROR, "One row per (date, category), a known category."),
        Rule(
            "member_counts_consistent",
            ERROR,
            "0 ≤ members with a return ≤ members ≥ 1; a mean is null exactly when no member has the return; mean return_1d > −100 %.",
        ),
    ),
)


GOLD_MARKET_DAILY = TableQuality(
    asset=("gold", "market_daily"),
    model=MarketDaily,
    partitions_def=daily_partitions,
    rules=(
        Rule(SCHEMA_RULE, ERROR, "Market summary columns and types."),
        Rule("unique_date", ERROR, "One row per date."),
        Rule(
            "breadth_consistent",
            ERROR,
            "advancers + decliners + unchanged ≤ symbols (all ≥ 0), total quote volume ≥ 0, best return ≥ worst return.",
        ),
    ),
)


GOLD_DAILY_RETURNS = TableQuality(
    asset=("gold", "daily_returns"),
    model=DailyReturns,
    partitions_def=daily_partitions,
    rules=(
        Rule(SCHEMA_RULE, ERROR, "date, symbol, close > 0, quote_volume ≥ 0, nullable returns."),
        Rule("unique_symbol_date", ERROR, "One row per (symbol, date)."),
        Rule(
            "returns_consistent",
            ERROR,
            "return_1d > −100 % and log_return_1d = ln(1 + return_1d) (1e-9 relative), both null together.",
        ),
    ),
)


GOLD_MARKET_OVERVIEW = TableQuality(
    asset=("gold", "market_overview"),
    model=MarketOverview,
    partitions_def=daily_partitions,
    rules=(
        Rule(
            SCHEMA_RULE,
            ERROR,
            "Overview columns and types; counts and volumes ≥ 0, btc_dominance within [0, 1], Fear & Greed value and 7-day mean within [0, 100], a published classification.",
        ),
        Rule("unique_date", ERROR, "One row per date."),
        Rule("breadth_consistent", ERROR, "advancers + decliners ≤ symbols_traded."),
        Rule(
            "market_cap_present_when_counted",
            ERROR,
            "universe_market_cap is given exactly when some coin had a market cap that day.",
        ),
    ),
)


GOLD_DIM_SYMBOL_MARKET = TableQuality(
    asset=("gold", "dim_symbol_market"),
    model=DimSymbolMarket,
    partitions_def=None,
    rules=(
        Rule(
            SCHEMA_RULE,
            ERROR,
            "Per symbol its latest CoinGecko snapshot: ids, rank ≥ 1, market cap and supplies ≥ 0, snapshot_date, UTC last_updated, is_stale.",
        ),
        Rule("unique_symbol", ERROR, "One row per symbol (the key facts join on)."),
    ),
)


GOLD_ML_FEATURES = TableQuality(
    asset=("gold", "ml_features"),
    model=MlFeatures,
    partitions_def=daily_partitions,
    rules=(
        Rule(
            SCHEMA_RULE,
            ERROR,
            "The 18 feature and target columns with their types; rsi_14 and Fear & Greed within [0, 100], volatility ≥ 0, drawdown within [−1, 0], market-cap rank ≥ 1.",
        ),
        Rule(
            "unique_date_symbol", ERROR, "One row per (date, symbol): a duplicate would weigh a day twice in training."
        ),
        Rule(
            "features_in_range",
            ERROR,
            "corr_btc_30d within [−1, 1] (1e-12 slack), market_breadth within [−1, 1] (or null).",
        ),
        Rule(
            "target_consistent",
            ERROR,
            "target_up = (target_log_return_1d > 0), both null together (D + 1 not closed yet).",
        ),
    ),
)


GOLD_PREDICTIONS = TableQuality(
    asset=("gold", "predictions"),
    model=Predictions,
    partitions_def=daily_partitions,
    rules=(
        Rule(
            SCHEMA_RULE, ERROR, "Prediction columns and types; a known model, training_rows ≥ 1, prob_up within [0, 1]."
        ),
        Rule("unique_date_symbol_model", ERROR, "One prediction per (date, symbol, model)."),
        Rule(
            "trained_before_date",
            ERROR,
            "Walk-forward: the model was fit on a day ≤ date, on rows whose target had closed before it (trained_through + 1 < trained_on).",
        ),
    ),
)


GOLD_MODEL_EVALUATION = TableQuality(
    asset=("gold", "model_evaluation"),
    model=ModelEvaluation,
    partitions_def=None,
    rules=(
        Rule(
            SCHEMA_RULE,
            ERROR,
            "Evaluation columns and types; symbols ≥ 1, hit_rate within [0, 1], IC within [−1, 1] or null.",
        ),
        Rule("unique_date_strategy", ERROR, "One row per (date, strategy), hits ≤ symbols."),
    ),
)


# -- the live stream (cryptolake collect) ----------------------------------------------------
class GoldBars1m(TradeBars):
    """gold.bars_1m: one bar per (symbol, minute with trades)."""

    spread: pl.Float64 = pa.Field(nullable=True)
    realized_vol: pl.Float64 = pa.Field(ge=0)
    seconds_with_trades: pl.Int64 = pa.Field(ge=1, le=60)


GOLD_BARS_1M = TableQuality(
    asset=("gold", "bars_1m"),
    model=GoldBars1m,
    partitions_def=daily_symbol_partitions,
    rules=(
        Rule(
            SCHEMA_RULE,
            ERROR,
            "The 1-minute bar columns with their types; realized_vol ≥ 0, 1 ≤ seconds_with_trades ≤ 60.",
        ),
        Rule("unique_symbol_window", ERROR, "One bar per (symbol, minute)."),
        Rule("bar_inside_low_high", ERROR, "low ≤ open, close ≤ high."),
        Rule("vwap_inside_low_high", ERROR, "low ≤ vwap ≤ high (1e-9 relative slack)."),
    ),
)
