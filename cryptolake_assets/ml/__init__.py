"""ML-ready gold: point-in-time features, walk-forward predictions and their evaluation (pure code,
no Dagster; the assets live in ``cryptolake_assets.gold``)."""
