"""gold/model_evaluation: out-of-sample hit rate, IC and long-short returns of the predictions vs baselines."""

import polars as pl
from dagster import AssetIn, MetadataValue, Output

from cryptolake_assets.gold.charts import png_markdown
from cryptolake_assets.medallion import medallion_asset
from cryptolake_assets.metadata import markdown_preview
from cryptolake_assets.ml import evaluation

IC_WINDOW_DAYS = 20


def evaluation_chart(daily: pl.DataFrame) -> MetadataValue:
    """Cumulative long-short return and rolling IC per strategy, and each strategy's pooled hit rate."""
    if daily.is_empty():
        return MetadataValue.md("_no evaluated days yet_")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 3.4), layout="constrained")
    cumulative, ic, hits = figure.subplots(1, 3)
    strategies = sorted(daily["strategy"].unique().to_list())
    for strategy in strategies:
        rows = daily.filter(pl.col("strategy") == strategy).sort("date")
        if rows["long_short_return"].count():
            cumulative.plot(
                rows["date"].to_list(), rows["cumulative_long_short"].to_list(), label=strategy, linewidth=1
            )
        if rows["ic"].count():
            rolling = rows["ic"].rolling_mean(window_size=IC_WINDOW_DAYS, min_samples=IC_WINDOW_DAYS // 2)
            ic.plot(rows["date"].to_list(), rolling.to_list(), label=strategy, linewidth=1)
    pooled = daily.group_by("strategy").agg(rate=pl.col("hits").sum() / pl.col("symbols").sum()).sort("strategy")
    hits.bar(pooled["strategy"].to_list(), pooled["rate"].to_list(), color="tab:blue")
    hits.axhline(0.5, color="black", linewidth=0.8, linestyle="--")
    hits.set_ylim(0.3, 0.7)
    hits.set_title("pooled hit rate (dashed: 50 %)", fontsize=9)
    cumulative.axhline(0, color="black", linewidth=0.6)
    cumulative.set_title("cumulative long-short (top − bottom quintile, log)", fontsize=9)
    ic.axhline(0, color="black", linewidth=0.6)
    ic.set_title(f"IC (Spearman), {IC_WINDOW_DAYS}-day rolling mean", fontsize=9)
    for ax in (cumulative, ic, hits):
        ax.tick_params(labelsize=7)
    cumulative.legend(fontsize=6)
    ic.legend(fontsize=6)
    return png_markdown(figure, "model evaluation")


@medallion_asset(
    "gold",
    "model_evaluation",
    schema=evaluation.MODEL_EVALUATION_SCHEMA,
    columns=evaluation.COLUMNS,
    ins={
        "predictions": AssetIn(key=["gold", "predictions"]),
        "ml_features": AssetIn(
            key=["gold", "ml_features"],
            metadata={"columns": ["date", "symbol", "ret_1d", "target_log_return_1d", "target_up"]},
        ),
    },
)
def model_evaluation(predictions: pl.DataFrame, ml_features: pl.DataFrame) -> Output[pl.DataFrame]:
    """Out-of-sample hit rate, Spearman IC and top-minus-bottom quintile return per day and strategy
    (the models of gold.predictions and the baselines yesterday_sign and always_up), with a summary
    that says whether any model shows an edge, and charts."""
    daily = evaluation.daily_evaluation(predictions, ml_features)
    figures = evaluation.summary(daily)
    numbers = {
        f"{strategy}/{name}": float(value)
        for strategy, values in figures.items()
        for name, value in values.items()
        if name in ("hit_rate", "mean_ic", "ic_t", "mean_long_short") and value is not None
    }
    return Output(
        daily,
        metadata={
            "rows": len(daily),
            "days": daily["date"].n_unique(),
            "verdict": MetadataValue.text(evaluation.verdict(figures)),
            **numbers,
            "chart": evaluation_chart(daily),
            "preview": markdown_preview(daily.sort("date", "strategy", descending=[True, False]), rows=20),
        },
    )
