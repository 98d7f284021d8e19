"""Predictions: the walk-forward models' out-of-sample record against the naive baselines."""

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from cryptolake_assets.dashboard import data, ui


def render() -> None:
    st.title("Model predictions")
    evaluation = ui.require("gold", "model_evaluation")
    chosen = ui.filters(evaluation["date"])
    window = evaluation.filter(evaluation["date"].is_between(chosen.start, chosen.end))
    if window.is_empty():
        st.info(f"No scored days in {chosen.start}..{chosen.end}: {ui.DEMO_HINT}.")
        return
    st.caption(
        "Out of sample: each day's predictions come from models fit only on earlier outcomes "
        "(gold.predictions, walk-forward), scored by gold.model_evaluation. The simulated market has no "
        "edge to find; a model should not beat the baselines there."
    )
    summary = data.model_summary(window)
    st.table(
        summary.select(
            "strategy",
            "days",
            ((pl.col("hit_rate") * 100).round(1).cast(pl.String) + "%").alias("hit rate"),
            pl.col("mean_ic").round(3).cast(pl.String).fill_null(data.MISSING).alias("mean IC"),
            ((pl.col("cumulative_long_short") * 100).round(2).cast(pl.String) + "%")
            .fill_null(data.MISSING)
            .alias("cumulative long-short"),
        ),
        hide_index=True,
    )
    figure = go.Figure()
    for strategy in summary["strategy"]:
        rows = window.filter(window["strategy"] == strategy).sort("date")
        figure.add_trace(go.Scatter(x=rows["date"], y=rows["cumulative_long_short"], mode="lines", name=strategy))
    figure.update_layout(
        title="cumulative top-minus-bottom quintile return", height=420, margin=dict(t=40, b=20), yaxis_tickformat=".1%"
    )
    st.plotly_chart(figure, key="predictions")
