"""The Pandera models and catalog entries of the bronze tables (klines, CoinGecko, Fear & Greed, the stream's trades): how each
rule is written and why, next to the assets it checks (``quality/catalog.py`` collects them)."""

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData
from pandera.engines.polars_engine import DateTime

from cryptolake_assets.quality.factory import ERROR, SCHEMA_RULE, WARN, Rule, RuleContext, TableQuality
from cryptolake_assets.quality.model_helpers import (
    ROI,
    UTC,
    non_negative,
    nullable_field,
    row_checks,
    unique_on,
)
from partitions import daily_partitions, daily_symbol_partitions
from resources.kline_format import INTERVAL_MS


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
        return row_checks(data, pl.col("date") == pl.from_epoch("open_time", time_unit="ms").dt.date())

    @pa.dataframe_check(name="unique_symbol_open_time")
    def unique_symbol_open_time(cls, data: PolarsData) -> pl.LazyFrame:
        return row_checks(data, unique_on("symbol", "open_time"))

    @pa.dataframe_check(name="close_after_open")
    def close_after_open(cls, data: PolarsData) -> pl.LazyFrame:
        return row_checks(data, pl.col("close_time") > pl.col("open_time"))

    @pa.dataframe_check(name="numbers_parse")
    def numbers_parse(cls, data: PolarsData) -> pl.LazyFrame:
        fields = [
            "open",
            "high",
            "low",
            "close",
            "volume",
            "quote_asset_volume",
            "taker_buy_base_volume",
            "taker_buy_quote_volume",
        ]
        parsed = [pl.col(f).str.strip_chars().cast(pl.Float64, strict=False) for f in fields]
        return row_checks(data, pl.all_horizontal([p.is_not_null() & p.is_finite() for p in parsed]))


class BronzeCoingeckoMarkets(pa.DataFrameModel):
    """bronze.coingecko_markets: /coins/markets objects as CoinGecko sent them, by capture day."""

    date: pl.Date
    id: pl.String
    symbol: pl.String
    name: pl.String
    image: pl.String = nullable_field()
    current_price: pl.Float64 = nullable_field()
    market_cap: pl.Float64 = nullable_field()
    market_cap_rank: pl.Int64 = nullable_field()
    fully_diluted_valuation: pl.Float64 = nullable_field()
    total_volume: pl.Float64 = nullable_field()
    high_24h: pl.Float64 = nullable_field()
    low_24h: pl.Float64 = nullable_field()
    price_change_24h: pl.Float64 = nullable_field()
    price_change_percentage_24h: pl.Float64 = nullable_field()
    market_cap_change_24h: pl.Float64 = nullable_field()
    market_cap_change_percentage_24h: pl.Float64 = nullable_field()
    circulating_supply: pl.Float64 = nullable_field()
    total_supply: pl.Float64 = nullable_field()
    max_supply: pl.Float64 = nullable_field()
    ath: pl.Float64 = nullable_field()
    ath_change_percentage: pl.Float64 = nullable_field()
    ath_date: pl.String = nullable_field()
    atl: pl.Float64 = nullable_field()
    atl_change_percentage: pl.Float64 = nullable_field()
    atl_date: pl.String = nullable_field()
    roi: pl.Struct = pa.Field(nullable=True, dtype_kwargs={"fields": dict(ROI.to_schema())})
    last_updated: pl.String
    ingested_at: DateTime = pa.Field(dtype_kwargs=UTC)

    class Config:
        strict = True

    @pa.dataframe_check(name="unique_date_id")
    def unique_date_id(cls, data: PolarsData) -> pl.LazyFrame:
        return row_checks(data, unique_on("date", "id"))

    @pa.dataframe_check(name="amounts_non_negative")
    def amounts_non_negative(cls, data: PolarsData) -> pl.LazyFrame:
        return row_checks(
            data,
            non_negative(
                "current_price", "market_cap", "total_volume", "circulating_supply", "total_supply", "max_supply"
            ),
        )

    @pa.dataframe_check(name="last_updated_parses")
    def last_updated_parses(cls, data: PolarsData) -> pl.LazyFrame:
        return row_checks(data, pl.col("last_updated").str.to_datetime(time_zone="UTC", strict=False).is_not_null())


class BronzeFearGreed(pa.DataFrameModel):
    """bronze.fear_greed: the index's data objects as Alternative.me sent them (strings), per day."""

    date: pl.Date
    value: pl.String
    value_classification: pl.String
    timestamp: pl.String
    time_until_update: pl.String = nullable_field()
    ingested_at: DateTime = pa.Field(dtype_kwargs=UTC)

    class Config:
        strict = True

    @pa.dataframe_check(name="unique_date")
    def unique_date(cls, data: PolarsData) -> pl.LazyFrame:
        return row_checks(data, unique_on("date"))

    @pa.dataframe_check(name="value_is_index")
    def value_is_index(cls, data: PolarsData) -> pl.LazyFrame:
        return row_checks(data, pl.col("value").str.strip_chars().cast(pl.Int64, strict=False).is_between(0, 100))

    @pa.dataframe_check(name="date_is_timestamp_day")
    def date_is_timestamp_day(cls, data: PolarsData) -> pl.LazyFrame:
        seconds = pl.col("timestamp").str.strip_chars().cast(pl.Int64, strict=False)
        return row_checks(data, pl.from_epoch(seconds, time_unit="s").dt.date() == pl.col("date"))


BRONZE_KLINES = TableQuality(
    asset=("bronze", "klines"),
    model=BronzeKlines,
    partitions_def=daily_symbol_partitions,
    rules=(
        Rule(
            SCHEMA_RULE,
            ERROR,
            "The 17 bronze columns with their types (DATE partition column, epoch-ms BIGINT times, prices as exchange strings, UTC ingested_at), no nulls but `ignore`, a known interval. Silver cannot parse anything else.",
        ),
        Rule(
            "date_is_open_time_day",
            ERROR,
            "The DATE partition column is the UTC day of open_time; otherwise a partition replace deletes or duplicates the wrong rows.",
        ),
        Rule(
            "unique_symbol_open_time",
            WARN,
            "One row per (symbol, open_time). Overlapping requests can repeat candles; silver keeps the latest ingestion and counts the rest, so this only informs.",
        ),
        Rule(
            "close_after_open",
            WARN,
            "close_time after open_time. A violating candle is not a bar; silver quarantines it (rule close_before_open).",
        ),
        Rule(
            "numbers_parse",
            WARN,
            "Prices and volumes parse as finite numbers; silver quarantines the rows that do not (rule unparseable_value).",
        ),
    ),
)


BRONZE_COINGECKO_MARKETS = TableQuality(
    asset=("bronze", "coingecko_markets"),
    model=BronzeCoingeckoMarkets,
    partitions_def=daily_partitions,
    rules=(
        Rule(
            SCHEMA_RULE,
            ERROR,
            "The 26 /coins/markets fields as CoinGecko sent them (numbers as JSON numbers, times as ISO strings, roi a struct) plus date and UTC ingested_at; id, symbol, name and last_updated never null. Silver cannot type anything else.",
        ),
        Rule(
            "unique_date_id",
            WARN,
            "One snapshot row per capture day and coin; silver keeps the latest, so a repeat only informs.",
        ),
        Rule(
            "amounts_non_negative",
            WARN,
            "Price, market cap, volume and supplies ≥ 0 where given (null: CoinGecko has none).",
        ),
        Rule("last_updated_parses", WARN, "last_updated is an ISO timestamp; silver's typed column needs it."),
    ),
)


BRONZE_FEAR_GREED = TableQuality(
    asset=("bronze", "fear_greed"),
    model=BronzeFearGreed,
    partitions_def=daily_partitions,
    rules=(
        Rule(
            SCHEMA_RULE,
            ERROR,
            "The index's data objects as Alternative.me sent them (value, value_classification, timestamp as strings; time_until_update nullable) plus date and UTC ingested_at.",
        ),
        Rule("unique_date", WARN, "One published value per day; silver keeps one."),
        Rule("value_is_index", WARN, "value is an integer 0..100; silver cannot type anything else."),
        Rule(
            "date_is_timestamp_day",
            WARN,
            "The DATE partition column is the UTC day of the published timestamp; otherwise a partition replace writes the wrong day.",
        ),
    ),
)


# -- the live stream (cryptolake collect) ----------------------------------------------------
class BronzeTrades(pa.DataFrameModel):
    """bronze.trades: stream (and REST gap-fill) trades as received, one row per trade id."""

    date: pl.Date
    symbol: pl.String
    trade_id: pl.Int64 = pa.Field(ge=0)
    price: pl.String
    qty: pl.String
    trade_time: pl.Int64
    event_time: pl.Int64 = pa.Field(nullable=True)
    is_buyer_maker: pl.Boolean
    is_best_match: pl.Boolean = pa.Field(nullable=True)
    recv_ms: pl.Int64
    source: pl.String = pa.Field(isin=["ws", "rest"])

    class Config:
        strict = True

    @pa.dataframe_check(name="date_is_trade_time_day")
    def date_is_trade_time_day(cls, data: PolarsData) -> pl.LazyFrame:
        return row_checks(data, pl.col("date") == pl.from_epoch("trade_time", time_unit="ms").dt.date())

    @pa.dataframe_check(name="unique_trade_id")
    def unique_trade_id(cls, data: PolarsData) -> pl.LazyFrame:
        return row_checks(data, unique_on("symbol", "trade_id"))

    @pa.dataframe_check(name="numbers_parse")
    def numbers_parse(cls, data: PolarsData) -> pl.LazyFrame:
        parsed = [pl.col(f).cast(pl.Float64, strict=False) for f in ("price", "qty")]
        return row_checks(data, pl.all_horizontal([p.is_not_null() & p.is_finite() & (p > 0) for p in parsed]))


def _trade_id_gaps(frame: pl.DataFrame, context: RuleContext) -> pl.DataFrame:
    """Trades right after a jump in trade ids (ids are consecutive per symbol on Binance)."""
    from cryptolake_assets.bronze.stream_parse import id_gaps

    return id_gaps(frame)


BRONZE_TRADES = TableQuality(
    asset=("bronze", "trades"),
    model=BronzeTrades,
    partitions_def=daily_symbol_partitions,
    rules=(
        Rule(
            SCHEMA_RULE,
            ERROR,
            "The 11 trade columns with their types (prices as exchange strings, epoch-ms times), source ws or rest.",
        ),
        Rule("date_is_trade_time_day", ERROR, "The DATE partition column is the UTC day of trade_time."),
        Rule(
            "unique_trade_id",
            ERROR,
            "Every trade once: no duplicate trade id per symbol (bronze de-duplicates overlaps and REST fills).",
        ),
        Rule("numbers_parse", ERROR, "price and qty parse as positive finite numbers (the rest was quarantined)."),
        Rule(
            "trade_id_gaps",
            WARN,
            "Trade ids are consecutive per symbol; failing rows are the trades right after a jump (missing_ids: how many are missing): a gap REST could not fill.",
            _trade_id_gaps,
        ),
    ),
)
