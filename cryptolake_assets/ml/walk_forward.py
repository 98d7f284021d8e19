"""Walk-forward predictions of the next-day log return and the probability of an up day.

For day D the model in use was fit on retrain day R(D) = the latest day ≤ D with
``days since 1970-01-01 % retrain_every_days == 0``, on the rows of ``ml_features`` whose target was
known before R (date + 1 < R) within the ``TRAIN_WINDOW_DAYS`` before. A prediction of D therefore
depends only on features of D and on closes up to D − 1, and the same inputs give the same
predictions in any run range (fixed ``random_state``, rows in (date, symbol) order, every fit on
one thread, and a prediction row computed from its own features only).

Speed (issue 17: 50 symbols × 3,400 days): the table is sorted once and each retrain window is a
slice of one float matrix; the linear models are fit in closed form (ridge) and by Newton's method
(L2 logistic regression) on one shared imputation and scaling; gbm is scikit-learn's
histogram-based gradient boosting. Figures: docs/ml.md, ``benchmarks/ml_bench.py``.
scikit-learn is imported when a model is fit, not with the code location.
"""

import datetime as dt
import hashlib
import json
import warnings
from collections.abc import Callable

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
    # HistGradientBoostingRegressor / Classifier; no early stopping (no random validation split).
    "gbm": {"max_iter": 50, "max_depth": 2, "learning_rate": 0.1, "min_samples_leaf": 20},
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
    "model": "linear (ridge + L2 logistic regression) or gbm (histogram gradient boosting)",
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
    """Hash of the model's kind, parameters, features, training end and random state."""
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


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


class Scaling:
    """Median imputation then standard scaling, learnt on the training matrix (as scikit-learn's
    ``SimpleImputer(strategy="median", keep_empty_features=True)`` + ``StandardScaler``)."""

    def __init__(self, x: np.ndarray):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "All-NaN slice": that column imputes 0
            median = np.nanmedian(x, axis=0) if len(x) else np.zeros(x.shape[1])
        self.median = np.where(np.isnan(median), 0.0, median)  # an all-missing column imputes 0
        filled = self.fill(x)
        self.mean = filled.mean(axis=0)
        scale = filled.std(axis=0)
        self.scale = np.where(scale < 10 * np.finfo(float).eps * np.maximum(np.abs(self.mean), 1.0), 1.0, scale)

    def fill(self, x: np.ndarray) -> np.ndarray:
        return np.where(np.isnan(x), self.median, x)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (self.fill(x) - self.mean) / self.scale


def ridge(z: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """(coefficients, intercept) minimising ‖y − z·w − b‖² + alpha·‖w‖², in closed form; the columns
    of ``z`` are centred, so the intercept is the mean of ``y``."""
    gram = z.T @ z + alpha * np.eye(z.shape[1])
    coef = np.linalg.solve(gram, z.T @ (y - y.mean()))
    return coef, float(y.mean())


def logistic(z: np.ndarray, up: np.ndarray, c: float, max_iter: int = 100) -> tuple[np.ndarray, float]:
    """(coefficients, intercept) minimising Σ log-loss + ‖w‖² / (2·c) (scikit-learn's L2
    ``LogisticRegression(C=c)``; the intercept is not penalised) by Newton's method, started at the
    base rate and run until the step is below 1e-12."""
    n, k = z.shape
    design = np.hstack([z, np.ones((n, 1))])
    penalty = np.full(k + 1, 1.0 / c)
    penalty[-1] = 0.0
    rate = min(max(float(up.mean()), 1e-12), 1 - 1e-12)
    weights = np.zeros(k + 1)
    weights[-1] = np.log(rate / (1 - rate))
    for _ in range(max_iter):
        p = _sigmoid(design @ weights)
        gradient = design.T @ (p - up) + penalty * weights
        hessian = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if np.max(np.abs(step)) < 1e-12:
            break
    return weights[:-1], float(weights[-1])


def _linear_row(z: np.ndarray, coef: np.ndarray, intercept: float) -> np.ndarray:
    # Row by row (an elementwise product and a sum over each row): a row's value does not depend on
    # which other rows are predicted with it, unlike a BLAS matrix-vector product.
    return (z * coef).sum(axis=1) + intercept


Predictor = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def fit(kind: str, x: np.ndarray, y: np.ndarray, up: np.ndarray) -> Predictor:
    """Fit ``kind`` on features ``x`` (NaN = missing), next-day log returns ``y`` and up days ``up``;
    returns a function of a feature matrix → (predicted log return, probability of an up day)."""
    params = MODELS[kind]
    single_class = up.min() == up.max()
    if kind == "linear":
        scaling = Scaling(x)
        z = scaling(x)
        coef, intercept = ridge(z, y, params["ridge_alpha"])
        if not single_class:
            w, b = logistic(z, up.astype(float), params["logistic_C"])

        def predict_linear(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            zf = scaling(features)
            prob = np.full(len(zf), float(up[0])) if single_class else _sigmoid(_linear_row(zf, w, b))
            return _linear_row(zf, coef, intercept), prob

        return predict_linear

    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    tree = {**params, "early_stopping": False, "random_state": RANDOM_STATE}
    # A feature missing on every training row (market_cap_rank before CoinGecko snapshots exist)
    # carries nothing to split on; scikit-learn's binning fails on it, so it becomes a constant.
    empty = np.isnan(x).all(axis=0)
    if empty.any():
        x = np.where(empty, 0.0, x)
    regressor = HistGradientBoostingRegressor(**tree).fit(x, y)
    classifier = None if single_class else HistGradientBoostingClassifier(**tree).fit(x, up.astype(int))

    def predict_gbm(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        prob = np.full(len(features), float(up[0])) if classifier is None else classifier.predict_proba(features)[:, 1]
        return regressor.predict(features).astype(float), prob.astype(float)

    return predict_gbm


def walk_forward_predictions(
    features: pl.DataFrame,
    days: list[dt.date],
    retrain_every_days: int = DEFAULT_RETRAIN_EVERY_DAYS,
    models: tuple[str, ...] = tuple(MODELS),
) -> pl.DataFrame:
    """Predictions for the rows of ``days`` in ``features`` (gold.ml_features covering
    [min(days) − INPUT_DAYS, max(days)]). A day without ``MIN_TRAIN_ROWS`` training rows gets none.

    The table is sorted by (date, symbol) once; every retrain day's training rows and every
    prediction day's rows are slices of it found by binary search, fit on one thread."""
    if not 1 <= retrain_every_days <= MAX_RETRAIN_EVERY_DAYS:
        raise ValueError(f"retrain_every_days must be within 1..{MAX_RETRAIN_EVERY_DAYS}, got {retrain_every_days}")
    # scikit-learn's OpenMP runtime must be loaded before threadpool_limits: it only limits the
    # libraries already loaded, and two OpenMP threads spinning on a busy 2-core machine cost 10×.
    import sklearn.ensemble  # noqa: F401
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    table = features.select("date", "symbol", *FEATURE_COLUMNS, "target_log_return_1d", "target_up").sort(
        "date", "symbol"
    )
    ordinals = table["date"].cast(pl.Int32).to_numpy()
    x_all = _matrix(table)
    y_all = table["target_log_return_1d"].cast(pl.Float64).fill_null(float("nan")).to_numpy()
    up_all = table["target_up"].fill_null(False).to_numpy()
    symbols = table["symbol"]

    def span(first: dt.date, last: dt.date) -> slice:
        lo = np.searchsorted(ordinals, (first - EPOCH).days, side="left")
        hi = np.searchsorted(ordinals, (last - EPOCH).days, side="right")
        return slice(int(lo), int(hi))

    by_retrain: dict[dt.date, list[tuple[dt.date, slice]]] = {}
    for day in sorted(set(days)):
        rows = span(day, day)
        if rows.stop > rows.start:
            by_retrain.setdefault(retrain_day(day, retrain_every_days), []).append((day, rows))

    columns: dict[str, list] = {name: [] for name in PREDICTIONS_SCHEMA.names()}
    with threadpool_limits(limits=1):
        for trained_on, targets in by_retrain.items():
            through = trained_on - dt.timedelta(days=2)
            window = span(through - dt.timedelta(days=TRAIN_WINDOW_DAYS - 1), through)
            known = ~np.isnan(y_all[window])
            if int(known.sum()) < MIN_TRAIN_ROWS:
                continue
            x, y, up = x_all[window][known], y_all[window][known], up_all[window][known]
            x_targets = np.concatenate([x_all[rows] for _, rows in targets])
            target_dates = [d for d, rows in targets for _ in range(rows.stop - rows.start)]
            target_symbols = pl.concat([symbols[rows] for _, rows in targets])
            for kind in models:
                predicted, prob = fit(kind, x, y, up)(x_targets)
                count = len(x_targets)
                columns["date"].extend(target_dates)
                columns["symbol"].extend(target_symbols.to_list())
                columns["model"].extend([kind] * count)
                columns["model_version"].extend([model_version(kind, through)] * count)
                columns["trained_on"].extend([trained_on] * count)
                columns["trained_through"].extend([through] * count)
                columns["training_rows"].extend([len(y)] * count)
                columns["predicted_log_return"].extend(predicted.tolist())
                columns["prob_up"].extend(prob.tolist())
    return pl.DataFrame(columns, schema=PREDICTIONS_SCHEMA).sort("date", "symbol", "model")
