"""PNG charts for materialization metadata, rendered with matplotlib (no browser, no pyplot state).

Dagster 1.13 has no image metadata type; a PNG shows in the UI as markdown with a data URI.
matplotlib is imported when a chart is drawn, not with the code location: every run process loads
the definitions, and most runs (backfill ranges, checks) draw no chart (0.4 s saved per run).
"""

import base64
import datetime as dt
import io
import math
from typing import TYPE_CHECKING

import polars as pl
from dagster import MetadataValue

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MAX_PRICE_PANELS = 12


def png_markdown(figure: "Figure", alt: str) -> MetadataValue:
    """The figure as a base64 PNG inside markdown (the UI shows it behind "Show Markdown")."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return MetadataValue.md(f"![{alt}](data:image/png;base64,{encoded})")


# The window each averaged line needs, in days of closes (gold.features: sma_7, sma_30).
LINES = (
    ("close", "close", 1, "black", 1.2),
    ("sma_7", "SMA 7", 7, "tab:blue", 1.0),
    ("sma_30", "SMA 30", 30, "tab:orange", 1.0),
)


def line_label(name: str, values: list[float | None], window_days: int) -> str:
    """The legend entry of a line: its name, and when some days have no value, how many do and why
    (an n-day average needs n days of closes up to the day; a run reads only the history its own
    days need, so the first days of a chart have no long average)."""
    drawn = sum(v is not None for v in values)
    if drawn == len(values):
        return name
    if drawn == 0:
        return f"{name}: not drawn, no day here has {window_days} days of closes before it"
    return f"{name}: {drawn} of {len(values)} days (needs {window_days} days of closes)"


def price_figure(features: pl.DataFrame, days: list[dt.date]) -> "Figure | None":
    """Close with SMA 7 and SMA 30 per symbol (one panel each, at most 12), the run's days shaded.
    Each line is drawn where it has values (a day without one is a gap, a lone value a dot) and its
    legend says on how many days and why not on the others."""
    symbols = sorted(features["symbol"].unique().to_list()) if not features.is_empty() else []
    if not symbols:
        return None
    shown = symbols[:MAX_PRICE_PANELS]
    columns = min(3, len(shown))
    rows = math.ceil(len(shown) / columns)
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5 * columns, 2.8 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, symbol in zip(axes, shown):
        series = features.filter(pl.col("symbol") == symbol).sort("date")
        dates = series["date"].to_list()
        for column, name, window, color, width in LINES:
            values = series[column].to_list()
            lone = [
                v is not None and (i == 0 or values[i - 1] is None) and (i == len(values) - 1 or values[i + 1] is None)
                for i, v in enumerate(values)
            ]
            ax.plot(
                dates,
                values,
                label=line_label(name, values, window),
                color=color,
                linewidth=width,
                marker=".",
                markevery=lone,
                gid=column,
            )
        ax.axvspan(min(days), max(days) + dt.timedelta(days=1), color="tab:green", alpha=0.08)
        ax.set_title(symbol, fontsize=10)
        locator = AutoDateLocator(maxticks=6)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="best")
    for ax in axes[len(shown) :]:
        ax.set_visible(False)
    if len(symbols) > len(shown):
        figure.suptitle(f"first {len(shown)} of {len(symbols)} symbols", fontsize=9)
    return figure


def price_chart(features: pl.DataFrame, days: list[dt.date]) -> MetadataValue:
    """``price_figure`` as PNG markdown for the materialization's metadata."""
    figure = price_figure(features, days)
    if figure is None:
        return MetadataValue.md("_no bars to chart_")
    return png_markdown(figure, "price chart")


def correlation_heatmap(correlations: pl.DataFrame, day: dt.date) -> MetadataValue:
    """The symmetric correlation matrix of one day as a heatmap (diagonal 1, missing pairs blank)."""
    pairs = correlations.filter(pl.col("date") == day)
    if pairs.is_empty():
        return MetadataValue.md(f"_no pair had 30 full days of returns on {day}_")
    symbols = sorted(set(pairs["symbol_a"].to_list()) | set(pairs["symbol_b"].to_list()))
    index = {symbol: i for i, symbol in enumerate(symbols)}
    matrix = [[math.nan] * len(symbols) for _ in symbols]
    for i in range(len(symbols)):
        matrix[i][i] = 1.0
    for a, b, value in pairs.select("symbol_a", "symbol_b", "corr_30d").iter_rows():
        cell = math.nan if value is None else value
        matrix[index[a]][index[b]] = matrix[index[b]][index[a]] = cell
    size = max(4.0, 0.28 * len(symbols) + 2)
    from matplotlib.figure import Figure

    figure = Figure(figsize=(size + 1, size), layout="constrained")
    ax = figure.subplots()
    image = ax.imshow(matrix, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(len(symbols)), [s.removesuffix("USDT") for s in symbols], rotation=90, fontsize=7)
    ax.set_yticks(range(len(symbols)), [s.removesuffix("USDT") for s in symbols], fontsize=7)
    ax.set_title(f"30-day correlation of daily log returns, {day}", fontsize=10)
    if len(symbols) <= 12:
        for i, row in enumerate(matrix):
            for j, value in enumerate(row):
                if not math.isnan(value):
                    ax.text(
                        j,
                        i,
                        f"{value:.2f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if abs(value) > 0.6 else "black",
                    )
    figure.colorbar(image, ax=ax, shrink=0.8)
    return png_markdown(figure, "correlation heatmap")
