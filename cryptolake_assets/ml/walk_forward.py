"""Walk-forward predictions of the next-day log return and the probability of an up day.

For day D the model in use was fit on retrain day R(D) = the latest day ≤ D with
``days since 1970-01-01 % retrain_every_days == 0``, on the rows of ``ml_features`` whose target was
known before R (date + 1 < R) within the ``TRAIN_WINDOW_DAYS`` before. A prediction of D therefore
depends only on features of D and on closes up to D − 1, and the same inputs give the same
predictions in any run range (fixed ``random_state``, rows in (date, symbol) order).
scikit-learn is imported when a model is fit, not with the code location.
"""

import datetime as dt
import hashlib
import json

import numpy as np
import polars as pl

from cryptolake_assets.ml.features import FEATURE_COLUMNS

TRAIN_WINDOW_DAYS = 365
DEFAULT_RETRAIN_EVERY_DAYS = 7
MAX_RETRAIN_EVERY_DAYS = 28
MIN_TRAIN_ROWS = 200
RANDOM_STATE = 0
EPOCH = dt.date(1970, 1, 1)
# ml_features days one prediction day may read: [R − 1 − TRAIN_WINDOW_DAYS, D] with D − R < MAX.
INPUT_DAYS = TRAIN_WINDOW_DAYS + MAX_RETRAIN_EVERY_DAYS

MODELS: dict[str, dict] = {
    "linear": {"ridge_alpha": 10.0, "logistic_C": 0.1},
    "gbm": {"n_estimators": 100, "max_depth": 2, "learning_rate": 0.05, "subsample": 0.8},
}

PREDICTIONS_SCHEMA = pl.Schema(
    {
        "date": pl.Date(),
        "symbol": pl.String(),
        "model": pl.String(),
        "model_version": pl.String(),
        "trained_on": pl.Date(),
        "trained_through": pl.Date(),
        "training_rows": pl.Int64(),
        "predicted_log_return": pl.Float64(),
        "prob_up": pl.Float64(),
    }
)

COLUMNS = {
    "date": "UTC day D predicted for (features of D; the prediction is of D+1's log return)",
    "symbol": "Binance spot pair (joins dim_symbol.symbol)",
    "model": "linear (ridge + L2 logistic regression) or gbm (gradient boosting)",
    "model_version": "hash of (model kind, parameters, features, trained_through)",
    "trained_on": "retrain day R ≤ D whose model is used (cadence: retrain_every_days)",
    "trained_through": "the last feature date trained on (R − 2: its target closed on R − 1)",
    "training_rows": "rows the model was fit on (target known, within the training window)",
    "predicted_log_return": "predicted ln(close_(D+1) / close_D)",
    "prob_up": "predicted probability that close_(D+1) > close_D",
}


def retrain_day(day: dt.date, every_days: int) -> dt.date:
    """The latest retrain day ≤ ``day`` (anchored on 1970-01-01, so it does not depend on the run)."""
    return day - dt.timedelta(days=(day - EPOCH).days % every_days)


def model_version(kind: str, trained_through: dt.date) -> str:
    identity = {
        "model": kind,
        "params": MODELS[kind],
        "features": FEATURE_COLUMNS,
        "trained_through": str(trained_through),
        "random_state": RANDOM_STATE,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]


def training_rows(features: pl.DataFrame, trained_on: dt.date) -> pl.DataFrame:
    """Rows whose target was known before ``trained_on`` (date + 1 < R), within the window."""
    last = trained_on - dt.timedelta(days=2)
    first = last - dt.timedelta(days=TRAIN_WINDOW_DAYS - 1)
    return features.filter(pl.col("date").is_between(first, last) & pl.col("target_log_return_1d").is_not_null()).sort(
        "date", "symbol"
    )


def _matrix(frame: pl.DataFrame) -> np.ndarray:
    return frame.select(FEATURE_COLUMNS).cast(pl.Float64).fill_null(float("nan")).to_numpy()


class _Constant:
    """A classifier for a training set with one class only."""

    def __init__(self, probability: float):
        self.probability = probability

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.column_stack([np.full(len(x), 1 - self.probability), np.full(len(x), self.probability)])


def fit(kind: str, train: pl.DataFrame):
    """(regressor, classifier) fit on ``train``; missing features are imputed with the median."""
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = _matrix(train)
    y = train["target_log_return_1d"].to_numpy()
    up = train["target_up"].to_numpy().astype(int)
    params = MODELS[kind]

    def prepare():
        return [SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()]

    if kind == "linear":
        regressor = make_pipeline(*prepare(), Ridge(alpha=params["ridge_alpha"]))
        classifier = make_pipeline(*prepare(), LogisticRegression(C=params["logistic_C"], max_iter=1000))
    else:
        tree = {k: params[k] for k in ("n_estimators", "max_depth", "learning_rate", "subsample")}
        regressor = make_pipeline(*prepare(), GradientBoostingRegressor(random_state=RANDOM_STATE, **tree))
        classifier = make_pipeline(*prepare(), GradientBoostingClassifier(random_state=RANDOM_STATE, **tree))
    regressor.fit(x, y)
    if len(set(up.tolist())) < 2:
        classifier = _Constant(float(up[0]))
    else:
        classifier.fit(x, up)
    return regressor, classifier


def walk_forward_predictions(
    features: pl.DataFrame,
    days: list[dt.date],
    retrain_every_days: int = DEFAULT_RETRAIN_EVERY_DAYS,
    models: tuple[str, ...] = tuple(MODELS),
) -> pl.DataFrame:
    """Predictions for the rows of ``days`` in ``features`` (gold.ml_features covering
    [min(days) − INPUT_DAYS, max(days)]). A day without ``MIN_TRAIN_ROWS`` training rows gets none."""
    if not 1 <= retrain_every_days <= MAX_RETRAIN_EVERY_DAYS:
        raise ValueError(f"retrain_every_days must be within 1..{MAX_RETRAIN_EVERY_DAYS}, got {retrain_every_days}")
    fitted: dict[tuple[str, dt.date], tuple] = {}
    frames = []
    for day in sorted(set(days)):
        targets = features.filter(pl.col("date") == day).sort("symbol")
        if targets.is_empty():
            continue
        trained_on = retrain_day(day, retrain_every_days)
        train = training_rows(features, trained_on)
        if train.height < MIN_TRAIN_ROWS:
            continue
        x = _matrix(targets)
        for kind in models:
            if (kind, trained_on) not in fitted:
                fitted[(kind, trained_on)] = fit(kind, train)
            regressor, classifier = fitted[(kind, trained_on)]
            through = trained_on - dt.timedelta(days=2)
            frames.append(
                pl.DataFrame(
                    {
                        "date": [day] * targets.height,
                        "symbol": targets["symbol"],
                        "model": [kind] * targets.height,
                        "model_version": [model_version(kind, through)] * targets.height,
                        "trained_on": [trained_on] * targets.height,
                        "trained_through": [through] * targets.height,
                        "training_rows": [train.height] * targets.height,
                        "predicted_log_return": regressor.predict(x).astype(float),
                        "prob_up": classifier.predict_proba(x)[:, 1].astype(float),
                    }
                )
            )
    if not frames:
        return pl.DataFrame(schema=PREDICTIONS_SCHEMA)
    return pl.concat(frames).cast(PREDICTIONS_SCHEMA).sort("date", "symbol", "model")
