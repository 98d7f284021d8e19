"""Overview: top 10 by market cap, market breadth, best and worst performer, category returns."""

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from cryptolake_assets.dashboard import data, ui


def render() -> None:
    st.title("Overview")
    overview = ui.require("gold", "market_overview")
    market_daily = ui.require("gold", "market_daily")
    category_daily = ui.table("gold", "category_daily")
    categories = sorted(category_daily["category"].unique().to_list()) if category_daily is not None else []
    chosen = ui.filters(overview["date"], categories=categories, day=True, default_days=30)
    day = chosen.day
    st.caption(f"As of {day} (UTC). Gold tables `market_overview`, `market_daily`, `category_daily`.")

    breadth = data.market_day(market_daily, day)
    columns = st.columns(4)
    if breadth is None:
        st.info(f"No market data for {day}: run `cryptolake backfill --start {day} --end {day}`.")
    else:
        columns[0].metric("Advancers", breadth["advancers"])
        columns[1].metric("Decliners", breadth["decliners"])
        columns[2].metric("Best performer", breadth["best_symbol"] or "-", ui.percent(breadth["best_return_1d"]))
        columns[3].metric("Worst performer", breadth["worst_symbol"] or "-", ui.percent(breadth["worst_return_1d"]))

    left, right = st.columns(2)
    with left:
        st.subheader("Top 10 by market cap")
        top = data.top_by_market_cap(overview, day)
        if top.is_empty():
            st.info(
                f"No CoinGecko snapshot on {day}: CoinGecko has no history, snapshots exist for the days the "
                "pipeline ran on (the newest day after `cryptolake demo`)."
            )
        else:
            st.table(
                top.select(
                    "rank",
                    "symbol",
                    pl.format("{}B", (pl.col("market_cap") / 1e9).round(2)).alias("market cap (USD)"),
                    (pl.col("change_pct_24h").round(2).cast(pl.String) + "%")
                    .fill_null(data.MISSING)
                    .alias("24 h change"),
                ),
                hide_index=True,
            )
    with right:
        st.subheader("Advancers and decliners")
        window = market_daily.filter(pl.col("date").is_between(chosen.start, chosen.end)).sort("date")
        figure = go.Figure(
            [
                go.Bar(x=window["date"], y=window["advancers"], name="advancers", marker_color="#2ca02c"),
                go.Bar(x=window["date"], y=-window["decliners"], name="decliners", marker_color="#d62728"),
            ]
        )
        figure.update_layout(barmode="relative", height=360, margin=dict(t=20, b=20), yaxis_title="symbols")
        st.plotly_chart(figure, key="breadth")

    st.subheader("Category index returns")
    if category_daily is None or category_daily.is_empty():
        st.info(f"No gold/category_daily yet: {ui.DEMO_HINT}.")
        return
    left, right = st.columns(2)
    returns = data.category_returns(category_daily, day)
    bars = go.Figure(
        [
            go.Bar(x=returns["category"], y=returns["mean_return_1d"] * 100, name="1 day"),
            go.Bar(x=returns["category"], y=returns["mean_return_30d"] * 100, name="30 days"),
        ]
    )
    bars.update_layout(height=360, margin=dict(t=20, b=20), yaxis_title=f"mean return on {day}, %")
    left.plotly_chart(bars, key="category_returns")
    index = data.category_index(category_daily, chosen.start, chosen.end)
    if chosen.category:
        index = index.filter(pl.col("category") == chosen.category)
    lines = go.Figure(
        [
            go.Scatter(x=part["date"], y=part["index"], mode="lines", name=name)
            for (name,), part in index.group_by("category", maintain_order=True)
        ]
    )
    lines.update_layout(
        height=360, margin=dict(t=20, b=20), yaxis_title=f"equal-weight index ({chosen.start} = 100 × day's return)"
    )
    right.plotly_chart(lines, key="category_index")
