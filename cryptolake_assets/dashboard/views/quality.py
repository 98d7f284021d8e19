"""Data quality and pipeline health: freshness per table, failing checks and quarantine (from the lake),
missing bars, recent runs (from the Dagster instance, read-only)."""

import datetime as dt

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from cryptolake_assets.api.lake_reader import TableNotPublished
from cryptolake_assets.dashboard import data, runs, ui


def newest_partitions() -> dict[tuple[str, str], dt.date | None | str]:
    newest: dict[tuple[str, str], dt.date | None | str] = {}
    for layer, name in data.DATED_TABLES:
        try:
            newest[(layer, name)] = ui.reader().query(
                layer, name, "newest", lambda f: f["date"].max() if len(f) else None
            )[1]
        except TableNotPublished:
            newest[(layer, name)] = "unpublished"
    return newest


def render() -> None:
    st.title("Data quality and pipeline health")
    st.subheader("Freshness of the published tables")
    health = data.layer_health(newest_partitions(), dt.datetime.now(dt.UTC))
    if (health["state"] == "unpublished").all():
        st.info(f"Nothing is published in the lake at `{ui.reader().root}` yet: {ui.DEMO_HINT}.")
    st.table(health.with_columns(pl.col("lag_hours").round(1).cast(pl.String)), hide_index=True)

    features = ui.table("gold", "daily_features")
    days = features["date"] if features is not None and len(features) else health["newest_partition"].drop_nulls()
    chosen = ui.filters(days, default_days=30) if len(days) else None

    st.subheader("Failing checks")
    results = ui.table("quality", "check_results")
    if results is None:
        st.info(f"No check results in the lake yet (`quality/check_results`): {ui.DEMO_HINT}.")
    else:
        failing = data.failing_checks(results)
        if failing.is_empty():
            st.success(f"Every check passed on its latest evaluation ({len(results)} results).")
        else:
            st.table(data.failing_by_check(failing), hide_index=True)
            for row in failing.head(20).iter_rows(named=True):
                with st.expander(
                    f"{row['asset']} · {row['check_name']} · {row['partition']}: "
                    f"{row['failing_rows']} of {row['rows_checked']} rows"
                ):
                    st.write(row["description"])
                    st.table(data.sample_rows(row["sample"]))

    st.subheader("Quarantined rows by rule")
    quarantine = ui.table("silver", "ohlcv_quarantine")
    if quarantine is None:
        st.info(f"silver/ohlcv_quarantine is not published yet: {ui.DEMO_HINT}.")
    elif chosen is not None:
        counts = data.quarantine_by_rule(quarantine, chosen.start, chosen.end)
        if counts.is_empty():
            st.success(f"No row was quarantined in {chosen.start}..{chosen.end}.")
        else:
            figure = go.Figure(
                [
                    go.Bar(x=part["date"], y=part["rows"], name=rule)
                    for (rule,), part in counts.group_by("rule", maintain_order=True)
                ]
            )
            figure.update_layout(barmode="stack", height=320, yaxis_title="rows", margin=dict(t=20, b=20))
            st.plotly_chart(figure, key="quarantine")

    st.subheader("Missing bars per symbol")
    if features is None or chosen is None:
        st.info(f"No gold yet: {ui.DEMO_HINT}.")
    else:
        missing = data.missing_bars(features, chosen.start, chosen.end)
        figure = go.Figure(
            go.Bar(
                x=missing["symbol"],
                y=missing["missing_bars"],
                name="missing bars",
                customdata=missing["days_with_gaps"],
                hovertemplate="%{x}: %{y} bars on %{customdata} day(s)",
            )
        )
        figure.update_layout(
            height=320, yaxis_title=f"missing bars {chosen.start}..{chosen.end}", margin=dict(t=20, b=20)
        )
        st.plotly_chart(figure, key="missing_bars")

    st.subheader("Recent runs")
    instance = runs.open_instance()
    if instance is None:
        st.info(
            "No Dagster instance at `DAGSTER_HOME`: run `cryptolake demo` (it records its runs in `.dagster_home`)."
        )
    else:
        recent = runs.recent_runs(instance)
        if recent.is_empty():
            st.info("No runs recorded yet: run `cryptolake demo`.")
        else:
            st.table(recent.with_columns(pl.col("seconds").round(1)), hide_index=True)
