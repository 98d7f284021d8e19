"""What the dashboard pages show, computed from a small hand-built lake (every expected value by hand).

The tables are published with the pipeline's own ``publish`` and read back through ``LakeReader``,
the path the Streamlit pages take (check results included: ``quality/check_results``); recent runs
come from a temporary Dagster instance with one run in it.
"""

import datetime as dt

import polars as pl
import pytest
from click.testing import CliRunner
from dagster import (
    DagsterInstance,
    asset,
    materialize,
)

from cryptolake_assets import cli
from cryptolake_assets.api.lake_reader import LakeReader
from cryptolake_assets.dashboard import APP_PATH, dashboard_url, data, runs
from resources.lake import publish

D1, D2, D3 = dt.date(2024, 3, 1), dt.date(2024, 3, 2), dt.date(2024, 3, 3)
TOP = pl.List(pl.Struct({"symbol": pl.String(), "market_cap": pl.Float64(), "change_pct_24h": pl.Float64()}))

FEATURES = pl.DataFrame(
    {
        "date": [D1, D2, D3, D1, D2, D3],
        "symbol": ["BTCUSDT"] * 3 + ["ETHUSDT"] * 3,
        "close": [100.0, 110.0, 99.0, 10.0, 10.5, 10.5],
        "missing_bars": [0, 2, 1, 0, 0, 0],
    }
)
OVERVIEW = pl.DataFrame(
    {
        "date": [D1, D2, D3],
        "total_quote_volume": [5.0e9, 6.0e9, 7.0e9],
        "top_by_market_cap": [
            None,
            [
                {"symbol": "BTCUSDT", "market_cap": 2.0e12, "change_pct_24h": 1.5},
                {"symbol": "ETHUSDT", "market_cap": 4.0e11, "change_pct_24h": None},
            ],
            [],
        ],
        "fear_greed_value": [20, None, 75],
        "fear_greed_classification": ["Extreme Fear", None, "Greed"],
    },
    schema_overrides={"top_by_market_cap": TOP},
)
MARKET_DAILY = pl.DataFrame(
    {
        "date": [D2],
        "advancers": [1],
        "decliners": [0],
        "best_symbol": ["BTCUSDT"],
        "best_return_1d": [0.1],
        "worst_symbol": ["ETHUSDT"],
        "worst_return_1d": [0.05],
    }
)
CATEGORY_DAILY = pl.DataFrame(
    {
        "date": [D1, D2, D3, D1, D2, D3],
        "category": ["Layer 1"] * 3 + ["Meme"] * 3,
        "members": [2, 2, 2, 1, 1, 1],
        "mean_return_1d": [None, 0.1, -0.05, 0.2, None, 0.5],
        "mean_return_30d": [None, None, 0.3, None, None, -0.1],
    }
)
# Four symbols: A-B and C-D move together, the two pairs do not.
CORRELATIONS = pl.DataFrame(
    {
        "date": [D3] * 6 + [D2],
        "symbol_a": ["AUSDT", "AUSDT", "AUSDT", "BUSDT", "BUSDT", "CUSDT", "AUSDT"],
        "symbol_b": ["BUSDT", "CUSDT", "DUSDT", "CUSDT", "DUSDT", "DUSDT", "BUSDT"],
        "corr_30d": [0.9, 0.1, 0.2, 0.0, None, 0.8, 0.7],
    }
)
T0 = dt.datetime(2024, 3, 3, 1, 0, tzinfo=dt.UTC)
CHECK_RESULTS = pl.DataFrame(
    {
        "date": [D1, D2, D2, D2, None, D1],
        "symbol": ["BTCUSDT", "ETHUSDT", "BTCUSDT", None, None, "ETHUSDT"],
        "asset": [
            "silver/ohlcv",
            "silver/ohlcv",
            "silver/ohlcv",
            "gold/market_daily",
            "gold/dim_symbol",
            "silver/ohlcv",
        ],
        "check_name": [
            "ohlc_consistent",
            "ohlc_consistent",
            "ohlc_consistent",
            "breadth_consistent",
            "unique_symbol",
            "ohlc_consistent",
        ],
        "severity": ["ERROR", "ERROR", "ERROR", "ERROR", "WARN", "ERROR"],
        "passed": [False, False, True, False, False, True],
        "failing_rows": [2, 1, 0, 1, 3, 0],
        "rows_checked": [24, 24, 24, 1, 35, 24],
        "description": ["2 rows with high < low", "1 row", None, "advancers > symbols", "duplicates", None],
        "sample": [
            '[{"high": 1.0, "low": 2.0}, {"high": 3.0, "low": 4.0}]',
            '[{"high": 5.0, "low": 6.0}]',
            None,
            None,
            None,
            None,
        ],
        "evaluated_at": [T0, T0, T0, T0 + dt.timedelta(hours=1), T0 - dt.timedelta(hours=1), T0],
    }
)
QUARANTINE = pl.DataFrame(
    {
        "date": [D1, D1, D1, D3],
        "symbol": ["BTCUSDT"] * 4,
        "rule": ["high_below_low", "high_below_low", "duplicate", "duplicate"],
    }
)


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> LakeReader:
    root = tmp_path_factory.mktemp("dashboard_lake")
    reader = LakeReader(str(root))
    for layer, name, frame in (
        ("gold", "daily_features", FEATURES),
        ("gold", "market_overview", OVERVIEW),
        ("gold", "market_daily", MARKET_DAILY),
        ("gold", "category_daily", CATEGORY_DAILY),
        ("gold", "correlations", CORRELATIONS),
        ("silver", "ohlcv_quarantine", QUARANTINE),
        ("quality", "check_results", CHECK_RESULTS),
    ):
        publish(f"{root}/{layer}/{name}", frame, predicate=None)
    return reader


def read(lake: LakeReader, layer: str, name: str) -> pl.DataFrame:
    return lake.snapshot(layer, name)[1]


def test_top_by_market_cap_is_the_days_gold_list(lake):
    overview = read(lake, "gold", "market_overview")
    assert data.top_by_market_cap(overview, D2).rows() == [(1, "BTCUSDT", 2.0e12, 1.5), (2, "ETHUSDT", 4.0e11, None)]
    assert data.top_by_market_cap(overview, D1).is_empty()  # no snapshot (null)
    assert data.top_by_market_cap(overview, D3).is_empty()  # an empty list
    assert data.top_by_market_cap(overview, dt.date(2030, 1, 1)).is_empty()


def test_market_day(lake):
    market = read(lake, "gold", "market_daily")
    assert data.market_day(market, D2)["best_symbol"] == "BTCUSDT"
    assert data.market_day(market, D1) is None


def test_category_returns_and_index(lake):
    category = read(lake, "gold", "category_daily")
    assert data.category_returns(category, D3).rows() == [("Meme", 1, 0.5, -0.1), ("Layer 1", 2, -0.05, 0.3)]
    index = {(d, c): v for d, c, v in data.category_index(category, D1, D3).iter_rows()}
    assert index[(D1, "Layer 1")] == 100.0  # no return: flat
    assert index[(D2, "Layer 1")] == pytest.approx(110.0)
    assert index[(D3, "Layer 1")] == pytest.approx(110.0 * 0.95)
    assert index[(D1, "Meme")] == pytest.approx(120.0)
    assert index[(D2, "Meme")] == pytest.approx(120.0)
    assert index[(D3, "Meme")] == pytest.approx(180.0)
    later = data.category_index(category, D2, D3).filter(pl.col("category") == "Meme")["index"].to_list()
    assert later == pytest.approx([100.0, 150.0])


def test_price_history(lake):
    features = read(lake, "gold", "daily_features")
    rows = data.price_history(features, "BTCUSDT", D2, D3)
    assert rows["date"].to_list() == [D2, D3] and rows["close"].to_list() == [110.0, 99.0]


def test_correlation_matrix_orders(lake):
    correlations = read(lake, "gold", "correlations")
    names, matrix = data.correlation_matrix(correlations, D3, "symbol")
    assert names == ["AUSDT", "BUSDT", "CUSDT", "DUSDT"]
    assert matrix == [[1.0, 0.9, 0.1, 0.2], [0.9, 1.0, 0.0, None], [0.1, 0.0, 1.0, 0.8], [0.2, None, 0.8, 1.0]]
    # Means of the known correlations: A 0.4, B 0.45, C 0.3, D 0.5 -> start at D, then its closest
    # (C 0.8), then C's closest left (A 0.1 > B 0.0), then B.
    names, matrix = data.correlation_matrix(correlations, D3, "cluster")
    assert names == ["DUSDT", "CUSDT", "AUSDT", "BUSDT"]
    assert matrix[0] == [1.0, 0.8, 0.2, None]
    names, _ = data.correlation_matrix(
        correlations, D3, "category", {"AUSDT": "Meme", "DUSDT": "DeFi", "BUSDT": "DeFi"}
    )
    assert names == ["BUSDT", "DUSDT", "AUSDT", "CUSDT"]  # uncategorised last
    assert data.correlation_matrix(correlations, D1) == ([], [])


def test_pair_correlation_either_order(lake):
    correlations = read(lake, "gold", "correlations")
    assert data.pair_correlation(correlations, "BUSDT", "AUSDT", D1, D3).rows() == [(D2, 0.7), (D3, 0.9)]
    assert data.pair_correlation(correlations, "AUSDT", "BUSDT", D3, D3).rows() == [(D3, 0.9)]


def test_sentiment_joins_btc_close(lake):
    rows = data.sentiment(read(lake, "gold", "market_overview"), read(lake, "gold", "daily_features"), D1, D3)
    assert rows.rows() == [
        (D1, 20, "Extreme Fear", 5.0e9, 100.0),
        (D2, None, None, 6.0e9, 110.0),
        (D3, 75, "Greed", 7.0e9, 99.0),
    ]


def test_quarantine_and_missing_bars(lake):
    counts = data.quarantine_by_rule(read(lake, "silver", "ohlcv_quarantine"), D1, D3)
    assert counts.rows() == [(D1, "duplicate", 1), (D1, "high_below_low", 2), (D3, "duplicate", 1)]
    missing = data.missing_bars(read(lake, "gold", "daily_features"), D1, D3)
    assert missing.rows() == [("BTCUSDT", 3, 2), ("ETHUSDT", 0, 0)]
    assert data.missing_bars(read(lake, "gold", "daily_features"), D1, D1).rows() == [
        ("BTCUSDT", 0, 0),
        ("ETHUSDT", 0, 0),
    ]


def test_layer_health_states():
    now = dt.datetime(2024, 3, 4, 6, 0, tzinfo=dt.UTC)
    health = data.layer_health(
        {
            ("silver", "ohlcv"): D3,
            ("gold", "daily_features"): D1,
            ("gold", "market_daily"): None,
            ("gold", "correlations"): "unpublished",
        },
        now,
    )
    assert health.rows() == [
        ("silver", "ohlcv", D3, "fresh", 6.0),  # D3 closed at 03-04 00:00, 6 h ago
        ("gold", "daily_features", D1, "stale", 54.0),
        ("gold", "market_daily", None, "empty", None),
        ("gold", "correlations", None, "unpublished", None),
    ]


def test_filters_from_the_url():
    symbols, categories = ["BTCUSDT", "ETHUSDT", "SOLUSDT"], ["Layer 1", "Meme"]
    parse = lambda params: data.parse_filters(params, D1, dt.date(2024, 6, 30), symbols, ["BTCUSDT"], categories, 30)  # noqa: E731
    default = parse({})
    assert (default.start, default.end, default.day) == (
        dt.date(2024, 6, 1),
        dt.date(2024, 6, 30),
        dt.date(2024, 6, 30),
    )
    assert default.symbols == ("BTCUSDT",) and default.category is None
    chosen = parse(
        {
            "start": "2024-02-01",
            "end": "2024-03-02",
            "symbols": "solusdt,ETHUSDT,XXX,SOLUSDT",
            "category": "Meme",
            "day": "2024-04-01",
        }
    )
    assert (chosen.start, chosen.end, chosen.day) == (D1, D2, dt.date(2024, 4, 1))  # start clipped to the lake
    assert chosen.symbols == ("SOLUSDT", "ETHUSDT") and chosen.category == "Meme"
    bad = parse({"start": "yesterday", "end": "2099-01-01", "category": "Nope", "symbols": "XXX"})
    assert (bad.start, bad.end, bad.category, bad.symbols) == (
        dt.date(2024, 6, 1),
        dt.date(2024, 6, 30),
        None,
        ("BTCUSDT",),
    )


def test_failing_checks_from_the_lakes_check_results(lake):
    failing = data.failing_checks(read(lake, "quality", "check_results"))
    assert failing.select("asset", "check_name", "partition", "severity", "failing_rows").rows() == [
        ("gold/market_daily", "breadth_consistent", "2024-03-02", "ERROR", 1),  # the newest evaluation first
        ("silver/ohlcv", "ohlc_consistent", "2024-03-01|BTCUSDT", "ERROR", 2),
        ("silver/ohlcv", "ohlc_consistent", "2024-03-02|ETHUSDT", "ERROR", 1),
        ("gold/dim_symbol", "unique_symbol", "n/a", "WARN", 3),
    ]
    assert data.failing_by_check(failing).rows() == [
        ("gold/dim_symbol", "unique_symbol", "WARN", 1, 3, "n/a"),
        ("gold/market_daily", "breadth_consistent", "ERROR", 1, 1, "2024-03-02"),
        ("silver/ohlcv", "ohlc_consistent", "ERROR", 2, 3, "2024-03-01|BTCUSDT, 2024-03-02|ETHUSDT"),
    ]
    sample = data.sample_rows(failing.filter(pl.col("partition") == "2024-03-01|BTCUSDT")["sample"][0])
    assert sample.rows() == [(1.0, 2.0), (3.0, 4.0)] and sample.columns == ["high", "low"]
    assert data.sample_rows(None).is_empty()


def test_recent_runs_from_the_instance(tmp_path, monkeypatch):
    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        assert runs.recent_runs(instance).is_empty()

        @asset
        def tiny() -> int:
            return 1

        result = materialize([tiny], instance=instance, tags={"dagster/partition": "2024-03-01|BTCUSDT"})
        recent = runs.recent_runs(instance)
        assert recent.select("run_id", "status", "partitions").rows() == [
            (result.run_id, "SUCCESS", "2024-03-01|BTCUSDT")
        ]
        assert recent["seconds"][0] > 0
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert runs.open_instance() is None
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "missing"))
    assert runs.open_instance() is None  # never created


def test_asset_metadata_links_to_its_page(monkeypatch):
    from cryptolake_assets.definitions import defs

    links = {spec.key.to_user_string(): spec.metadata["dashboard"].url for spec in defs.resolve_all_asset_specs()}
    assert links["gold/market_overview"] == "http://127.0.0.1:8501/"  # the default page
    assert links["gold/daily_features"] == "http://127.0.0.1:8501/price"
    assert links["gold/correlations"] == "http://127.0.0.1:8501/correlations"
    assert links["silver/fear_greed"] == "http://127.0.0.1:8501/sentiment"
    assert links["silver/ohlcv_quarantine"] == "http://127.0.0.1:8501/quality"
    monkeypatch.setenv("CRYPTOLAKE_DASHBOARD_URL", "https://dash.example.com/")
    assert dashboard_url("price") == "https://dash.example.com/price"
    assert dashboard_url("overview") == "https://dash.example.com/"


def test_cli_dashboard_runs_streamlit_on_localhost(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(cli.subprocess, "call", lambda command: calls.append(command) or 0)
    monkeypatch.delenv("CRYPTOLAKE_LAKE", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "no_home"))
    result = CliRunner().invoke(cli.main, ["dashboard", "--port", "8600", "--lake", str(tmp_path / "lake")])
    assert result.exit_code == 0, result.output
    assert calls == [
        [
            cli.sys.executable,
            "-m",
            "streamlit",
            "run",
            str(APP_PATH),
            "--server.address",
            "127.0.0.1",
            "--server.port",
            "8600",
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
            "--client.toolbarMode",
            "viewer",
        ]
    ]
    assert cli.os.environ["CRYPTOLAKE_LAKE"] == str(tmp_path / "lake")
    assert not (tmp_path / "no_home").exists()


def test_model_summary_pools_hits_and_keeps_the_last_cumulative_return():
    d1, d2 = dt.date(2024, 3, 1), dt.date(2024, 3, 2)
    evaluation = pl.DataFrame(
        {
            "date": [d2, d1, d1, d2],
            "strategy": ["gbm", "gbm", "always_up", "always_up"],
            "symbols": [4, 6, 6, 4],
            "hits": [3, 2, 5, 1],
            "ic": [0.5, -0.1, None, None],
            "cumulative_long_short": [0.03, 0.01, None, None],
        }
    )
    summary = data.model_summary(evaluation)
    assert summary.to_dicts() == [
        {"strategy": "always_up", "days": 2, "hit_rate": 6 / 10, "mean_ic": None, "cumulative_long_short": None},
        {"strategy": "gbm", "days": 2, "hit_rate": 5 / 10, "mean_ic": (0.5 - 0.1) / 2, "cumulative_long_short": 0.03},
    ]
