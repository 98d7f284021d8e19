"""Correlations: the 30-day correlation heatmap of a day and the rolling correlation of a pair."""

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from cryptolake_assets.dashboard import data, ui

ORDERS = {
    "cluster": "by cluster (most correlated next to each other)",
    "category": "by category",
    "symbol": "by symbol",
}


def render() -> None:
    st.title("Correlations")
    correlations = ui.require("gold", "correlations")
    dim_symbol = ui.table("gold", "dim_symbol")
    category_by_symbol = dict(dim_symbol.select("symbol", "category").iter_rows()) if dim_symbol is not None else {}
    symbols = sorted(set(correlations["symbol_a"].to_list()) | set(correlations["symbol_b"].to_list()))
    categories = sorted({category_by_symbol[s] for s in symbols if s in category_by_symbol})
    pair = ["BTCUSDT", "ETHUSDT"] if {"BTCUSDT", "ETHUSDT"} <= set(symbols) else symbols[:2]
    chosen = ui.filters(correlations["date"], symbols, pair, categories, day=True)
    order = st.sidebar.radio("Order", list(ORDERS), format_func=ORDERS.get)

    st.subheader(f"30-day correlation of daily returns on {chosen.day}")
    day_pairs = correlations
    if chosen.category:
        members = [s for s in symbols if category_by_symbol.get(s) == chosen.category]
        day_pairs = correlations.filter(pl.col("symbol_a").is_in(members) & pl.col("symbol_b").is_in(members))
    names, matrix = data.correlation_matrix(day_pairs, chosen.day, order, category_by_symbol)
    if not names:
        st.info(f"No correlations on {chosen.day}: a pair needs 30 days of returns (run `cryptolake demo --days 40`).")
    else:
        heatmap = go.Figure(
            go.Heatmap(
                z=matrix,
                x=names,
                y=names,
                zmin=-1,
                zmax=1,
                colorscale="RdBu",
                reversescale=True,
                text=[[None if v is None else f"{v:.2f}" for v in row] for row in matrix],
                texttemplate="%{text}",
                hoverongaps=False,
            )
        )
        heatmap.update_layout(height=max(420, 28 * len(names)), yaxis_autorange="reversed", margin=dict(t=20, b=20))
        st.plotly_chart(heatmap, key="heatmap")

    st.subheader("Rolling 30-day correlation of a pair")
    if len(chosen.symbols) < 2:
        st.info("Choose two symbols in the sidebar.")
        return
    a, b = chosen.symbols[:2]
    series = data.pair_correlation(correlations, a, b, chosen.start, chosen.end)
    if series.is_empty():
        st.info(f"No correlation of {a} and {b} in {chosen.start}..{chosen.end}.")
        return
    figure = go.Figure(go.Scatter(x=series["date"], y=series["corr_30d"], mode="lines+markers", name=f"{a} / {b}"))
    figure.update_layout(height=360, yaxis_range=[-1, 1], yaxis_title=f"corr_30d {a} / {b}", margin=dict(t=20, b=20))
    st.plotly_chart(figure, key="pair")
