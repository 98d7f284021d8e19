"""What the dashboard pages draw, as pure functions of published lake tables (Polars in, Polars out).

The pages read the tables through ``LakeReader`` (one load per Delta version) and call these;
nothing here imports Streamlit, so every number a page shows is unit-testable.
"""

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from cryptolake_assets.api.app import FRESH_WITHIN

#: What a table cell shows for a missing value ("-" alone would render as an empty markdown list item).
MISSING = "n/a"

TOP_SCHEMA = pl.Schema(
    {"rank": pl.UInt32(), "symbol": pl.String(), "market_cap": pl.Float64(), "change_pct_24h": pl.Float64()}
)

#: The table whose newest ``date`` stands for each published table's freshness (dims have no date).
DATED_TABLES = (
    ("silver", "ohlcv"),
    ("silver", "ohlcv_quarantine"),
    ("silver", "fear_greed"),
    ("silver", "coingecko_markets"),
    ("gold", "daily_features"),
    ("gold", "daily_returns"),
    ("gold", "correlations"),
    ("gold", "market_daily"),
    ("gold", "market_overview"),
    ("gold", "category_daily"),
    ("quality", "check_results"),
)


# --- Filters kept in the URL ------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    start: dt.date
    end: dt.date
    symbols: tuple[str, ...]
    category: str | None
    day: dt.date


def _date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def parse_filters(
    params: Mapping[str, str],
    first_day: dt.date,
    last_day: dt.date,
    symbols: list[str],
    default_symbols: list[str],
    categories: list[str],
    default_days: int = 90,
) -> Filters:
    """Filters from URL query parameters (``start``, ``end``, ``day``: YYYY-MM-DD; ``symbols``:
    comma-separated; ``category``), clipped to what the lake holds; bad values fall back to defaults."""
    end = min(max(_date(params.get("end")) or last_day, first_day), last_day)
    start = min(max(_date(params.get("start")) or end - dt.timedelta(days=default_days - 1), first_day), end)
    chosen = [s.strip().upper() for s in (params.get("symbols") or "").split(",") if s.strip()]
    chosen = [s for s in chosen if s in symbols] or [s for s in default_symbols if s in symbols]
    category = params.get("category") if params.get("category") in categories else None
    day = min(max(_date(params.get("day")) or last_day, first_day), last_day)
    return Filters(start, end, tuple(dict.fromkeys(chosen)), category, day)


# --- Overview ---------------------------------------------------------------------------------


def top_by_market_cap(overview: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """The day's ``gold.market_overview.top_by_market_cap`` as rows: rank, symbol, market cap (USD),
    CoinGecko 24 h change %. Empty when the day has no CoinGecko snapshot."""
    row = overview.filter(pl.col("date") == day).select("top_by_market_cap").explode("top_by_market_cap")
    row = row.filter(pl.col("top_by_market_cap").is_not_null())
    if row.is_empty():
        return pl.DataFrame(schema=TOP_SCHEMA)
    return row.unnest("top_by_market_cap").with_row_index("rank", offset=1).select(list(TOP_SCHEMA)).cast(TOP_SCHEMA)


def market_day(market_daily: pl.DataFrame, day: dt.date) -> dict | None:
    """The day's ``gold.market_daily`` row (breadth, best and worst performer), or None."""
    rows = market_daily.filter(pl.col("date") == day)
    return rows.row(0, named=True) if len(rows) else None


def category_returns(category_daily: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """Each category's mean 1-day and 30-day return on the day, best 1-day first."""
    return (
        category_daily.filter(pl.col("date") == day)
        .select("category", "members", "mean_return_1d", "mean_return_30d")
        .sort("mean_return_1d", "category", descending=[True, False], nulls_last=True)
    )


def category_index(category_daily: pl.DataFrame, start: dt.date, end: dt.date) -> pl.DataFrame:
    """An equal-weight index per category over start..end: 100 × the running product of
    (1 + mean 1-day return), a day without a return counting as flat."""
    return (
        category_daily.filter(pl.col("date").is_between(start, end))
        .sort("category", "date")
        .with_columns(index=100 * (1 + pl.col("mean_return_1d").fill_null(0.0)).cum_prod().over("category"))
        .select("date", "category", "index")
    )


# --- Price analysis ---------------------------------------------------------------------------


def price_history(features: pl.DataFrame, symbol: str, start: dt.date, end: dt.date) -> pl.DataFrame:
    """One symbol's ``gold.daily_features`` rows of start..end, oldest first."""
    return features.filter((pl.col("symbol") == symbol) & pl.col("date").is_between(start, end)).sort("date")


# --- Correlations -----------------------------------------------------------------------------


def correlation_matrix(
    correlations: pl.DataFrame,
    day: dt.date,
    order: str = "cluster",
    category_by_symbol: Mapping[str, str] | None = None,
) -> tuple[list[str], list[list[float | None]]]:
    """The day's 30-day correlation matrix (symbols, rows; 1.0 on the diagonal, None where a pair
    had no full window). ``order``: ``cluster`` (a chain where each next symbol is the one most
    correlated with the previous, starting from the most correlated overall), ``category``
    (category, then symbol) or ``symbol``."""
    pairs = correlations.filter(pl.col("date") == day)
    names = sorted(set(pairs["symbol_a"].to_list()) | set(pairs["symbol_b"].to_list()))
    value: dict[tuple[str, str], float | None] = {}
    for a, b, c in pairs.select("symbol_a", "symbol_b", "corr_30d").iter_rows():
        value[(a, b)] = value[(b, a)] = c

    def corr(a: str, b: str) -> float | None:
        return 1.0 if a == b else value.get((a, b))

    if order == "category":
        categories = category_by_symbol or {}
        names.sort(key=lambda s: (categories.get(s, "~"), s))
    elif order == "cluster" and names:

        def known(values: list[float | None]) -> list[float]:
            return [v for v in values if v is not None]

        def mean(symbol: str) -> float:
            values = known([corr(symbol, other) for other in names if other != symbol])
            return sum(values) / len(values) if values else float("-inf")

        # max() keeps the first of equals: ties go to the alphabetically first symbol.
        chain = [max(names, key=mean)]
        rest = [s for s in names if s != chain[0]]
        while rest:
            last = chain[-1]
            following = max(rest, key=lambda s: c if (c := corr(last, s)) is not None else float("-inf"))
            chain.append(following)
            rest.remove(following)
        names = chain
    return names, [[corr(a, b) for b in names] for a in names]


def pair_correlation(correlations: pl.DataFrame, a: str, b: str, start: dt.date, end: dt.date) -> pl.DataFrame:
    """``corr_30d`` of the pair (either order) per day of start..end, oldest first."""
    pair = ((pl.col("symbol_a") == a) & (pl.col("symbol_b") == b)) | (
        (pl.col("symbol_a") == b) & (pl.col("symbol_b") == a)
    )
    return correlations.filter(pair & pl.col("date").is_between(start, end)).select("date", "corr_30d").sort("date")


# --- Sentiment --------------------------------------------------------------------------------


def sentiment(
    overview: pl.DataFrame, features: pl.DataFrame, start: dt.date, end: dt.date, symbol: str = "BTCUSDT"
) -> pl.DataFrame:
    """Per day of start..end: Fear & Greed value and class, ``symbol``'s close, universe quote volume."""
    closes = features.filter(pl.col("symbol") == symbol).select("date", pl.col("close").alias("btc_close"))
    return (
        overview.filter(pl.col("date").is_between(start, end))
        .select("date", "fear_greed_value", "fear_greed_classification", "total_quote_volume")
        .join(closes, on="date", how="left")
        .sort("date")
    )


# --- Data quality -----------------------------------------------------------------------------


def freshness(newest: dt.date | None, now: dt.datetime) -> tuple[str, float | None]:
    """(state, lag in hours) of a table whose newest partition is ``newest``, by the read API's
    rule: fresh while the day after the newest is not yet over by more than a day."""
    if newest is None:
        return "empty", None
    end_of_day = dt.datetime.combine(newest + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    lag = max(0.0, (now - end_of_day).total_seconds())
    state = "fresh" if now - end_of_day <= FRESH_WITHIN - dt.timedelta(days=1) else "stale"
    return state, round(lag / 3600, 1)


def layer_health(newest_by_table: Mapping[tuple[str, str], dt.date | None | str], now: dt.datetime) -> pl.DataFrame:
    """Per published table: layer, table, newest partition, state (fresh / stale / empty /
    unpublished) and lag in hours. ``newest_by_table`` maps (layer, table) to the newest date, None
    (no rows) or ``"unpublished"``."""
    rows: list[tuple] = []
    for (layer, table), newest in newest_by_table.items():
        if newest == "unpublished":
            rows.append((layer, table, None, "unpublished", None))
            continue
        state, lag = freshness(newest, now)  # type: ignore[arg-type]
        rows.append((layer, table, newest, state, lag))
    return pl.DataFrame(
        rows,
        schema={
            "layer": pl.String(),
            "table": pl.String(),
            "newest_partition": pl.Date(),
            "state": pl.String(),
            "lag_hours": pl.Float64(),
        },
        orient="row",
    )


def failing_checks(results: pl.DataFrame) -> pl.DataFrame:
    """The failing rows of ``quality/check_results`` (the latest outcome of every asset, check and
    partition), with the partition as Dagster names it (``date|symbol``, ``date`` or ``-``),
    newest evaluation first."""
    partition = (
        pl.when(pl.col("symbol").is_not_null())
        .then(pl.format("{}|{}", "date", "symbol"))
        .otherwise(pl.col("date").cast(pl.String))
        .fill_null(MISSING)
    )
    return (
        results.filter(~pl.col("passed"))
        .select(
            "asset",
            "check_name",
            partition.alias("partition"),
            "severity",
            "failing_rows",
            "rows_checked",
            "evaluated_at",
            "description",
            "sample",
        )
        .sort(["evaluated_at", "asset", "check_name", "partition"], descending=[True, False, False, False])
    )


def failing_by_check(failing: pl.DataFrame) -> pl.DataFrame:
    """Per failing check: severity, how many partitions fail, failing rows and the partitions (sorted)."""
    return (
        failing.group_by("asset", "check_name", "severity")
        .agg(
            partitions=pl.len(),
            failing_rows=pl.col("failing_rows").sum(),
            failing_partitions=pl.col("partition").sort(),
        )
        .with_columns(pl.col("failing_partitions").list.join(", "))
        .sort("asset", "check_name")
    )


def sample_rows(sample: str | None) -> pl.DataFrame:
    """The failing rows a check recorded (JSON, up to 5) as a frame; empty when none were kept."""
    return pl.DataFrame(json.loads(sample)) if sample else pl.DataFrame()


def quarantine_by_rule(quarantine: pl.DataFrame, start: dt.date, end: dt.date) -> pl.DataFrame:
    """Quarantined rows per day and rule of start..end."""
    return (
        quarantine.filter(pl.col("date").is_between(start, end))
        .group_by("date", "rule")
        .agg(rows=pl.len())
        .sort("date", "rule")
    )


def missing_bars(features: pl.DataFrame, start: dt.date, end: dt.date) -> pl.DataFrame:
    """Per symbol over start..end: missing bars and the days that had any, most missing first."""
    return (
        features.filter(pl.col("date").is_between(start, end))
        .group_by("symbol")
        .agg(missing_bars=pl.col("missing_bars").sum(), days_with_gaps=(pl.col("missing_bars") > 0).sum())
        .sort("missing_bars", "symbol", descending=[True, False])
    )


# --- Predictions ----------------------------------------------------------------------------


def model_summary(evaluation: pl.DataFrame) -> pl.DataFrame:
    """Per strategy of gold.model_evaluation: scored days, pooled hit rate (hits over predictions),
    mean daily information coefficient, and the cumulative long-short return of its last day."""
    return (
        evaluation.sort("date")
        .group_by("strategy", maintain_order=True)
        .agg(
            days=pl.len(),
            hit_rate=pl.col("hits").sum() / pl.col("symbols").sum(),
            mean_ic=pl.col("ic").mean(),
            cumulative_long_short=pl.col("cumulative_long_short").last(),
        )
        .sort("strategy")
    )
