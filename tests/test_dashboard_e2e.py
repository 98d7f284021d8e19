"""The dashboards end to end: `cryptolake demo`, then the real Streamlit server and headless Chromium.

What this pins down beyond the data-function tests: the five pages load after a demo with no
exception, draw their Plotly charts from the lake (the values in the browser are the gold rows,
recomputed here with Polars), a URL's filters change what is drawn (a view can be shared), a
widget change redraws, the health page reads the demo's runs from its Dagster instance, and an
empty lake says what to run.
"""

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from e2e_support import CHROMIUM, CHROMIUM_ARGS, REPO_ROOT, Dashboard, open_dashboard_page
from playwright.sync_api import sync_playwright

from cryptolake_assets.dashboard import dashboard_url

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# 60 days: 30-day correlations from day 30 on, and enough history (≥ 200 rows of 5 symbols) for the
# walk-forward models to score the last ~17 days. Neighbours in universe order: one Dagster run.
DAYS = 60
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "AVAXUSDT", "ADAUSDT")
PAGE_PLOTS = {"overview": 3, "price": 1, "correlations": 2, "sentiment": 1, "predictions": 1, "quality": 1}

# A trace's numbers, whether Plotly keeps them as a list or as a typed array.
TRACES_JS = """els => els.map(e => (e.data || []).map(t => {
    const v = x => (x && x._inputArray) ? Array.from(x._inputArray) : x;
    return {name: t.name, type: t.type, x: v(t.x), y: v(t.y), z: t.z, close: v(t.close)};
}))"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """One demo per module: its DuckDB file, lake and Dagster instance in a tmp dir."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: install it with `apt-get install -y chromium` (.ci/run does this).")
    root = tmp_path_factory.mktemp("dashboard_e2e")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOLAKE_")} | {
        "DAGSTER_HOME": str(root / "home")
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cryptolake_assets.cli",
            "demo",
            "--days",
            str(DAYS),
            "--symbols",
            ",".join(SYMBOLS),
            "--duckdb",
            str(root / "demo.duckdb"),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return root


@pytest.fixture(scope="module")
def dashboard(demo: Path):
    server = Dashboard(lake=demo / "lake", home=demo / "home").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def page(dashboard):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport={"width": 1280, "height": 800})
        yield tab
        browser.close()


def gold(demo: Path, table: str) -> pl.DataFrame:
    return pl.read_delta(str(demo / "lake" / "gold" / table))


def traces(page) -> list[list[dict]]:
    return page.evaluate(TRACES_JS, page.query_selector_all(".js-plotly-plot"))


def table_rows(page, index: int = 0) -> list[list[str]]:
    return page.evaluate(
        "i => [...document.querySelectorAll('[data-testid=stTable]')[i].querySelectorAll('tbody tr')]"
        ".map(r => [...r.querySelectorAll('td,th')].map(c => c.innerText.trim()))",
        index,
    )


def assert_no_exception(page) -> None:
    errors = page.locator(".stException").all_inner_texts()
    assert not errors, errors


@pytest.mark.parametrize("name", list(PAGE_PLOTS))
def test_every_page_draws_its_charts_with_data(page, dashboard, name, tmp_path, monkeypatch):
    monkeypatch.setenv("CRYPTOLAKE_DASHBOARD_URL", dashboard.url)
    open_dashboard_page(page, dashboard_url(name), PAGE_PLOTS[name])  # the address the asset metadata links to
    assert_no_exception(page)
    assert "Page not found" not in page.locator("body").inner_text()
    drawn = traces(page)
    assert all(any(t["x"] or t["z"] for t in chart) for chart in drawn), drawn
    assert page.locator("[data-testid=stSidebarNav] a").all_inner_texts() == [
        "Overview",
        "Price analysis",
        "Correlations",
        "Sentiment",
        "Predictions",
        "Data quality",
    ]
    page.screenshot(path=str(tmp_path / f"{name}.png"))


def test_overview_shows_gold_top_10_and_breadth(page, dashboard, demo):
    overview, market = gold(demo, "market_overview"), gold(demo, "market_daily")
    newest = overview.filter(pl.col("coins_with_market_cap") > 0)["date"].max()
    expected = overview.filter(pl.col("date") == newest)["top_by_market_cap"].to_list()[0]
    assert len(expected) == 10
    open_dashboard_page(page, f"{dashboard.url}/?day={newest}", PAGE_PLOTS["overview"])
    rows = table_rows(page)
    assert [r[1] for r in rows] == [item["symbol"] for item in expected]
    assert [r[0] for r in rows] == [str(n) for n in range(1, 11)]
    assert rows[0][2] == f"{round(expected[0]['market_cap'] / 1e9, 2)}B"
    day = market.filter(pl.col("date") == newest).row(0, named=True)
    metrics = page.locator("[data-testid=stMetric]").all_inner_texts()
    assert metrics[0].split() == ["Advancers", str(day["advancers"])]
    assert metrics[1].split() == ["Decliners", str(day["decliners"])]
    assert day["best_symbol"] in metrics[2] and day["worst_symbol"] in metrics[3]

    # An older day has no CoinGecko snapshot: the page says so instead of drawing stale caps.
    first = market["date"].min()
    open_dashboard_page(page, f"{dashboard.url}/?day={first}", PAGE_PLOTS["overview"])
    assert f"No CoinGecko snapshot on {first}" in page.locator("[data-testid=stAlert]").first.inner_text()
    assert_no_exception(page)


def test_price_follows_the_url_and_the_widgets(page, dashboard, demo):
    features = gold(demo, "daily_features")
    end = features["date"].max()
    start = end - dt.timedelta(days=9)
    for symbol in ("ETHUSDT", "SOLUSDT"):
        open_dashboard_page(page, f"{dashboard.url}/price?symbols={symbol}&start={start}&end={end}", 1)
        expected = features.filter((pl.col("symbol") == symbol) & pl.col("date").is_between(start, end)).sort("date")
        candles = traces(page)[0][0]
        assert candles["name"] == f"{symbol} OHLC" and candles["type"] == "candlestick"
        assert candles["close"] == expected["close"].to_list()
        assert candles["x"] == [str(d) for d in expected["date"]]

    open_dashboard_page(page, f"{dashboard.url}/price?symbols=BTCUSDT,ETHUSDT&start={start}&end={end}", 2)
    assert [chart[0]["name"] for chart in traces(page)] == ["BTCUSDT OHLC", "ETHUSDT OHLC"]
    page.locator("[data-testid=stSidebar] label").filter(has_text="close").click()
    page.wait_for_function(
        "() => { const e = document.querySelector('.js-plotly-plot');"
        " return e && e.data && e.data[0].type === 'scatter'; }",
        timeout=30_000,
    )
    assert traces(page)[0][0]["name"] == "BTCUSDT close"
    assert_no_exception(page)


def test_correlations_heatmap_and_pair_follow_the_day(page, dashboard, demo):
    published = gold(demo, "correlations")
    correlations = published.filter(pl.col("corr_30d").is_not_null())
    days = sorted(correlations["date"].unique().to_list())
    assert len(days) >= 2
    drawn = {}
    for day in days[-2:]:
        open_dashboard_page(page, f"{dashboard.url}/correlations?day={day}&symbols=BTCUSDT,ETHUSDT", 2)
        heatmap, pair = traces(page)
        z = {(a, b): v for a, row in zip(heatmap[0]["y"], heatmap[0]["z"]) for b, v in zip(heatmap[0]["x"], row)}
        for a, b, c in (
            correlations.filter(pl.col("date") == day).select("symbol_a", "symbol_b", "corr_30d").iter_rows()
        ):
            assert z[(a, b)] == pytest.approx(c) and z[(b, a)] == pytest.approx(c)
        drawn[day] = z
        btc_eth = published.filter((pl.col("symbol_a") == "BTCUSDT") & (pl.col("symbol_b") == "ETHUSDT")).sort("date")
        assert pair[0]["y"] == btc_eth["corr_30d"].to_list()
    assert drawn[days[-2]] != drawn[days[-1]]
    assert_no_exception(page)


def test_sentiment_draws_fear_greed_against_btc(page, dashboard, demo):
    overview, features = gold(demo, "market_overview"), gold(demo, "daily_features")
    end = overview["date"].max()
    start = end - dt.timedelta(days=6)
    open_dashboard_page(page, f"{dashboard.url}/sentiment?start={start}&end={end}", 1)
    by_name = {t["name"]: t for t in traces(page)[0]}
    btc = features.filter((pl.col("symbol") == "BTCUSDT") & pl.col("date").is_between(start, end)).sort("date")
    assert by_name["BTC close"]["y"] == btc["close"].to_list()
    window = overview.filter(pl.col("date").is_between(start, end) & pl.col("fear_greed_value").is_not_null())
    drawn = {
        (x, y)
        for t in by_name.values()
        if t["type"] == "bar" and t["name"] in ("Extreme Fear", "Fear", "Neutral", "Greed", "Extreme Greed")
        for x, y in zip(t["x"], t["y"])
    }
    assert drawn == {(str(d), v) for d, v in window.select("date", "fear_greed_value").iter_rows()}
    assert_no_exception(page)


def test_predictions_show_each_strategys_out_of_sample_record(page, dashboard, demo):
    evaluation = gold(demo, "model_evaluation")
    start, end = evaluation["date"].min(), evaluation["date"].max()
    open_dashboard_page(page, f"{dashboard.url}/predictions?start={start}&end={end}", 1)
    expected = []
    for strategy in sorted(set(evaluation["strategy"])):
        rows = sorted(
            (r for r in evaluation.iter_rows(named=True) if r["strategy"] == strategy), key=lambda r: r["date"]
        )
        ics = [r["ic"] for r in rows if r["ic"] is not None]
        last = rows[-1]["cumulative_long_short"]
        expected.append(
            [
                strategy,
                str(len(rows)),
                f"{round(100 * sum(r['hits'] for r in rows) / sum(r['symbols'] for r in rows), 1)}%",
                str(round(sum(ics) / len(ics), 3)) if ics else "n/a",
                f"{round(100 * last, 2)}%" if last is not None else "n/a",
            ]
        )
    assert table_rows(page, 0) == expected
    [chart] = traces(page)
    assert {t["name"] for t in chart} == set(evaluation["strategy"])
    gbm = evaluation.filter(pl.col("strategy") == "gbm").sort("date")
    [drawn] = [t for t in chart if t["name"] == "gbm"]
    assert drawn["y"] == gbm["cumulative_long_short"].to_list()
    assert_no_exception(page)


def test_quality_shows_freshness_and_the_demos_runs(page, dashboard, demo):
    open_dashboard_page(page, f"{dashboard.url}/quality", 1)
    freshness = {(r[0], r[1]): r for r in table_rows(page, 0)}
    newest = str(gold(demo, "daily_features")["date"].max())
    assert freshness[("gold", "daily_features")][2:4] == [newest, "fresh"]
    results = pl.read_delta(str(demo / "lake" / "quality" / "check_results"))
    failing = results.filter(~pl.col("passed"))
    alerts = " ".join(page.locator("[data-testid=stAlert]").all_inner_texts())
    if failing.is_empty():  # the simulated exchange is clean: the page says how many results it read
        assert f"Every check passed on its latest evaluation ({len(results)} results)" in alerts
    else:
        shown = {(r[0], r[1]) for r in table_rows(page, 1)}
        assert shown == set(failing.select("asset", "check_name").iter_rows())
    runs = table_rows(page, page.locator("[data-testid=stTable]").count() - 1)
    assert runs and {r[2] for r in runs} == {"SUCCESS"}
    assert "daily_symbol_assets" in {r[1] for r in runs}
    assert_no_exception(page)


def test_an_empty_lake_says_what_to_run(page, tmp_path):
    server = Dashboard(lake=tmp_path / "lake", home=tmp_path / "no_dagster_home").start()
    try:
        for path, expected in (
            ("/", "No gold yet"),
            ("/price", "No gold yet"),
            ("/correlations", "No gold yet"),
            ("/sentiment", "No gold yet"),
            ("/predictions", "No gold yet"),
            ("/quality", "No Dagster instance"),
        ):
            page.goto(f"{server.url}{path}")
            page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning] [data-testid=stAlert]")
            alerts = " ".join(page.locator("[data-testid=stAlert]").all_inner_texts())
            assert expected in alerts and "cryptolake demo" in alerts, (path, alerts)
            assert_no_exception(page)
    finally:
        server.stop()
    assert not (tmp_path / "no_dagster_home").exists()
