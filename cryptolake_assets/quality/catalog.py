"""Every data-quality rule of the lake, per table, with its severity and why. The models and rules
live next to the tables they check (``bronze/checks.py``, ``silver/checks.py``, ``gold/checks.py``);
this module collects them into the asset checks and the documented table (``catalog_markdown``).

Each table has one Pandera (polars) model (columns, types, nullability and named value rules) and a
catalog entry (every rule with its severity and why). Every value rule is a *named* check, so a
failure maps to the Dagster asset check of the same name; failures of the built-in structure checks
(missing/extra column, dtype, null) map to ``schema``. Row-wise rules return one boolean per row
(True = row is fine), so the failing rows can be shown.

Severity policy: bronze keeps what the exchange sent, so only its shape blocks (silver quarantines
or de-duplicates the rest). Silver consistency rules are ERROR: they assert the quarantine worked
and gold must never aggregate a broken bar. Real-market facts (maintenance gaps, off-grid candles,
big moves) are WARN. Gold rules are ERROR: that is what users read.
"""

from cryptolake_assets.bronze.checks import (
    BRONZE_COINGECKO_MARKETS,
    BRONZE_FEAR_GREED,
    BRONZE_KLINES,
    BRONZE_TRADES,
)
from cryptolake_assets.gold.checks import (
    GOLD_BARS_1M,
    GOLD_CATEGORY_DAILY,
    GOLD_CORRELATIONS,
    GOLD_DAILY_FEATURES,
    GOLD_DAILY_RETURNS,
    GOLD_DIM_DATE,
    GOLD_DIM_SYMBOL,
    GOLD_DIM_SYMBOL_MARKET,
    GOLD_MARKET_DAILY,
    GOLD_MARKET_OVERVIEW,
    GOLD_ML_FEATURES,
    GOLD_MODEL_EVALUATION,
    GOLD_PREDICTIONS,
)
from cryptolake_assets.quality.factory import TableQuality, build_table_checks
from cryptolake_assets.silver.checks import (
    SILVER_BARS_1S,
    SILVER_COINGECKO_MARKETS,
    SILVER_FEAR_GREED,
    SILVER_OHLCV,
    SILVER_QUARANTINE,
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
    BRONZE_TRADES,
    SILVER_BARS_1S,
    GOLD_BARS_1M,
)


#: One multi-asset check per table, running its rules (what ``definitions.py`` loads).
MEDALLION_CHECKS = [build_table_checks(table) for table in TABLES]


def catalog_markdown() -> str:
    """The table of every check in docs/data-quality.md: layer, asset, check, severity, why."""
    lines = ["| layer | asset | check | severity | why |", "|---|---|---|---|---|"]
    for table in TABLES:
        for rule in table.rules:
            why = rule.why.replace("|", "\\|")
            lines.append(
                f"| {table.layer} | `{'/'.join(table.asset)}` | `{rule.name}` | {rule.severity.value} | {why} |"
            )
    return "\n".join(lines)
