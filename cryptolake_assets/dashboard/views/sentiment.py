"""Sentiment: the Fear & Greed index and its classes against BTC close and market volume."""

import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from cryptolake_assets.dashboard import data, ui

CLASS_COLORS = {
    "Extreme Fear": "#b2182b",
    "Fear": "#ef8a62",
    "Neutral": "#999999",
    "Greed": "#67a9cf",
    "Extreme Greed": "#2166ac",
}


def render() -> None:
    st.title("Sentiment")
    overview = ui.require("gold", "market_overview")
    features = ui.require("gold", "daily_features")
    chosen = ui.filters(overview["date"])
    rows = data.sentiment(overview, features, chosen.start, chosen.end)
    published = rows.filter(rows["fear_greed_value"].is_not_null())
    if published.is_empty():
        st.info(f"No Fear & Greed values in {chosen.start}..{chosen.end}: {ui.DEMO_HINT}.")
        return
    latest = published.row(-1, named=True)
    st.metric(
        f"Fear & Greed on {latest['date']}",
        latest["fear_greed_value"],
        latest["fear_greed_classification"],
        delta_color="off",
        delta_arrow="off",
    )
    figure = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        row_heights=[0.6, 0.4],
        specs=[[{"secondary_y": True}], [{}]],
        subplot_titles=("Fear & Greed vs BTC close", "market volume"),
    )
    for name, color in CLASS_COLORS.items():
        part = published.filter(published["fear_greed_classification"] == name)
        figure.add_trace(
            go.Bar(x=part["date"], y=part["fear_greed_value"], name=name, marker_color=color), row=1, col=1
        )
    figure.add_trace(
        go.Scatter(x=rows["date"], y=rows["btc_close"], mode="lines", name="BTC close", line=dict(color="black")),
        row=1,
        col=1,
        secondary_y=True,
    )
    figure.add_trace(
        go.Bar(x=rows["date"], y=rows["total_quote_volume"], name="quote volume (USDT)", marker_color="#7f7f7f"),
        row=2,
        col=1,
    )
    figure.update_yaxes(title_text="index (0..100)", range=[0, 100], row=1, col=1, secondary_y=False)
    figure.update_yaxes(title_text="BTCUSDT close", row=1, col=1, secondary_y=True)
    figure.update_layout(height=640, barmode="overlay", margin=dict(t=40, b=20))
    st.plotly_chart(figure, key="sentiment")
    missing = rows.filter(rows["fear_greed_value"].is_null())["date"].to_list()
    if missing:
        st.caption(f"No index published on: {', '.join(map(str, missing))}")
