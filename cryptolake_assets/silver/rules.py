"""Row-level rules for silver: a bronze kline failing any of them is quarantined, never dropped or fixed.

Each rule is an id (stored in the quarantine's ``rule`` column), a human reason, and a Polars
expression over the *parsed* kline (``open``… as Float64, times as epoch ms) that is True for a bad row.
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


@dataclass(frozen=True)
class RowRule:
    rule: str
    reason: str
    fails: pl.Expr


def _unparseable() -> pl.Expr:
    return pl.any_horizontal(
        [pl.col(f"{name}_num").is_null() | ~pl.col(f"{name}_num").is_finite() for name in NUMERIC_FIELDS]
    ) | pl.col("open_time").is_null() | pl.col("close_time").is_null() | pl.col("number_of_trades").is_null()


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
)
