"""Out-of-sample evaluation of the walk-forward predictions against naive baselines, as pure Polars.

Every strategy is scored on the same rows: (date, symbol) pairs that have a prediction of every
model and a known target. Per day: hit rate (predicted up == target up), information coefficient
(Spearman rank correlation of the score with the realised next-day log return) and a long-short
return (mean realised log return of the top quintile by score minus the bottom quintile; k = n // 5
symbols each side, ties by symbol). Baselines: ``yesterday_sign`` (score ret_1d, up when ret_1d > 0
or unknown) and ``always_up`` (always up; a constant score has no IC and no long-short).
"""

import math

import polars as pl

BASELINES = ("yesterday_sign", "always_up")
MIN_IC_SYMBOLS = 5

MODEL_EVALUATION_SCHEMA = pl.Schema(
    {
        "date": pl.Date(),
        "strategy": pl.String(),
        "symbols": pl.Int64(),
        "hits": pl.Int64(),
        "hit_rate": pl.Float64(),
        "ic": pl.Float64(),
        "long_short_return": pl.Float64(),
        "cumulative_long_short": pl.Float64(),
    }
)

COLUMNS = {
    "date": "UTC day D of the predictions (their outcome is D+1's return)",
    "strategy": "a model of gold.predictions (linear, gbm) or a baseline (yesterday_sign, always_up)",
    "symbols": "symbols scored on D (a prediction of every model and a known target)",
    "hits": "symbols whose predicted direction (prob_up > 0.5; baselines: their rule) was right",
    "hit_rate": "hits / symbols",
    "ic": f"Spearman correlation of the score with the realised log return (null: < {MIN_IC_SYMBOLS} symbols or a constant score)",
    "long_short_return": "mean realised log return of the top minus the bottom quintile by score (null: < 5 symbols or constant score)",
    "cumulative_long_short": "running sum of long_short_return over the dates so far (log return)",
}


def scored_rows(predictions: pl.DataFrame, outcomes: pl.DataFrame) -> pl.DataFrame:
    """One row per (date, symbol, strategy): score, predicted_up and the realised outcome."""
    models = sorted(predictions["model"].unique().to_list())
    known = outcomes.filter(pl.col("target_log_return_1d").is_not_null()).select(
        "date", "symbol", "ret_1d", "target_log_return_1d", "target_up"
    )
    complete = (
        predictions.group_by("date", "symbol")
        .agg(models=pl.col("model").n_unique())
        .filter(pl.col("models") == len(models))
    )
    rows = known.join(complete.select("date", "symbol"), on=["date", "symbol"], how="inner")
    frames = [
        rows.join(predictions.filter(pl.col("model") == model), on=["date", "symbol"], how="inner").select(
            "date",
            "symbol",
            pl.lit(model).alias("strategy"),
            pl.col("predicted_log_return").alias("score"),
            (pl.col("prob_up") > 0.5).alias("predicted_up"),
            "target_log_return_1d",
            "target_up",
        )
        for model in models
    ]
    frames.append(
        rows.select(
            "date",
            "symbol",
            pl.lit("yesterday_sign").alias("strategy"),
            pl.col("ret_1d").alias("score"),
            (pl.col("ret_1d") > 0).fill_null(True).alias("predicted_up"),
            "target_log_return_1d",
            "target_up",
        )
    )
    frames.append(
        rows.select(
            "date",
            "symbol",
            pl.lit("always_up").alias("strategy"),
            pl.lit(None, dtype=pl.Float64).alias("score"),
            pl.lit(True).alias("predicted_up"),
            "target_log_return_1d",
            "target_up",
        )
    )
    return pl.concat(frames).sort("strategy", "date", "symbol")


def daily_evaluation(predictions: pl.DataFrame, outcomes: pl.DataFrame) -> pl.DataFrame:
    """Per (date, strategy): symbols, hits, hit rate, IC and the long-short quintile return."""
    if predictions.is_empty():
        return pl.DataFrame(schema=MODEL_EVALUATION_SCHEMA)
    rows = scored_rows(predictions, outcomes)
    if rows.is_empty():
        return pl.DataFrame(schema=MODEL_EVALUATION_SCHEMA)
    ranked = rows.sort("strategy", "date", "score", "symbol", nulls_last=True).with_columns(
        position=pl.int_range(pl.len()).over("strategy", "date"),
        n=pl.len().over("strategy", "date"),
        scored=pl.col("score").count().over("strategy", "date"),
        distinct=pl.col("score").n_unique().over("strategy", "date"),
    )
    k = pl.col("n") // 5
    daily = ranked.group_by("strategy", "date", maintain_order=True).agg(
        symbols=pl.len(),
        hits=(pl.col("predicted_up") == pl.col("target_up")).sum(),
        scored=pl.col("scored").first(),
        distinct=pl.col("distinct").first(),
        k=k.first(),
        rank_corr=pl.corr("score", "target_log_return_1d", method="spearman"),
        top=pl.col("target_log_return_1d").filter(pl.col("position") >= pl.col("n") - k).mean(),
        bottom=pl.col("target_log_return_1d").filter(pl.col("position") < k).mean(),
    )
    usable = (pl.col("scored") == pl.col("symbols")) & (pl.col("distinct") > 1)
    daily = (
        daily.with_columns(
            hit_rate=pl.col("hits") / pl.col("symbols"),
            ic=pl.when(usable & (pl.col("symbols") >= MIN_IC_SYMBOLS) & pl.col("rank_corr").is_not_nan()).then(
                pl.col("rank_corr")
            ),
            long_short_return=pl.when(usable & (pl.col("k") >= 1)).then(pl.col("top") - pl.col("bottom")),
        )
        .sort("strategy", "date")
        .with_columns(cumulative_long_short=pl.col("long_short_return").fill_null(0.0).cum_sum().over("strategy"))
    )
    return daily.select(list(MODEL_EVALUATION_SCHEMA)).cast(MODEL_EVALUATION_SCHEMA).sort("date", "strategy")


def _t(values: list[float]) -> float | None:
    n = len(values)
    if n < 2:
        return None
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return None if std == 0 else mean / (std / math.sqrt(n))


def summary(daily: pl.DataFrame) -> dict[str, dict]:
    """Per strategy over all days: pooled hit rate, its z against 50 % and against the best constant
    guess (always up or always down, whichever was right more often: a drifting sample makes 50 %
    too easy), mean IC and its t-stat over days, mean long-short and its t-stat, cumulative
    long-short, and ``edge``: hit rate above the best constant guess (z > 2) and IC t > 2. The z
    treats rows as independent (symbols move together, so it overstates); the t-stats use days."""
    out = {}
    up = daily.filter(pl.col("strategy") == "always_up")
    up_days, up_hits = int(up["symbols"].sum()), int(up["hits"].sum())
    share_up = up_hits / up_days if up_days else 0.5
    best_constant = max(share_up, 1 - share_up)
    for strategy in sorted(daily["strategy"].unique().to_list()):
        rows = daily.filter(pl.col("strategy") == strategy).sort("date")
        scored, hits = int(rows["symbols"].sum()), int(rows["hits"].sum())
        ics = rows["ic"].drop_nulls().to_list()
        spreads = rows["long_short_return"].drop_nulls().to_list()
        z = (hits - scored / 2) / math.sqrt(scored / 4) if scored else None
        p0 = best_constant
        z_constant = (hits - scored * p0) / math.sqrt(scored * p0 * (1 - p0)) if scored and 0 < p0 < 1 else None
        ic_t = _t(ics)
        out[strategy] = {
            "days": rows.height,
            "rows": scored,
            "hit_rate": hits / scored if scored else None,
            "hit_rate_z": z,
            "best_constant_hit_rate": best_constant,
            "hit_rate_z_vs_best_constant": z_constant,
            "mean_ic": sum(ics) / len(ics) if ics else None,
            "ic_t": ic_t,
            "mean_long_short": sum(spreads) / len(spreads) if spreads else None,
            "long_short_t": _t(spreads),
            "cumulative_long_short": sum(spreads),
            "edge": bool(z_constant is not None and z_constant > 2 and ic_t is not None and ic_t > 2),
        }
    return out


def verdict(figures: dict[str, dict]) -> str:
    """One line per strategy, and whether any model shows an edge."""

    def fmt(value, spec):
        return "-" if value is None else format(value, spec)

    lines = [
        f"{name}: hit rate {fmt(f['hit_rate'], '.3f')} (z vs 50 % {fmt(f['hit_rate_z'], '+.2f')}, "
        f"vs best constant {fmt(f['best_constant_hit_rate'], '.3f')}: {fmt(f['hit_rate_z_vs_best_constant'], '+.2f')}), mean IC {fmt(f['mean_ic'], '+.4f')} "
        f"(t {fmt(f['ic_t'], '+.2f')}), mean long-short {fmt(f['mean_long_short'], '+.5f')} (t {fmt(f['long_short_t'], '+.2f')})"
        for name, f in figures.items()
    ]
    models = [name for name in figures if name not in BASELINES]
    edge = [name for name in models if figures[name]["edge"]]
    lines.append(
        f"edge detected: {', '.join(edge)}"
        if edge
        else "no edge detected: no model beats the best constant guess (z > 2) with a significant IC (t > 2)"
    )
    return "\n".join(lines)
