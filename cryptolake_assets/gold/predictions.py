"""gold/predictions: walk-forward next-day return predictions per UTC day, symbol and model."""

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetIn,
    Config,
    MetadataValue,
    Output,
    TimeWindowPartitionMapping,
)
from pydantic import Field

from cryptolake_assets.gold.table_metadata import column_lineage
from cryptolake_assets.medallion import medallion_asset
from cryptolake_assets.metadata import markdown_preview, rich_metadata, run_wide
from cryptolake_assets.ml import walk_forward as wf
from cryptolake_assets.ml.features import FEATURE_COLUMNS
from partitions import daily_partitions
from resources.duckdb_io import partition_days

ML_FEATURES = ["gold", "ml_features"]


class PredictionsConfig(Config):
    retrain_every_days: int = Field(
        default=wf.DEFAULT_RETRAIN_EVERY_DAYS,
        ge=1,
        le=wf.MAX_RETRAIN_EVERY_DAYS,
        description="Retrain cadence: a model is fit on days whose count since 1970-01-01 is a multiple of this.",
    )


@medallion_asset(
    "gold",
    "predictions",
    schema=wf.PREDICTIONS_SCHEMA,
    columns=wf.COLUMNS,
    partitions_def=daily_partitions,
    kinds={"scikitlearn"},
    ins={
        "ml_features": AssetIn(
            key=ML_FEATURES,
            partition_mapping=TimeWindowPartitionMapping(start_offset=-wf.INPUT_DAYS),
            metadata={"columns": ["date", "symbol", *FEATURE_COLUMNS, "target_log_return_1d", "target_up"]},
        )
    },
)
def predictions(
    context: AssetExecutionContext, config: PredictionsConfig, ml_features: pl.DataFrame
) -> Output[pl.DataFrame]:
    """Per day D and symbol, the predicted next-day log return and probability of an up day from a
    regularised linear model and histogram gradient boosting, trained walk-forward: only on rows whose
    target was known before D (date + 1 < retrain day ≤ D), retrained every ``retrain_every_days``."""
    days = partition_days(*context.partition_time_window)
    rows = wf.walk_forward_predictions(ml_features, days, config.retrain_every_days)
    skipped = sorted(set(days) - set(rows["date"].to_list()))
    return Output(
        rows,
        metadata={
            "rows": len(rows),
            "days": len(days),
            **run_wide(
                {
                    "days_without_predictions": len(skipped),
                    "retrain_every_days": config.retrain_every_days,
                    "model_versions": MetadataValue.text(
                        ", ".join(sorted(set(rows["model_version"].to_list()))[:20]) or "-"
                    ),
                }
            ),
            **rich_metadata(
                len(days),
                lambda: {
                    "preview": markdown_preview(rows.sort("date", "model", "prob_up", descending=[True, False, True])),
                    "dagster/column_lineage": column_lineage(
                        {
                            "date": [(ML_FEATURES, "date")],
                            "symbol": [(ML_FEATURES, "symbol")],
                            **{
                                c: [(ML_FEATURES, f) for f in [*FEATURE_COLUMNS, "target_log_return_1d", "target_up"]]
                                for c in ("predicted_log_return", "prob_up")
                            },
                        }
                    ),
                },
            ),
        },
    )
