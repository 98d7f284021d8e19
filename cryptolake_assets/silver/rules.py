"""Row-level rules for silver: a bronze kline failing any of them is quarantined, never dropped or fixed.

Each rule is an id (stored in the quarantine's ``rule`` column), a human reason, and a Polars
expression over the *parsed* kline (``open``… as Float64, times as epoch ms) that is True for a bad row.
A row is quarantined under the first rule it breaks; its reason lists every rule it breaks. The
silver ERROR checks (``silver.checks.SilverOhlcv``) assert that no such row reaches silver.

Decisions on the real quirks (docs/data-quality.md): a candle whose close_time is not after its
open_time, a candle still open when it was fetched, and volumes inconsistent with the bar's price
range are quarantined; off-grid candles after maintenance, maintenance gaps and a non-zero ``ignore``
field are kept (the first two are flagged by WARN checks); duplicates are de-duplicated by silver.
"""

from dataclasses import dataclass

import polars as pl

NUMERIC_FIELDS = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_asset_volume",
    "taker_buy_base_volume",
    "taker_buy_quote_volume",
)


# Relative and absolute slack for float volume sums (quote volume = Σ price × qty, rounded to 1e-8).
REL_TOL = 1e-6
ABS_TOL = 1e-8


@dataclass(frozen=True)
class RowRule:
    rule: str
    reason: str
    fails: pl.Expr


def _unparseable() -> pl.Expr:
    return (
        pl.any_horizontal(
            [pl.col(f"{name}_num").is_null() | ~pl.col(f"{name}_num").is_finite() for name in NUMERIC_FIELDS]
        )
        | pl.col("open_time").is_null()
        | pl.col("close_time").is_null()
        | pl.col("number_of_trades").is_null()
    )


ROW_RULES: tuple[RowRule, ...] = (
    RowRule("unparseable_value", "a price, volume or time field is missing or not a finite number", _unparseable()),
    RowRule(
        "close_before_open",
        "close_time is not after open_time (not a valid bar)",
        pl.col("close_time") <= pl.col("open_time"),
    ),
    RowRule(
        "non_positive_price",
        "a price is zero or negative",
        pl.min_horizontal("open_num", "high_num", "low_num", "close_num") <= 0,
    ),
    RowRule(
        "ohlc_inconsistent",
        "low/high do not bound open and close",
        (pl.col("low_num") > pl.min_horizontal("open_num", "close_num"))
        | (pl.col("high_num") < pl.max_horizontal("open_num", "close_num")),
    ),
    RowRule(
        "negative_volume",
        "a volume, quote volume or trade count is negative",
        (
            pl.min_horizontal(
                "volume_num", "quote_asset_volume_num", "taker_buy_base_volume_num", "taker_buy_quote_volume_num"
            )
            < 0
        )
        | (pl.col("number_of_trades") < 0),
    ),
    RowRule(
        "unclosed_candle",
        "the candle was still open when fetched (close_time not before ingested_at): its values are partial",
        pl.col("close_time") >= pl.col("ingested_at").dt.epoch("ms"),
    ),
    RowRule(
        "volume_inconsistent",
        "quote volume outside [low, high] × volume, or a taker-buy volume above its total",
        # Judged only against a valid price range (an inverted range is ohlc_inconsistent already).
        (pl.col("low_num") <= pl.col("high_num"))
        & (
            (pl.col("quote_asset_volume_num") < pl.col("low_num") * pl.col("volume_num") * (1 - REL_TOL) - ABS_TOL)
            | (pl.col("quote_asset_volume_num") > pl.col("high_num") * pl.col("volume_num") * (1 + REL_TOL) + ABS_TOL)
            | (pl.col("taker_buy_base_volume_num") > pl.col("volume_num") * (1 + REL_TOL) + ABS_TOL)
            | (pl.col("taker_buy_quote_volume_num") > pl.col("quote_asset_volume_num") * (1 + REL_TOL) + ABS_TOL)
        ),
    ),
)
