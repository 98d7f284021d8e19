"""Every data-quality rule of the lake, per table, with its severity and why (the table in
docs/data-quality.md is generated from this list by ``catalog_markdown``).

Severity policy: bronze keeps what the exchange sent, so only its shape blocks (silver quarantines
or de-duplicates the rest). Silver consistency rules are ERROR: they assert the quarantine worked
and gold must never aggregate a broken bar. Real-market facts (maintenance gaps, off-grid candles,
big moves) are WARN. Gold rules are ERROR: that is what users read.
"""

import datetime as dt

import polars as pl

from cryptolake_assets.quality import models
from cryptolake_assets.quality.completeness import missing_slots
from cryptolake_assets.quality.factory import (
    ERROR,
    SCHEMA_RULE,
    WARN,
    Rule,
    RuleContext,
    TableQuality,
    Unverifiable,
    build_table_checks,
)
from partitions import daily_partitions, daily_symbol_partitions
from partitions.daily_symbol import DATE_DIMENSION, SYMBOL_DIMENSION


def _partitions(context: RuleContext) -> list[tuple[dt.date, str]]:
    keys = [daily_symbol_partitions.get_partition_key_from_str(str(k)).keys_by_dimension for k in context.partition_keys]
    return [(dt.date.fromisoformat(k[DATE_DIMENSION]), k[SYMBOL_DIMENSION]) for k in keys]


def _missing_bars(frame: pl.DataFrame, context: RuleContext) -> pl.DataFrame:
    interval = frame["interval"][0] if not frame.is_empty() else context.interval
    if interval is None:
        raise ValueError("completeness of an empty partition needs the configured interval")
    return missing_slots(frame, _partitions(context), interval, context.now)


DIM_SYMBOL, DIM_DATE = "gold/dim_symbol", "gold/dim_date"


def _dimension(context: RuleContext, path: str) -> pl.DataFrame:
    table = context.dimensions.get(path)
    if table is None:
        raise Unverifiable(f"{path} is not materialized yet; materialize it to check the references")
    return table


def _symbols_in_dim_symbol(*columns: str):
    """Rows with a symbol column whose value is not a ``symbol`` of gold.dim_symbol."""

    def evaluate(frame: pl.DataFrame, context: RuleContext) -> pl.DataFrame:
        known = _dimension(context, DIM_SYMBOL)["symbol"].implode()
        return frame.filter(pl.any_horizontal([~pl.col(c).is_in(known) for c in columns]))

    return evaluate


def _date_in_dim_date(frame: pl.DataFrame, context: RuleContext) -> pl.DataFrame:
    """Rows whose date is not a ``date`` of gold.dim_date."""
    return frame.filter(~pl.col("date").is_in(_dimension(context, DIM_DATE)["date"].implode()))


def _every_row(frame: pl.DataFrame, context: RuleContext) -> pl.DataFrame:
    return frame


BRONZE_KLINES = TableQuality(
    asset=("bronze", "klines"),
    model=models.BronzeKlines,
    partitions_def=daily_symbol_partitions,
    rules=(
        Rule(SCHEMA_RULE, ERROR, "The 17 bronze columns with their types (DATE partition column, epoch-ms BIGINT times, prices as exchange strings, UTC ingested_at), no nulls but `ignore`, a known interval. Silver cannot parse anything else."),
        Rule("date_is_open_time_day", ERROR, "The DATE partition column is the UTC day of open_time; otherwise a partition replace deletes or duplicates the wrong rows."),
        Rule("unique_symbol_open_time", WARN, "One row per (symbol, open_time). Overlapping requests can repeat candles; silver keeps the latest ingestion and counts the rest, so this only informs."),
        Rule("close_after_open", WARN, "close_time after open_time. A violating candle is not a bar; silver quarantines it (rule close_before_open)."),
        Rule("numbers_parse", WARN, "Prices and volumes parse as finite numbers; silver quarantines the rows that do not (rule unparseable_value)."),
    ),
)

SILVER_OHLCV = TableQuality(
    asset=("silver", "ohlcv"),
    model=models.SilverOhlcv,
    partitions_def=daily_symbol_partitions,
    needs_interval=True,
    rules=(
        Rule(SCHEMA_RULE, ERROR, "Typed columns (Float64 prices/volumes, Int64 trades, Datetime(us, UTC) times, DATE partition column), no nulls, gap_before ≥ 0, a known interval."),
        Rule("date_is_open_time_day", ERROR, "The DATE partition column is the UTC day of open_time."),
        Rule("unique_symbol_open_time", ERROR, "Exactly one bar per (symbol, open_time); a duplicate would double-count volume in gold."),
        Rule("prices_positive", ERROR, "open, high, low, close > 0 (low > 0)."),
        Rule("ohlc_consistent", ERROR, "low ≤ min(open, close) and max(open, close) ≤ high."),
        Rule("volumes_non_negative", ERROR, "volume, quote_volume, taker volumes and trades ≥ 0."),
        Rule("quote_volume_consistent", ERROR, "low·volume ≤ quote_volume ≤ high·volume (every trade is priced inside the bar; 1e-6 relative slack) and taker volumes ≤ totals."),
        Rule("close_after_open", ERROR, "close_time after open_time; a candle closing before it opens must not reach silver."),
        Rule("on_interval_grid", WARN, "open_time on the interval grid. Candles after exchange maintenance can start off the hour (2018-02-09 09:28:14.789); they are real trading, kept and listed here."),
        Rule("complete_bars", WARN, "Every closed grid slot of the partition has a bar, given the interval and the symbol's listing window (today: closed slots only). Failing rows are the missing open times; gaps are recorded, never filled.", _missing_bars),
        Rule("return_outliers", WARN, "|log return| between consecutive bars beyond 10 robust standard deviations (1.4826·MAD around the median of the partition's own returns, so the result does not depend on the run's range) and ≥ 1 %. Crypto does move: flagged, not removed."),
    ),
)

SILVER_QUARANTINE = TableQuality(
    asset=("silver", "ohlcv_quarantine"),
    model=models.OhlcvQuarantine,
    partitions_def=daily_symbol_partitions,
    rules=(
        Rule(SCHEMA_RULE, ERROR, "The raw bronze columns (original values, nulls allowed where unparseable) plus rule, reason and quarantined_at."),
        Rule("rule_known", ERROR, "Every quarantined row names a silver row rule and a non-empty reason, so a reader knows why it was held back."),
        Rule("quarantine_empty", WARN, "Rows of this partition were quarantined; the sample shows them with their rule.", _every_row),
    ),
)

GOLD_DAILY_FEATURES = TableQuality(
    asset=("gold", "daily_features"),
    model=models.DailyFeatures,
    partitions_def=daily_symbol_partitions,
    rules=(
        Rule(SCHEMA_RULE, ERROR, "The 19 feature columns with their types, non-null day aggregates, bars ≥ 1, missing_bars ≥ 0."),
        Rule("unique_symbol_date", ERROR, "One row per (symbol, date)."),
        Rule("ohlc_consistent", ERROR, "Daily low ≤ open, close ≤ high, prices > 0, volumes and trades ≥ 0."),
        Rule("rsi_in_range", ERROR, "rsi_14 within [0, 100] (or null)."),
        Rule("volatility_non_negative", ERROR, "volatility_30d ≥ 0 (or null)."),
        Rule("null_where_window_incomplete", ERROR, "A feature is null while its window reaches before the symbol's history (listing day or first partition), and windows nest: a complete n-day window implies every shorter one is complete."),
        Rule("symbol_in_dim_symbol", ERROR, "Referential: every symbol is a row of the gold.dim_symbol table (read through the I/O manager); WARN \"cannot verify\" while dim_symbol is not materialized.", _symbols_in_dim_symbol("symbol")),
        Rule("date_in_dim_date", ERROR, "Referential: every date is a row of the gold.dim_date table; WARN \"cannot verify\" while dim_date is not materialized.", _date_in_dim_date),
    ),
    dimensions=(DIM_SYMBOL, DIM_DATE),
)

GOLD_CORRELATIONS = TableQuality(
    asset=("gold", "correlations"),
    model=models.Correlations,
    partitions_def=daily_partitions,
    rules=(
        Rule(SCHEMA_RULE, ERROR, "date, symbol_a, symbol_b, corr_30d (Float64, null only for a constant series)."),
        Rule("corr_in_range", ERROR, "corr_30d within [−1, 1] (1e-12 float slack)."),
        Rule("one_row_per_pair", ERROR, "One row per date and unordered pair: symbol_a < symbol_b, no duplicates."),
        Rule("symbols_in_dim_symbol", ERROR, "Referential: both symbols are rows of the gold.dim_symbol table; WARN \"cannot verify\" while dim_symbol is not materialized.", _symbols_in_dim_symbol("symbol_a", "symbol_b")),
    ),
    dimensions=(DIM_SYMBOL,),
)

GOLD_DIM_SYMBOL = TableQuality(
    asset=("gold", "dim_symbol"),
    model=models.DimSymbol,
    partitions_def=None,
    rules=(
        Rule(SCHEMA_RULE, ERROR, "Symbol dimension columns and types; only coingecko_id and delisted_on nullable."),
        Rule("unique_symbol", ERROR, "One row per symbol (the key facts join on)."),
        Rule("listing_window_valid", ERROR, "delisted_on ≥ listed_on, category one of the universe's categories."),
    ),
)

GOLD_DIM_DATE = TableQuality(
    asset=("gold", "dim_date"),
    model=models.DimDate,
    partitions_def=daily_partitions,
    rules=(
        Rule(SCHEMA_RULE, ERROR, "Calendar columns and types, attributes in their ranges (month 1-12, ISO weekday 1-7, ...)."),
        Rule("unique_date", ERROR, "One row per date (the key facts join on)."),
        Rule("attributes_match_date", ERROR, "year, month, day, weekday and weekend flag agree with the date."),
    ),
)

GOLD_CATEGORY_DAILY = TableQuality(
    asset=("gold", "category_daily"),
    model=models.CategoryDaily,
    partitions_def=daily_partitions,
    rules=(
        Rule(SCHEMA_RULE, ERROR, "Category summary columns and types."),
        Rule("unique_date_category", ERROR, "One row per (date, category), a known category."),
        Rule("member_counts_consistent", ERROR, "0 ≤ members with a return ≤ members ≥ 1; a mean is null exactly when no member has the return; mean return_1d > −100 %."),
    ),
)

GOLD_MARKET_DAILY = TableQuality(
    asset=("gold", "market_daily"),
    model=models.MarketDaily,
    partitions_def=daily_partitions,
    rules=(
        Rule(SCHEMA_RULE, ERROR, "Market summary columns and types."),
        Rule("unique_date", ERROR, "One row per date."),
        Rule("breadth_consistent", ERROR, "advancers + decliners + unchanged ≤ symbols (all ≥ 0), total quote volume ≥ 0, best return ≥ worst return."),
    ),
)

BRONZE_COINGECKO_MARKETS = TableQuality(
    asset=("bronze", "coingecko_markets"),
    model=models.BronzeCoingeckoMarkets,
    partitions_def=daily_partitions,
    rules=(
        Rule(SCHEMA_RULE, ERROR, "The 26 /coins/markets fields as CoinGecko sent them (numbers as JSON numbers, times as ISO strings, roi a struct) plus date and UTC ingested_at; id, symbol, name and last_updated never null. Silver cannot type anything else."),
        Rule("unique_date_id", WARN, "One snapshot row per capture day and coin; silver keeps the latest, so a repeat only informs."),
        Rule("amounts_non_negative", WARN, "Price, market cap, volume and supplies ≥ 0 where given (null: CoinGecko has none)."),
        Rule("last_updated_parses", WARN, "last_updated is an ISO timestamp; silver's typed column needs it."),
    ),
)

SILVER_COINGECKO_MARKETS = TableQuality(
    asset=("silver", "coingecko_markets"),
    model=models.SilverCoingeckoMarkets,
    partitions_def=daily_partitions,
    rules=(
        Rule(SCHEMA_RULE, ERROR, "Typed snapshot columns (Float64 amounts, Datetime(us, UTC) times, is_stale flag); date, symbol, coingecko_id, name, last_updated, ingested_at never null; market_cap_rank ≥ 1."),
        Rule("unique_date_symbol", ERROR, "One snapshot per capture day and universe symbol; a duplicate would double a market cap in gold."),
        Rule("amounts_non_negative", ERROR, "Price, market cap, 24 h volume, 24 h high/low and supplies ≥ 0 where given."),
        Rule("range_24h_consistent", ERROR, "low_24h ≤ high_24h where both are given."),
        Rule("supply_consistent", WARN, "circulating_supply ≤ max_supply (1e-6 relative slack) where a cap is given; CoinGecko's supplies come from different feeds, so this informs."),
    ),
)

BRONZE_FEAR_GREED = TableQuality(
    asset=("bronze", "fear_greed"),
    model=models.BronzeFearGreed,
    partitions_def=daily_partitions,
    rules=(
        Rule(SCHEMA_RULE, ERROR, "The index's data objects as Alternative.me sent them (value, value_classification, timestamp as strings; time_until_update nullable) plus date and UTC ingested_at."),
        Rule("unique_date", WARN, "One published value per day; silver keeps one."),
        Rule("value_is_index", WARN, "value is an integer 0..100; silver cannot type anything else."),
        Rule("date_is_timestamp_day", WARN, "The DATE partition column is the UTC day of the published timestamp; otherwise a partition replace writes the wrong day."),
    ),
)

SILVER_FEAR_GREED = TableQuality(
    asset=("silver", "fear_greed"),
    model=models.SilverFearGreed,
    partitions_def=daily_partitions,
    rules=(
        Rule(SCHEMA_RULE, ERROR, "One row per day: value Int64 0..100, classification one of the five published classes, UTC published_at, is_missing flag."),
        Rule("unique_date", ERROR, "One row per day (gold's 7-day mean would count a repeat twice)."),
        Rule("missing_means_no_value", ERROR, "is_missing exactly when value and classification are null: a gap is explicit, never interpolated."),
    ),
)

GOLD_DAILY_RETURNS = TableQuality(
    asset=("gold", "daily_returns"),
    model=models.DailyReturns,
    partitions_def=daily_partitions,
    rules=(
        Rule(SCHEMA_RULE, ERROR, "date, symbol, close > 0, quote_volume ≥ 0, nullable returns."),
        Rule("unique_symbol_date", ERROR, "One row per (symbol, date)."),
        Rule("returns_consistent", ERROR, "return_1d > −100 % and log_return_1d = ln(1 + return_1d) (1e-9 relative), both null together."),
    ),
)

GOLD_MARKET_OVERVIEW = TableQuality(
    asset=("gold", "market_overview"),
    model=models.MarketOverview,
    partitions_def=daily_partitions,
    rules=(
        Rule(SCHEMA_RULE, ERROR, "Overview columns and types; counts and volumes ≥ 0, btc_dominance within [0, 1], Fear & Greed value and 7-day mean within [0, 100], a published classification."),
        Rule("unique_date", ERROR, "One row per date."),
        Rule("breadth_consistent", ERROR, "advancers + decliners ≤ symbols_traded."),
        Rule("market_cap_present_when_counted", ERROR, "universe_market_cap is given exactly when some coin had a market cap that day."),
    ),
)

GOLD_DIM_SYMBOL_MARKET = TableQuality(
    asset=("gold", "dim_symbol_market"),
    model=models.DimSymbolMarket,
    partitions_def=None,
    rules=(
        Rule(SCHEMA_RULE, ERROR, "Per symbol its latest CoinGecko snapshot: ids, rank ≥ 1, market cap and supplies ≥ 0, snapshot_date, UTC last_updated, is_stale."),
        Rule("unique_symbol", ERROR, "One row per symbol (the key facts join on)."),
    ),
)

GOLD_ML_FEATURES = TableQuality(
    asset=("gold", "ml_features"),
    model=models.MlFeatures,
    partitions_def=daily_partitions,
    rules=(
        Rule(SCHEMA_RULE, ERROR, "The 18 feature and target columns with their types; rsi_14 and Fear & Greed within [0, 100], volatility ≥ 0, drawdown within [−1, 0], market-cap rank ≥ 1."),
        Rule("unique_date_symbol", ERROR, "One row per (date, symbol): a duplicate would weigh a day twice in training."),
        Rule("features_in_range", ERROR, "corr_btc_30d within [−1, 1] (1e-12 slack), market_breadth within [−1, 1] (or null)."),
        Rule("target_consistent", ERROR, "target_up = (target_log_return_1d > 0), both null together (D + 1 not closed yet)."),
    ),
)

GOLD_PREDICTIONS = TableQuality(
    asset=("gold", "predictions"),
    model=models.Predictions,
    partitions_def=daily_partitions,
    rules=(
        Rule(SCHEMA_RULE, ERROR, "Prediction columns and types; a known model, training_rows ≥ 1, prob_up within [0, 1]."),
        Rule("unique_date_symbol_model", ERROR, "One prediction per (date, symbol, model)."),
        Rule("trained_before_date", ERROR, "Walk-forward: the model was fit on a day ≤ date, on rows whose target had closed before it (trained_through + 1 < trained_on)."),
    ),
)

GOLD_MODEL_EVALUATION = TableQuality(
    asset=("gold", "model_evaluation"),
    model=models.ModelEvaluation,
    partitions_def=None,
    rules=(
        Rule(SCHEMA_RULE, ERROR, "Evaluation columns and types; symbols ≥ 1, hit_rate within [0, 1], IC within [−1, 1] or null."),
        Rule("unique_date_strategy", ERROR, "One row per (date, strategy), hits ≤ symbols."),
    ),
)

TABLES: tuple[TableQuality, ...] = (
    BRONZE_KLINES,
    BRONZE_COINGECKO_MARKETS,
    BRONZE_FEAR_GREED,
    SILVER_OHLCV,
    SILVER_QUARANTINE,
    SILVER_COINGECKO_MARKETS,
    SILVER_FEAR_GREED,
    GOLD_DAILY_FEATURES,
    GOLD_DAILY_RETURNS,
    GOLD_CORRELATIONS,
    GOLD_DIM_SYMBOL,
    GOLD_DIM_SYMBOL_MARKET,
    GOLD_DIM_DATE,
    GOLD_CATEGORY_DAILY,
    GOLD_MARKET_DAILY,
    GOLD_MARKET_OVERVIEW,
    GOLD_ML_FEATURES,
    GOLD_PREDICTIONS,
    GOLD_MODEL_EVALUATION,
)

#: One multi-asset check per table, running its rules (what ``definitions.py`` loads).
MEDALLION_CHECKS = [build_table_checks(table) for table in TABLES]


def catalog_markdown() -> str:
    """The table of every check in docs/data-quality.md: layer, asset, check, severity, why."""
    lines = ["| layer | asset | check | severity | why |", "|---|---|---|---|---|"]
    for table in TABLES:
        for rule in table.rules:
            why = rule.why.replace("|", "\\|")
            lines.append(f"| {table.layer} | `{'/'.join(table.asset)}` | `{rule.name}` | {rule.severity.value} | {why} |")
    return "\n".join(lines)
