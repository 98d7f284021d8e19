"""Materialization metadata helpers shared by assets: previews and time spans users see in the UI."""

import polars as pl
from dagster import MetadataValue


def markdown_preview(frame: pl.DataFrame, rows: int = 10, columns: list[str] | None = None) -> MetadataValue:
    """A small markdown table of the first rows (what the UI shows as a preview)."""
    sample = frame.select(columns) if columns else frame
    sample = sample.head(rows)
    if sample.is_empty():
        return MetadataValue.md("_no rows_")
    header = "| " + " | ".join(sample.columns) + " |"
    rule = "|" + "---|" * len(sample.columns)
    body = [
        "| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in sample.iter_rows()
    ]
    return MetadataValue.md("\n".join([header, rule, *body]))


def time_span(frame: pl.DataFrame, column: str) -> dict[str, MetadataValue]:
    """First/last value of a time column as text metadata (empty frames say so)."""
    if frame.is_empty():
        return {f"first_{column}": MetadataValue.text("-"), f"last_{column}": MetadataValue.text("-")}
    return {
        f"first_{column}": MetadataValue.text(str(frame[column].min())),
        f"last_{column}": MetadataValue.text(str(frame[column].max())),
    }
