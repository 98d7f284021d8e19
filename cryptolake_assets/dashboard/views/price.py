"""Price analysis: candlestick or close with SMA 7/30, volume, RSI 14, 30-day volatility, drawdown."""

import plotly.graph_objects as go
import polars as pl
import streamlit as st
from plotly.subplots import make_subplots

from cryptolake_assets.dashboard import data, ui

PANELS = ("price", "volume", "RSI 14", "volatility 30d", "drawdown 30d")


def chart(rows: pl.DataFrame, symbol: str, candles: bool) -> go.Figure:
    """One symbol's five stacked panels sharing the date axis."""
    figure = make_subplots(
        rows=5,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.03,
        row_heights=[0.4, 0.15, 0.15, 0.15, 0.15],
        subplot_titles=PANELS,
    )
    x = rows["date"]
    if candles:
        figure.add_trace(
            go.Candlestick(
                x=x, open=rows["open"], high=rows["high"], low=rows["low"], close=rows["close"], name=f"{symbol} OHLC"
            ),
            row=1,
            col=1,
        )
    else:
        figure.add_trace(go.Scatter(x=x, y=rows["close"], mode="lines", name=f"{symbol} close"), row=1, col=1)
    figure.add_trace(go.Scatter(x=x, y=rows["sma_7"], mode="lines", name="SMA 7"), row=1, col=1)
    figure.add_trace(go.Scatter(x=x, y=rows["sma_30"], mode="lines", name="SMA 30"), row=1, col=1)
    figure.add_trace(go.Bar(x=x, y=rows["quote_volume"], name="quote volume (USDT)"), row=2, col=1)
    figure.add_trace(go.Scatter(x=x, y=rows["rsi_14"], mode="lines", name="RSI 14"), row=3, col=1)
    figure.add_hline(y=70, line_dash="dot", row=3, col=1)
    figure.add_hline(y=30, line_dash="dot", row=3, col=1)
    figure.add_trace(go.Scatter(x=x, y=rows["volatility_30d"], mode="lines", name="volatility 30d"), row=4, col=1)
    figure.add_trace(
        go.Scatter(x=x, y=rows["drawdown_30d"], mode="lines", fill="tozeroy", name="drawdown 30d"), row=5, col=1
    )
    figure.update_layout(height=820, title=symbol, xaxis_rangeslider_visible=False, margin=dict(t=60, b=20))
    return figure


def render() -> None:
    st.title("Price analysis")
    features = ui.require("gold", "daily_features")
    dim_symbol = ui.table("gold", "dim_symbol")
    categories = sorted(dim_symbol["category"].unique().to_list()) if dim_symbol is not None else []
    symbols = sorted(features["symbol"].unique().to_list())
    chosen = ui.filters(features["date"], symbols, ["BTCUSDT"], categories)
    if chosen.category and dim_symbol is not None:
        members = set(dim_symbol.filter(pl.col("category") == chosen.category)["symbol"].to_list())
        shown = [s for s in chosen.symbols if s in members]
        st.caption(f"Category {chosen.category}: {', '.join(shown) or 'none of the chosen symbols'}")
    else:
        shown = list(chosen.symbols)
    candles = st.sidebar.radio("Price", ["candlestick", "close"], horizontal=True) == "candlestick"
    if not shown:
        st.info("Choose one or more symbols in the sidebar.")
        return
    st.caption(f"{chosen.start} .. {chosen.end}, daily bars from gold `daily_features` (UTC days).")
    for symbol in shown:
        rows = data.price_history(features, symbol, chosen.start, chosen.end)
        if rows.is_empty():
            st.info(
                f"No features for {symbol} in {chosen.start}..{chosen.end}: run `cryptolake backfill --symbols {symbol}`."
            )
            continue
        st.plotly_chart(chart(rows, symbol, candles), key=f"price_{symbol}")
