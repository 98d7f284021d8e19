"""Streamlit plumbing shared by the pages: the lake reader, empty states and URL-backed filters."""

import datetime as dt
from typing import cast

import polars as pl
import streamlit as st

from cryptolake_assets.api.lake_reader import LakeReader, TableNotPublished
from cryptolake_assets.dashboard.data import Filters, parse_filters
from resources.lake import DeltaLake
from resources.settings import default_lake_root

DEMO_HINT = "run `cryptolake demo` (offline) or `cryptolake backfill`"


@st.cache_resource
def reader() -> LakeReader:
    """One reader per server process: each table is loaded once per Delta version."""
    lake = DeltaLake.from_env(default_lake_root())
    return LakeReader(lake.root, storage_options=lake.options(), refresh_seconds=2.0)


def table(layer: str, name: str) -> pl.DataFrame | None:
    """The table's rows at its current version, or None when it is not published yet."""
    try:
        return reader().snapshot(layer, name)[1]
    except TableNotPublished:
        return None


def require(layer: str, name: str) -> pl.DataFrame:
    """The table's rows; stops the page with an empty state saying what to run when there are none."""
    rows = table(layer, name)
    if rows is None or rows.is_empty():
        state = "not published" if rows is None else "empty"
        st.info(f"No {layer} yet (`{layer}/{name}` is {state} in the lake at `{reader().root}`): {DEMO_HINT}.")
        st.stop()
    return rows


def _set_param(name: str, value: str | None) -> None:
    if value:
        st.query_params[name] = value
    elif name in st.query_params:
        del st.query_params[name]


def filters(
    days: pl.Series,
    symbols: list[str] | None = None,
    default_symbols: list[str] | None = None,
    categories: list[str] | None = None,
    *,
    date_range: bool = True,
    day: bool = False,
    multi_symbol: bool = True,
    default_days: int = 90,
) -> Filters:
    """Sidebar filters that start from and write back to the URL (``?start=&end=&symbols=&category=&day=``),
    so a view can be shared by its address."""
    first, last = cast(dt.date, days.min()), cast(dt.date, days.max())
    chosen = parse_filters(
        st.query_params.to_dict(), first, last, symbols or [], default_symbols or [], categories or [], default_days
    )
    sidebar = st.sidebar
    start, end, picked_day, category = chosen.start, chosen.end, chosen.day, chosen.category
    picked = list(chosen.symbols)
    if date_range:
        value = sidebar.date_input("Date range", (chosen.start, chosen.end), min_value=first, max_value=last)
        if isinstance(value, tuple) and len(value) == 2:
            start, end = value
        _set_param("start", start.isoformat())
        _set_param("end", end.isoformat())
    if day:
        picked_day = sidebar.date_input("Day", chosen.day, min_value=first, max_value=last)
        _set_param("day", picked_day.isoformat() if isinstance(picked_day, dt.date) else None)
    if categories is not None:
        category = sidebar.selectbox(
            "Category", ["All", *categories], index=([None, *categories]).index(chosen.category)
        )
        category = None if category == "All" else category
        _set_param("category", category)
    if symbols is not None:
        if multi_symbol:
            picked = sidebar.multiselect("Symbols", symbols, default=picked)
        else:
            one = sidebar.selectbox("Symbol", symbols, index=symbols.index(picked[0]) if picked else 0)
            picked = [one] if one else []
        _set_param("symbols", ",".join(picked))
    return Filters(start, end, tuple(picked), category, picked_day)


def percent(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value * 100:+.{digits}f}%"
