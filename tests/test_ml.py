"""gold/ml_features, gold/predictions, gold/model_evaluation (#20): exact feature values on a
hand-built table, no look-ahead from silver bars, walk-forward training, determinism, and the
evaluation metrics recomputed independently (numpy / scipy) in the test."""

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from dagster import AssetKey
from scipy.stats import spearmanr

from cryptolake_assets.gold import features
from cryptolake_assets.ml import evaluation
from cryptolake_assets.ml import features as ml
from cryptolake_assets.ml import walk_forward as wf
from cryptolake_assets.quality.catalog import TABLES
from cryptolake_assets.quality.factory import ERROR, RuleContext, evaluate_table
from partitions import load_universe

CATEGORY = {info.symbol: info.category for info in load_universe()}
START = dt.date(2024, 1, 1)


def day(n: int) -> dt.date:
    return START + dt.timedelta(days=n)


# --- exact feature values on a hand-built table ----------------------------------------------

# BTCUSDT every day 0..40; ETHUSDT misses day 20 (inside its volume window of day 40, outside
# day 31's ret_7d); closes and volumes follow simple closed forms so the test can recompute them.
BTC_CLOSE = {n: 100.0 + n + (n % 3) * 0.5 for n in range(41)}
ETH_CLOSE = {n: 50.0 * (1.01**n) * (1.0 + 0.02 * (n % 2)) for n in range(41) if n != 20}
BTC_VOLUME = {n: 1000.0 + 37.0 * ((n * 7) % 11) for n in range(41)}
ETH_VOLUME = {n: 400.0 + 13.0 * ((n * 5) % 9) for n in range(41) if n != 20}


def hand_built():
    returns = pl.DataFrame(
        [{"date": day(n), "symbol": "BTCUSDT", "close": c, "quote_volume": BTC_VOLUME[n]} for n, c in BTC_CLOSE.items()]
        + [
            {"date": day(n), "symbol": "ETHUSDT", "close": c, "quote_volume": ETH_VOLUME[n]}
            for n, c in ETH_CLOSE.items()
        ],
        schema={"date": pl.Date, "symbol": pl.String, "close": pl.Float64, "quote_volume": pl.Float64},
    )
    day_features = pl.DataFrame(
        {
            "date": [day(31), day(31), day(40)],
            "symbol": ["BTCUSDT", "ETHUSDT", "ETHUSDT"],
            "volatility_30d": [0.5, None, 0.7],
            "rsi_14": [55.0, 45.0, 60.0],
            "drawdown_30d": [-0.1, -0.2, 0.0],
        },
        schema={
            "date": pl.Date,
            "symbol": pl.String,
            "volatility_30d": pl.Float64,
            "rsi_14": pl.Float64,
            "drawdown_30d": pl.Float64,
        },
    )
    correlations = pl.DataFrame(
        {
            "date": [day(31), day(40)],
            "symbol_a": ["BTCUSDT", "BTCUSDT"],
            "symbol_b": ["ETHUSDT", "ETHUSDT"],
            "corr_30d": [0.42, -0.3],
        },
        schema={"date": pl.Date, "symbol_a": pl.String, "symbol_b": pl.String, "corr_30d": pl.Float64},
    )
    category_daily = pl.DataFrame(
        {"date": [day(31), day(40)], "category": ["Layer 1", "Layer 1"], "mean_return_1d": [0.011, -0.02]},
        schema={"date": pl.Date, "category": pl.String, "mean_return_1d": pl.Float64},
    )
    market_daily = pl.DataFrame(
        {"date": [day(31), day(40)], "symbols": [4, 5], "advancers": [3, 1], "decliners": [1, 3]},
        schema={"date": pl.Date, "symbols": pl.Int64, "advancers": pl.Int64, "decliners": pl.Int64},
    )
    fear_greed = pl.DataFrame(
        {"date": [day(31), day(40)], "value": [72, None]}, schema={"date": pl.Date, "value": pl.Int64}
    )
    coingecko = pl.DataFrame(
        # BTC: snapshot of day 28 (3 days old on 31), and day 32 (after 31: must not be used for 31).
        # ETH: only day 23 (8 days before 31: too old) and day 40.
        {
            "date": [day(28), day(32), day(23), day(40)],
            "symbol": ["BTCUSDT", "BTCUSDT", "ETHUSDT", "ETHUSDT"],
            "market_cap_rank": [1, 2, 2, 3],
        },
        schema={"date": pl.Date, "symbol": pl.String, "market_cap_rank": pl.Int64},
    )
    return returns, day_features, correlations, category_daily, market_daily, fear_greed, coingecko


def test_exact_feature_values_on_a_hand_built_table():
    rows = ml.ml_features(*hand_built(), [day(31), day(40)], CATEGORY, last_closed_day=day(39))
    assert rows.schema == pl.Schema(ml.ML_FEATURES_SCHEMA)
    got = {(r["date"], r["symbol"]): r for r in rows.to_dicts()}
    assert sorted(got) == [(day(31), "BTCUSDT"), (day(31), "ETHUSDT"), (day(40), "BTCUSDT"), (day(40), "ETHUSDT")]

    btc = got[(day(31), "BTCUSDT")]
    for lag in (1, 3, 7, 30):
        assert btc[f"ret_{lag}d"] == math.log(BTC_CLOSE[31] / BTC_CLOSE[31 - lag])
    window = np.array([BTC_VOLUME[n] for n in range(2, 32)])
    assert btc["volume_zscore_30d"] == pytest.approx((BTC_VOLUME[31] - window.mean()) / window.std(ddof=1), rel=1e-12)
    assert (btc["volatility_30d"], btc["rsi_14"], btc["drawdown_30d"]) == (0.5, 55.0, -0.1)
    assert btc["corr_btc_30d"] == 1.0  # itself, with a full 30-day window (volatility_30d present)
    assert btc["category"] == "Layer 1" and btc["category_return_1d"] == 0.011
    assert btc["market_breadth"] == (3 - 1) / 4
    assert btc["fear_greed"] == 72.0
    assert btc["market_cap_rank"] == 1.0  # day 28's snapshot; day 32's is after D
    assert btc["target_log_return_1d"] == math.log(BTC_CLOSE[32] / BTC_CLOSE[31]) and btc["target_up"] is True

    eth = got[(day(31), "ETHUSDT")]
    assert eth["ret_1d"] == math.log(ETH_CLOSE[31] / ETH_CLOSE[30])
    assert eth["ret_30d"] == math.log(ETH_CLOSE[31] / ETH_CLOSE[1])
    assert eth["volume_zscore_30d"] is None  # day 20 missing inside [2, 31]
    assert eth["corr_btc_30d"] == 0.42 and eth["volatility_30d"] is None
    assert eth["market_cap_rank"] is None  # its only earlier snapshot is 8 days old
    assert eth["target_log_return_1d"] == math.log(ETH_CLOSE[32] / ETH_CLOSE[31])
    assert eth["target_up"] is (ETH_CLOSE[32] > ETH_CLOSE[31])

    eth40 = got[(day(40), "ETHUSDT")]
    assert eth40["ret_7d"] == math.log(ETH_CLOSE[40] / ETH_CLOSE[33])
    assert eth40["ret_30d"] == math.log(ETH_CLOSE[40] / ETH_CLOSE[10])
    assert eth40["volume_zscore_30d"] is None  # window [11, 40] contains day 20
    assert eth40["corr_btc_30d"] == -0.3 and eth40["category_return_1d"] == -0.02
    assert eth40["market_breadth"] == (1 - 3) / 5 and eth40["fear_greed"] is None
    assert eth40["market_cap_rank"] == 3.0
    # Day 41 is neither in the input nor closed (last_closed_day = 39): no target on the newest day.
    assert eth40["target_log_return_1d"] is None and eth40["target_up"] is None
    btc40 = got[(day(40), "BTCUSDT")]
    assert btc40["corr_btc_30d"] is None  # no volatility_30d row for BTC on day 40: no full window known
    assert btc40["ret_1d"] == math.log(BTC_CLOSE[40] / BTC_CLOSE[39])


def test_target_waits_for_the_next_day_to_close():
    inputs = hand_built()
    open_next = ml.ml_features(*inputs, [day(31)], CATEGORY, last_closed_day=day(31))
    closed_next = ml.ml_features(*inputs, [day(31)], CATEGORY, last_closed_day=day(32))
    assert open_next["target_log_return_1d"].null_count() == 2 and open_next["target_up"].null_count() == 2
    assert closed_next["target_log_return_1d"].null_count() == 0
    features_only = [c for c in ml.ML_FEATURES_SCHEMA if not c.startswith("target")]
    assert open_next.select(features_only).equals(closed_next.select(features_only))


def test_a_day_is_the_same_alone_and_in_a_range():
    inputs = hand_built()
    days = [day(n) for n in range(30, 41)]
    together = ml.ml_features(*inputs, days, CATEGORY, last_closed_day=day(39))
    alone = pl.concat([ml.ml_features(*inputs, [d], CATEGORY, last_closed_day=day(39)) for d in days])
    assert together.equals(alone)


# --- no look-ahead from silver bars, end to end ------------------------------------------------

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "LINKUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "AAVEUSDT"]
HISTORY_DAYS = 80
CUTOFF = day(70)  # the day D whose features and predictions must not move


def simulated_silver(seed: int = 7, start: dt.date = START) -> pl.DataFrame:
    """Daily (1d) silver bars: a random walk per symbol with a common market factor."""
    day = lambda n: start + dt.timedelta(days=n)  # noqa: E731
    rng = np.random.default_rng(seed)
    market = rng.normal(0, 0.02, HISTORY_DAYS)
    rows = []
    for symbol in SYMBOLS:
        log_close = 4.0 + np.cumsum(market * rng.uniform(0.5, 1.5) + rng.normal(0, 0.03, HISTORY_DAYS))
        for n in range(HISTORY_DAYS):
            close = float(np.exp(log_close[n]))
            open_ = float(np.exp(log_close[n - 1])) if n else close
            volume = float(rng.uniform(100, 200))
            rows.append(
                {
                    "date": day(n),
                    "symbol": symbol,
                    "interval": "1d",
                    "open_time": dt.datetime.combine(day(n), dt.time(), tzinfo=dt.UTC),
                    "open": open_,
                    "high": max(open_, close) * 1.01,
                    "low": min(open_, close) * 0.99,
                    "close": close,
                    "volume": volume,
                    "quote_volume": volume * close,
                    "trades": 100 + n,
                }
            )
    return pl.DataFrame(rows).with_columns(pl.col("open_time").dt.cast_time_unit("us"))


def gold_inputs(silver: pl.DataFrame, start: dt.date = START) -> dict[str, pl.DataFrame]:
    """Silver → the gold and silver tables ml_features reads, for every day of the history."""
    day = lambda n: start + dt.timedelta(days=n)  # noqa: E731
    now = dt.datetime.combine(day(HISTORY_DAYS), dt.time(), tzinfo=dt.UTC)
    history = [day(n) for n in range(HISTORY_DAYS)]
    daily = features.daily_features(features.daily_bars(silver, now=now))
    returns = daily.select("date", "symbol", "close", "quote_volume", "return_1d", "log_return_1d")
    return {
        "daily_returns": returns,
        "daily_features": daily,
        "correlations": features.correlations_30d(returns, history),
        "category_daily": features.category_daily(returns, history, CATEGORY),
        "market_daily": features.market_daily(returns, history),
        "fear_greed": pl.DataFrame(
            {"date": history, "value": [(n * 37) % 101 for n in range(HISTORY_DAYS)]},
            schema={"date": pl.Date, "value": pl.Int64},
        ),
        "coingecko": pl.DataFrame(
            {"date": [day(5)] * len(SYMBOLS), "symbol": SYMBOLS, "market_cap_rank": list(range(1, len(SYMBOLS) + 1))}
        ),
    }


def pipeline_from_silver(
    silver: pl.DataFrame, days: list[dt.date], last_closed: dt.date
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Silver → gold.daily_features → daily_returns → correlations / category / market → ml_features
    (every day of the history, as the lake would hold them) → predictions of ``days``."""
    inputs = gold_inputs(silver)
    history = [day(n) for n in range(HISTORY_DAYS)]
    table = ml.ml_features(*inputs.values(), history, CATEGORY, last_closed)
    return table, wf.walk_forward_predictions(table, days, retrain_every_days=7)


def test_changing_silver_after_day_d_leaves_features_and_predictions_of_d_unchanged():
    """Every silver bar after D is changed (prices and volumes). The features and the predictions of
    D stay bit for bit identical; the TARGET of D legitimately changes: it is D+1's return."""
    silver = simulated_silver()
    later = pl.col("date") > CUTOFF
    factor = pl.when(later).then(1.0 + 0.3 * ((pl.col("trades") % 5) - 2) / 2).otherwise(1.0)
    changed = silver.with_columns(
        *(pl.col(c) * factor for c in ("open", "high", "low", "close", "quote_volume")),
        volume=pl.when(later).then(pl.col("volume") * 3).otherwise(pl.col("volume")),
    )
    assert not changed.equals(silver)
    last_closed = day(HISTORY_DAYS - 1)
    before_features, before_predictions = pipeline_from_silver(silver, [CUTOFF], last_closed)
    after_features, after_predictions = pipeline_from_silver(changed, [CUTOFF], last_closed)

    feature_columns = [c for c in ml.ML_FEATURES_SCHEMA if not c.startswith("target")]
    on_d = pl.col("date") == CUTOFF
    assert before_features.filter(on_d).height == len(SYMBOLS)
    assert (
        before_features.filter(on_d).select(feature_columns).equals(after_features.filter(on_d).select(feature_columns))
    )
    assert before_predictions.height == 2 * len(SYMBOLS)
    assert before_predictions.equals(after_predictions)
    # The target of D reads D+1's close: it did change, as it must.
    assert not before_features.filter(on_d)["target_log_return_1d"].equals(
        after_features.filter(on_d)["target_log_return_1d"]
    )
    # And a day after D does see the change (the test would catch a frozen pipeline).
    assert not before_features.filter(pl.col("date") == CUTOFF + dt.timedelta(days=2)).equals(
        after_features.filter(pl.col("date") == CUTOFF + dt.timedelta(days=2))
    )


# --- walk-forward training and determinism ----------------------------------------------------


@pytest.fixture(scope="module")
def feature_table() -> pl.DataFrame:
    table, _ = pipeline_from_silver(simulated_silver(), [], day(HISTORY_DAYS - 1))
    return table


def test_training_uses_only_targets_known_before_the_retrain_day(feature_table):
    target_day = day(72)
    trained_on = wf.retrain_day(target_day, 7)
    assert trained_on <= target_day and (trained_on - wf.EPOCH).days % 7 == 0
    train = wf.training_rows(feature_table, trained_on)
    assert train["date"].max() == trained_on - dt.timedelta(days=2)  # its target closed on R − 1 < R
    predictions = wf.walk_forward_predictions(feature_table, [target_day], 7)
    assert set(predictions["trained_on"].to_list()) == {trained_on}
    assert set(predictions["trained_through"].to_list()) == {trained_on - dt.timedelta(days=2)}
    assert set(predictions["training_rows"].to_list()) == {train.height}
    # Poisoning every target not yet known at R (dates ≥ R − 1) changes nothing.
    unknown = pl.col("date") >= trained_on - dt.timedelta(days=1)
    poisoned = feature_table.with_columns(
        target_log_return_1d=pl.when(unknown).then(pl.lit(9.0)).otherwise(pl.col("target_log_return_1d")),
        target_up=pl.when(unknown).then(pl.lit(True)).otherwise(pl.col("target_up")),
    )
    assert wf.walk_forward_predictions(poisoned, [target_day], 7).equals(predictions)


def test_same_inputs_same_predictions_in_any_range(feature_table):
    days = [day(n) for n in range(64, 72)]
    first = wf.walk_forward_predictions(feature_table, days, 7)
    second = wf.walk_forward_predictions(feature_table.sample(fraction=1.0, shuffle=True, seed=3), days, 7)
    assert first.equals(second)
    alone = pl.concat([wf.walk_forward_predictions(feature_table, [d], 7) for d in days])
    assert first.equals(alone)
    assert first.schema == pl.Schema(wf.PREDICTIONS_SCHEMA)
    assert set(first["model"].to_list()) == {"linear", "gbm"}
    assert first["prob_up"].is_between(0, 1).all()
    # One version per (model, retrain day), and it changes when the model is refit.
    versions = first.select("model", "trained_on", "model_version").unique()
    assert versions.height == versions.select("model", "trained_on").n_unique() == versions["model_version"].n_unique()


def _sklearn_models(train: pl.DataFrame):
    """The documented models, fit with scikit-learn's own estimators on ``wf.training_rows`` (the
    polars filter, not the walk-forward's matrix slices)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    x = train.select(ml.FEATURE_COLUMNS).cast(pl.Float64).fill_null(float("nan")).to_numpy()
    y = train["target_log_return_1d"].to_numpy()
    up = train["target_up"].to_numpy().astype(int)

    def prepare():
        return [SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()]

    tree = {"max_iter": 50, "max_depth": 2, "learning_rate": 0.1, "early_stopping": False, "random_state": 0}
    with threadpool_limits(limits=1):
        return {
            "linear": (
                make_pipeline(*prepare(), Ridge(alpha=10.0)).fit(x, y),
                make_pipeline(*prepare(), LogisticRegression(C=0.1, tol=1e-12, max_iter=10_000)).fit(x, up),
            ),
            "gbm": (
                HistGradientBoostingRegressor(**tree).fit(x, y),
                HistGradientBoostingClassifier(**tree).fit(x, up),
            ),
        }


def test_models_match_scikit_learn_fit_on_the_training_rows(feature_table):
    """linear = median imputation + scaling + Ridge(alpha=10) / LogisticRegression(C=0.1), here in
    closed form and by Newton's method; gbm = HistGradientBoosting (50 trees, depth 2, rate 0.1)."""
    target_days = [day(n) for n in range(70, 80)]  # two retrain days (every 7 days)
    predictions = wf.walk_forward_predictions(feature_table, target_days, 7)
    assert predictions.height == 2 * len(target_days) * len(SYMBOLS)
    trained_on = sorted(set(predictions["trained_on"].to_list()))
    assert len(trained_on) == 2
    for retrain in trained_on:
        models = _sklearn_models(wf.training_rows(feature_table, retrain))
        days_of_model = [d for d in target_days if wf.retrain_day(d, 7) == retrain]
        rows = feature_table.filter(pl.col("date").is_in(days_of_model)).sort("date", "symbol")
        x = rows.select(ml.FEATURE_COLUMNS).cast(pl.Float64).fill_null(float("nan")).to_numpy()
        for kind, (regressor, classifier) in models.items():
            got = predictions.filter((pl.col("model") == kind) & pl.col("date").is_in(days_of_model)).sort(
                "date", "symbol"
            )
            assert got["symbol"].to_list() == rows["symbol"].to_list()
            assert set(got["trained_on"].to_list()) == {retrain}
            # Ridge's closed form is exact to rounding; lbfgs stops at its tolerance (1e-12 here).
            assert np.allclose(got["predicted_log_return"].to_numpy(), regressor.predict(x), rtol=1e-9, atol=1e-15)
            assert np.allclose(got["prob_up"].to_numpy(), classifier.predict_proba(x)[:, 1], rtol=0, atol=1e-7)
    # The linear model is not a constant: its predictions vary across symbols.
    assert predictions.filter(pl.col("model") == "linear")["predicted_log_return"].n_unique() > len(SYMBOLS)


def test_a_training_window_with_one_class_predicts_that_class(feature_table):
    always_up = feature_table.with_columns(
        target_up=pl.when(pl.col("target_up").is_not_null()).then(True),
        target_log_return_1d=pl.col("target_log_return_1d").abs() + 0.001,
    )
    predictions = wf.walk_forward_predictions(always_up, [day(72)], 7)
    assert predictions.height == 2 * len(SYMBOLS)
    assert predictions["prob_up"].to_list() == [1.0] * predictions.height
    assert (predictions["predicted_log_return"] > 0).all()


def test_a_feature_missing_on_every_training_row_is_ignored(feature_table):
    """As on the demo's past days (CoinGecko has today's snapshot only): market_cap_rank is null in
    the whole training window but present on the predicted day. gbm then predicts as a model fit
    without that feature; linear imputes it with 0 and scales by 1 (coefficient 0 by the penalty's
    gradient: the column is constant)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    target_day = day(72)
    no_ranks = feature_table.with_columns(
        market_cap_rank=pl.when(pl.col("date") == target_day).then(pl.lit(3.0)).otherwise(None)
    )
    predictions = wf.walk_forward_predictions(no_ranks, [target_day], 7).filter(pl.col("model") == "gbm")
    train = wf.training_rows(no_ranks, wf.retrain_day(target_day, 7))
    assert train["market_cap_rank"].null_count() == train.height
    others = [c for c in ml.FEATURE_COLUMNS if c != "market_cap_rank"]
    x = train.select(others).cast(pl.Float64).fill_null(float("nan")).to_numpy()
    rows = no_ranks.filter(pl.col("date") == target_day).sort("symbol")
    xt = rows.select(others).cast(pl.Float64).fill_null(float("nan")).to_numpy()
    tree = {"max_iter": 50, "max_depth": 2, "learning_rate": 0.1, "early_stopping": False, "random_state": 0}
    with threadpool_limits(limits=1):
        regressor = HistGradientBoostingRegressor(**tree).fit(x, train["target_log_return_1d"].to_numpy())
        classifier = HistGradientBoostingClassifier(**tree).fit(x, train["target_up"].to_numpy().astype(int))
    assert predictions["symbol"].to_list() == rows["symbol"].to_list()
    assert np.allclose(predictions["predicted_log_return"].to_numpy(), regressor.predict(xt), rtol=1e-12, atol=0)
    assert np.allclose(predictions["prob_up"].to_numpy(), classifier.predict_proba(xt)[:, 1], rtol=1e-12, atol=0)


def test_every_fit_runs_on_one_thread_in_a_fresh_process():
    """threadpoolctl limits only the thread pools already loaded: scikit-learn (and its OpenMP)
    must be imported before the limit, also when the first fit of the process is inside it."""
    import json
    import subprocess
    import sys

    script = """
import datetime as dt, json
import numpy as np, polars as pl
from threadpoolctl import threadpool_info
from cryptolake_assets.ml import walk_forward as wf
from cryptolake_assets.ml.features import FEATURE_COLUMNS
seen = []
real_fit = wf.fit
def fit(*args):
    seen.extend((i["internal_api"], i["num_threads"]) for i in threadpool_info())
    return real_fit(*args)
wf.fit = fit
rng = np.random.default_rng(0)
days = [dt.date(2024, 1, 1) + dt.timedelta(days=n) for n in range(30)]
n = len(days) * 10
table = pl.DataFrame({"date": [d for d in days for _ in range(10)], "symbol": [f"S{k}" for k in range(10)] * len(days),
    **{c: rng.normal(size=n) for c in FEATURE_COLUMNS}, "target_log_return_1d": rng.normal(size=n)})
table = table.with_columns(target_up=pl.col("target_log_return_1d") > 0)
assert wf.walk_forward_predictions(table, days[-1:], 7).height == 20
print(json.dumps(sorted(set(seen))))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    pools = json.loads(done.stdout.strip().splitlines()[-1])
    assert "openmp" in {api for api, _ in pools}  # scikit-learn's OpenMP was loaded and seen
    assert {threads for _, threads in pools} == {1}


def test_scaling_imputes_an_all_missing_column_with_zero_and_keeps_a_constant_one():
    x = np.array([[1.0, np.nan, 5.0], [3.0, np.nan, 5.0], [np.nan, np.nan, 5.0]])
    scaling = wf.Scaling(x)
    assert scaling.median.tolist() == [2.0, 0.0, 5.0]
    assert scaling.mean.tolist() == [2.0, 0.0, 5.0]
    assert scaling.scale.tolist() == [math.sqrt(2 / 3), 1.0, 1.0]
    assert scaling(np.array([[np.nan, 7.0, 6.0]])).tolist() == [[0.0, 7.0, 1.0]]


def test_cadence_is_configurable_and_bounded(feature_table):
    daily = wf.walk_forward_predictions(feature_table, [day(71)], 1)
    assert set(daily["trained_on"].to_list()) == {day(71)}
    with pytest.raises(ValueError, match="retrain_every_days"):
        wf.walk_forward_predictions(feature_table, [day(71)], wf.MAX_RETRAIN_EVERY_DAYS + 1)


def test_too_little_history_gives_no_predictions(feature_table):
    assert wf.walk_forward_predictions(feature_table, [day(3)], 7).is_empty()


# --- evaluation metrics, recomputed independently ------------------------------------------------


def random_predictions(seed: int, signal: float = 0.0, days: int = 40, symbols: int = 12):
    """Predictions and outcomes of ``days`` × ``symbols``; ``signal`` mixes the outcome into the score."""
    rng = np.random.default_rng(seed)
    names = [f"S{k:02d}USDT" for k in range(symbols)]
    outcome_rows, prediction_rows = [], []
    for n in range(days):
        for name in names:
            target = float(rng.normal(0, 0.03))
            outcome_rows.append(
                {
                    "date": day(n),
                    "symbol": name,
                    "ret_1d": float(rng.normal(0, 0.03)),
                    "target_log_return_1d": target,
                    "target_up": target > 0,
                }
            )
            for model in ("linear", "gbm"):
                score = signal * target + float(rng.normal(0, 0.03))
                prediction_rows.append(
                    {
                        "date": day(n),
                        "symbol": name,
                        "model": model,
                        "predicted_log_return": score,
                        "prob_up": 1 / (1 + math.exp(-score * 50)),
                    }
                )
    outcomes = pl.DataFrame(outcome_rows)
    # A last day whose target is unknown: never scored.
    outcomes = pl.concat(
        [
            outcomes,
            pl.DataFrame(
                [
                    {
                        "date": day(days),
                        "symbol": names[0],
                        "ret_1d": 0.01,
                        "target_log_return_1d": None,
                        "target_up": None,
                    }
                ],
                schema=outcomes.schema,
            ),
        ]
    )
    prediction_rows.append(
        {"date": day(days), "symbol": names[0], "model": "linear", "predicted_log_return": 0.1, "prob_up": 0.9}
    )
    prediction_rows.append(
        {"date": day(days), "symbol": names[0], "model": "gbm", "predicted_log_return": 0.1, "prob_up": 0.9}
    )
    return pl.DataFrame(prediction_rows), outcomes


def test_daily_metrics_match_an_independent_computation():
    predictions, outcomes = random_predictions(11)
    # Day 0 keeps 4 symbols only: too few for an IC or a quintile (k = 0).
    few = ~((pl.col("date") == day(0)) & (pl.col("symbol") >= "S04USDT"))
    predictions, outcomes = predictions.filter(few), outcomes.filter(few)
    daily = evaluation.daily_evaluation(predictions, outcomes)
    assert daily.schema == pl.Schema(evaluation.MODEL_EVALUATION_SCHEMA)
    assert daily["date"].max() == day(39)  # the unknown target is not scored
    got = {(r["date"], r["strategy"]): r for r in daily.to_dicts()}
    cumulative = {}
    for n in range(40):
        out = outcomes.filter(pl.col("date") == day(n)).sort("symbol")
        y = out["target_log_return_1d"].to_numpy()
        scores = {
            m: predictions.filter((pl.col("date") == day(n)) & (pl.col("model") == m)).sort("symbol")
            for m in ("linear", "gbm")
        }
        cases = {m: (p["predicted_log_return"].to_numpy(), p["prob_up"].to_numpy() > 0.5) for m, p in scores.items()}
        ret_1d = out["ret_1d"].to_numpy()
        cases["yesterday_sign"] = (ret_1d, ret_1d > 0)
        for strategy, (score, predicted_up) in cases.items():
            row = got[(day(n), strategy)]
            hits = int(np.sum(predicted_up == (y > 0)))
            assert (row["symbols"], row["hits"]) == (len(y), hits)
            assert row["hit_rate"] == pytest.approx(hits / len(y), rel=1e-15)
            if len(y) < 5:
                assert row["ic"] is None and row["long_short_return"] is None
                spread = 0.0
            else:
                assert row["ic"] == pytest.approx(spearmanr(score, y).statistic, rel=1e-9, abs=1e-12)
                k = len(y) // 5
                order = np.argsort(score, kind="stable")
                spread = y[order[-k:]].mean() - y[order[:k]].mean()
                assert row["long_short_return"] == pytest.approx(spread, rel=1e-12, abs=1e-15)
            cumulative[strategy] = cumulative.get(strategy, 0.0) + spread
            assert row["cumulative_long_short"] == pytest.approx(cumulative[strategy], rel=1e-9, abs=1e-12)
        up = got[(day(n), "always_up")]
        assert up["hits"] == int(np.sum(y > 0)) and up["ic"] is None and up["long_short_return"] is None


def test_evaluation_says_no_edge_on_noise_and_finds_a_real_one():
    noise = evaluation.summary(evaluation.daily_evaluation(*random_predictions(5, signal=0.0, days=60, symbols=20)))
    assert not any(figures["edge"] for figures in noise.values())
    assert abs(noise["linear"]["mean_ic"]) < 0.05 and abs(noise["linear"]["hit_rate"] - 0.5) < 0.04
    assert "no edge detected" in evaluation.verdict(noise)
    signal = evaluation.summary(evaluation.daily_evaluation(*random_predictions(5, signal=1.0, days=60, symbols=20)))
    assert signal["linear"]["edge"] and signal["gbm"]["edge"] and not signal["yesterday_sign"]["edge"]
    assert signal["linear"]["mean_ic"] > 0.5 and signal["linear"]["mean_long_short"] > 0
    assert "edge detected: gbm, linear" in evaluation.verdict(signal)
    # Pooled figures, recomputed: hit rate and its z against 50 %.
    daily = evaluation.daily_evaluation(*random_predictions(5, signal=1.0, days=60, symbols=20)).filter(
        pl.col("strategy") == "linear"
    )
    hits, rows = int(daily["hits"].sum()), int(daily["symbols"].sum())
    assert signal["linear"]["hit_rate"] == hits / rows
    assert signal["linear"]["hit_rate_z"] == pytest.approx((hits - rows / 2) / math.sqrt(rows / 4))
    ics = daily["ic"].to_numpy()
    assert signal["linear"]["ic_t"] == pytest.approx(ics.mean() / (ics.std(ddof=1) / math.sqrt(len(ics))))


# --- quality checks of the three tables ----------------------------------------------------------

BY_ASSET = {"/".join(t.asset): t for t in TABLES}
ML_TABLES = [BY_ASSET[a] for a in ("gold/ml_features", "gold/predictions", "gold/model_evaluation")]


@pytest.fixture(scope="module")
def clean_frames(feature_table):
    predictions = wf.walk_forward_predictions(feature_table, [day(n) for n in range(66, 72)], 7)
    return {
        "gold/ml_features": feature_table,
        "gold/predictions": predictions,
        "gold/model_evaluation": evaluation.daily_evaluation(predictions, feature_table),
    }


def _at(row: int, column: str, value) -> pl.Expr:
    return pl.when(pl.int_range(pl.len()) == row).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)


def _dup(frame: pl.DataFrame) -> pl.DataFrame:
    return pl.concat([frame, frame.head(1)])


BAD_ML_FRAMES = [
    ("gold/ml_features", "schema", lambda f: f.with_columns(_at(40, "rsi_14", 101.0)), 1),
    ("gold/ml_features", "unique_date_symbol", _dup, 2),
    ("gold/ml_features", "features_in_range", lambda f: f.with_columns(_at(40, "market_breadth", 1.5)), 1),
    (
        "gold/ml_features",
        "target_consistent",
        lambda f: f.with_columns(_at(40, "target_up", not f["target_up"][40])),
        1,
    ),
    ("gold/predictions", "schema", lambda f: f.with_columns(_at(0, "prob_up", 1.2)), 1),
    ("gold/predictions", "unique_date_symbol_model", _dup, 2),
    (
        "gold/predictions",
        "trained_before_date",
        lambda f: f.with_columns(_at(0, "trained_through", f["trained_on"][0] - dt.timedelta(days=1))),
        1,
    ),
    ("gold/model_evaluation", "schema", lambda f: f.with_columns(_at(0, "hit_rate", 1.5)), 1),
    ("gold/model_evaluation", "unique_date_strategy", _dup, 2),
]


def test_every_ml_rule_has_a_bad_frame():
    assert {(a, c) for a, c, _, _ in BAD_ML_FRAMES} == {("/".join(t.asset), r.name) for t in ML_TABLES for r in t.rules}


def test_clean_ml_tables_pass_every_check(clean_frames):
    for asset, frame in clean_frames.items():
        assert frame.height > 0
        assert {f.rule.name: f.count for f in evaluate_table(BY_ASSET[asset], frame, RuleContext()) if f.count} == {}


@pytest.mark.parametrize(
    ("asset", "check", "mutate", "expected"), BAD_ML_FRAMES, ids=[f"{a}:{c}" for a, c, _, _ in BAD_ML_FRAMES]
)
def test_a_minimal_bad_ml_frame_fails_its_check_only(clean_frames, asset, check, mutate, expected):
    findings = {f.rule.name: f for f in evaluate_table(BY_ASSET[asset], mutate(clean_frames[asset]), RuleContext())}
    assert findings[check].count == expected
    assert {n: f.count for n, f in findings.items() if n != check and f.count and f.rule.severity == ERROR} == {}


# --- through Dagster and the DuckDB I/O manager, up to today's partition ---------------------------


def test_assets_fill_the_three_tables_through_dagster(tmp_path):
    """Upstream tables for the 80 days up to today written straight into DuckDB, then ml_features +
    predictions as one range run and model_evaluation: the newest partition has no D + 1 partition
    (allowed), targets are null from yesterday on (today has not closed), and one day re-run alone
    stores the same rows."""
    import duckdb
    from dagster import AssetSpec, materialize

    from cryptolake_assets.gold.ml_features import ml_features as ml_features_asset
    from cryptolake_assets.gold.model_evaluation import model_evaluation as evaluation_asset
    from cryptolake_assets.gold.predictions import predictions as predictions_asset
    from partitions import DAILY_SYMBOL_PARTITION_EXPR, daily_partitions, daily_symbol_partitions
    from resources.dagster_internals import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
    from resources.duckdb_io import CryptoLakeDuckDBIOManager

    today = dt.datetime.now(dt.UTC).date()
    start = today - dt.timedelta(days=HISTORY_DAYS - 1)
    inputs = gold_inputs(simulated_silver(start=start), start=start)
    tables = {
        "daily_returns": ("gold", "daily_returns"),
        "daily_features": ("gold", "daily_features"),
        "correlations": ("gold", "correlations"),
        "category_daily": ("gold", "category_daily"),
        "market_daily": ("gold", "market_daily"),
        "fear_greed": ("silver", "fear_greed"),
        "coingecko": ("silver", "coingecko_markets"),
    }
    database = str(tmp_path / "ml.duckdb")
    with duckdb.connect(database) as connection:
        for name, (schema, table) in tables.items():
            frame = inputs[name]  # noqa: F841 (read by DuckDB's replacement scan)
            connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            connection.execute(f"CREATE TABLE {schema}.{table} AS SELECT * FROM frame")
    sources = [
        AssetSpec(
            list(key),
            partitions_def=daily_symbol_partitions if name == "daily_features" else daily_partitions,
            metadata={"partition_expr": DAILY_SYMBOL_PARTITION_EXPR if name == "daily_features" else "date"},
        )
        for name, key in tables.items()
    ]
    resources = {"io_manager": CryptoLakeDuckDBIOManager(database=database)}
    every = [*sources, ml_features_asset, predictions_asset, evaluation_asset]
    day_range = {ASSET_PARTITION_RANGE_START_TAG: str(start), ASSET_PARTITION_RANGE_END_TAG: str(today)}
    assert materialize(
        every, selection=[ml_features_asset, predictions_asset], resources=resources, tags=day_range
    ).success
    evaluated_run = materialize(every, selection=[evaluation_asset], resources=resources)
    [materialization] = evaluated_run.asset_materializations_for_node("gold__model_evaluation")
    assert materialization.metadata["chart"].value.startswith("![model evaluation](data:image/png;base64,")
    verdict = materialization.metadata["verdict"].value.splitlines()
    assert [line.split(":")[0] for line in verdict[:-1]] == ["always_up", "gbm", "linear", "yesterday_sign"]

    def read(table):
        with duckdb.connect(database, read_only=True) as connection:
            return (
                connection.sql(f"SELECT * FROM gold.{table}")
                .pl()
                .sort(*(["date", "symbol", "model"] if table == "predictions" else ["date", "symbol"]))
            )

    table, predictions = read("ml_features"), read("predictions")
    assert table.height == HISTORY_DAYS * len(SYMBOLS)
    with_target = table.filter(pl.col("target_log_return_1d").is_not_null())["date"].unique().sort()
    assert with_target.max() == today - dt.timedelta(days=2) and with_target.len() == HISTORY_DAYS - 2
    assert predictions["date"].max() == today and predictions.height > 0
    with duckdb.connect(database, read_only=True) as connection:
        evaluated = connection.sql("SELECT * FROM gold.model_evaluation").pl()
    assert set(evaluated["strategy"].to_list()) == {"linear", "gbm", "yesterday_sign", "always_up"}
    assert evaluated["date"].max() == today - dt.timedelta(days=2)

    one_day = str(today - dt.timedelta(days=10))
    assert materialize(
        every, selection=[ml_features_asset, predictions_asset], resources=resources, partition_key=one_day
    ).success
    assert read("ml_features").equals(table) and read("predictions").equals(predictions)


def test_partition_mappings_reach_one_day_ahead_only_for_the_target():
    from cryptolake_assets.definitions import defs

    graph = defs.resolve_asset_graph()

    def parents(child: str, parent: list[str]) -> list[str]:
        return sorted(
            str(k)
            for k in graph.get_parent_partition_keys_for_child(
                "2024-03-15", AssetKey(parent), AssetKey(["gold", child])
            ).partitions_subset.get_partition_keys()
        )

    returns = parents("ml_features", ["gold", "daily_returns"])
    assert (returns[0], returns[-1], len(returns)) == ("2024-02-14", "2024-03-16", 32)  # D − 30 .. D + 1
    assert parents("ml_features", ["gold", "correlations"]) == ["2024-03-15"]
    assert parents("ml_features", ["silver", "fear_greed"]) == ["2024-03-15"]
    ranks = parents("ml_features", ["silver", "coingecko_markets"])
    assert (ranks[0], ranks[-1]) == ("2024-03-09", "2024-03-15")
    day_features = graph.get_parent_partition_keys_for_child(
        "2024-03-15", AssetKey(["gold", "daily_features"]), AssetKey(["gold", "ml_features"])
    ).partitions_subset.get_partition_keys()
    assert {k.keys_by_dimension["date"] for k in day_features} == {"2024-03-15"}
    training = parents("predictions", ["gold", "ml_features"])
    assert (training[-1], len(training)) == ("2024-03-15", wf.INPUT_DAYS + 1)
    assert graph.get(AssetKey(["gold", "model_evaluation"])).partitions_def is None


def test_ml_targets_schedule_refills_the_day_whose_next_day_just_closed():
    from dagster import build_schedule_context

    from cryptolake_assets.definitions import defs
    from cryptolake_assets.schedules import ML_FEATURES_KEY, ml_targets_schedule

    when = dt.datetime(2024, 7, 3, 1, 10, tzinfo=dt.UTC)
    result = ml_targets_schedule.evaluate_tick(
        build_schedule_context(scheduled_execution_time=when, repository_def=defs.get_repository_def())
    )
    [request] = result.run_requests
    assert (request.partition_key, request.run_key, request.asset_selection) == (
        "2024-07-01",
        "ml_targets:2024-07-01",
        [ML_FEATURES_KEY],
    )
