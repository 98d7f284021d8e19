"""The seven tables that had no rules (CoinGecko and Fear & Greed bronze + silver, gold
daily_returns, market_overview, dim_symbol_market): the pipeline's own output passes every check
of its Pandera model inside a real Dagster run, and each rule fails on a minimal bad frame."""

import datetime as dt
import json
from pathlib import Path

import httpx
import polars as pl
import pytest
from dagster import DagsterInstance, materialize
from test_gold_assets import SILVER_SPEC, lake, table

from cryptolake_assets.bronze.coingecko_markets import bronze_coingecko_markets
from cryptolake_assets.bronze.fear_greed import bronze_fear_greed
from cryptolake_assets.gold.daily_features import daily_features
from cryptolake_assets.gold.daily_returns import daily_returns
from cryptolake_assets.gold.dim_symbol_market import dim_symbol_market
from cryptolake_assets.gold.market_daily import market_daily
from cryptolake_assets.gold.market_overview import gold_market_overview as market_overview
from cryptolake_assets.quality import catalog
from cryptolake_assets.quality.factory import ERROR, RuleContext, build_table_checks, evaluate_table
from cryptolake_assets.silver.coingecko_markets import coingecko_markets, silver_coingecko_markets
from cryptolake_assets.silver.fear_greed import fear_greed, silver_fear_greed
from partitions import load_universe
from resources.coingecko import CoinGeckoClient, coingecko_markets_frame, split_snapshot
from resources.dagster_internals import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from resources.duckdb_io import as_utc
from resources.fear_greed import FearGreedClient, fear_greed_entries, fear_greed_frame
from resources.simulated.coingecko_api import SimulatedCoinGeckoAPI
from resources.simulated.fear_greed_api import SimulatedFearGreedAPI

NEW_TABLES = [
    catalog.BRONZE_COINGECKO_MARKETS,
    catalog.SILVER_COINGECKO_MARKETS,
    catalog.BRONZE_FEAR_GREED,
    catalog.SILVER_FEAR_GREED,
    catalog.GOLD_DAILY_RETURNS,
    catalog.GOLD_MARKET_OVERVIEW,
    catalog.GOLD_DIM_SYMBOL_MARKET,
]
FIRST, LAST = "2024-04-01", "2024-04-09"
NOW = dt.datetime(2024, 4, 9, 12, tzinfo=dt.UTC)  # CoinGecko captures a snapshot for "today" only


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """A lake built by the assets themselves (simulated CoinGecko / Fear & Greed over HTTP fakes,
    synthetic silver bars), with the seven tables' checks run in the same Dagster runs."""
    io_manager = lake(tmp_path_factory.mktemp("sources"), "sources")
    clock = lambda: NOW  # noqa: E731
    resources = {
        "io_manager": io_manager,
        "coingecko": CoinGeckoClient().with_transport(
            httpx.MockTransport(SimulatedCoinGeckoAPI(clock=clock).handle_request), clock=clock
        ),
        "fear_greed": FearGreedClient().with_transport(
            httpx.MockTransport(SimulatedFearGreedAPI(clock=clock).handle_request), clock=clock
        ),
    }
    instance = DagsterInstance.ephemeral()
    checks = [build_table_checks(t) for t in NEW_TABLES]
    every = [
        SILVER_SPEC,
        daily_features,
        daily_returns,
        market_daily,
        bronze_coingecko_markets,
        coingecko_markets,
        bronze_fear_greed,
        fear_greed,
        market_overview,
        dim_symbol_market,
        *checks,
    ]
    runs = [
        materialize(
            every,
            selection=[daily_features],
            resources=resources,
            instance=instance,
            tags={
                ASSET_PARTITION_RANGE_START_TAG: f"{FIRST}|BTCUSDT",
                ASSET_PARTITION_RANGE_END_TAG: f"{LAST}|ETHUSDT",
            },
        ),
        materialize(
            every,
            selection=[
                daily_returns,
                market_daily,
                bronze_coingecko_markets,
                coingecko_markets,
                bronze_fear_greed,
                fear_greed,
                market_overview,
            ],
            resources=resources,
            instance=instance,
            tags={ASSET_PARTITION_RANGE_START_TAG: FIRST, ASSET_PARTITION_RANGE_END_TAG: LAST},
        ),
        materialize(every, selection=[dim_symbol_market], resources=resources, instance=instance),
    ]
    evaluations = [
        e.event_specific_data for run in runs for e in run.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    frames = {
        "/".join(t.asset): as_utc(table(io_manager, ".".join(t.asset))) for t in NEW_TABLES
    }  # as the I/O manager reads
    return evaluations, frames


def test_the_pipelines_output_passes_every_check_of_the_seven_tables(pipeline):
    evaluations, frames = pipeline
    checked = {(e.asset_key.to_user_string(), e.check_name) for e in evaluations}
    assert checked == {("/".join(t.asset), r.name) for t in NEW_TABLES for r in t.rules}
    failed = [
        (e.asset_key.to_user_string(), e.check_name, e.partition, e.metadata["failing_rows"].value)
        for e in evaluations
        if not e.passed
    ]
    assert failed == []
    assert {name: frame.height > 0 for name, frame in frames.items()} == {name: True for name in frames}


def _at(row: int, column: str, value) -> pl.Expr:
    return pl.when(pl.int_range(pl.len()) == row).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)


def _dup(frame: pl.DataFrame) -> pl.DataFrame:
    return pl.concat([frame, frame.head(1)])


BAD_FRAMES = [
    ("bronze/coingecko_markets", "schema", lambda f: f.with_columns(_at(0, "id", None)), 1),
    ("bronze/coingecko_markets", "unique_date_id", _dup, 2),
    ("bronze/coingecko_markets", "amounts_non_negative", lambda f: f.with_columns(_at(1, "market_cap", -5.0)), 1),
    (
        "bronze/coingecko_markets",
        "last_updated_parses",
        lambda f: f.with_columns(_at(2, "last_updated", "yesterday")),
        1,
    ),
    ("silver/coingecko_markets", "schema", lambda f: f.with_columns(_at(0, "market_cap_rank", 0)), 1),
    ("silver/coingecko_markets", "unique_date_symbol", _dup, 2),
    ("silver/coingecko_markets", "amounts_non_negative", lambda f: f.with_columns(_at(3, "price_usd", -1.0)), 1),
    (
        "silver/coingecko_markets",
        "range_24h_consistent",
        lambda f: f.with_columns(_at(0, "low_24h", f["high_24h"][0] * 2)),
        1,
    ),
    (
        "silver/coingecko_markets",
        "supply_consistent",
        lambda f: f.with_columns(_at(0, "max_supply", 1.0), _at(0, "circulating_supply", 2.0)),
        1,
    ),
    ("bronze/fear_greed", "schema", lambda f: f.with_columns(pl.col("value").cast(pl.Int64)), 1),
    ("bronze/fear_greed", "unique_date", _dup, 2),
    ("bronze/fear_greed", "value_is_index", lambda f: f.with_columns(_at(0, "value", "101")), 1),
    ("bronze/fear_greed", "date_is_timestamp_day", lambda f: f.with_columns(_at(1, "timestamp", "86400")), 1),
    ("silver/fear_greed", "schema", lambda f: f.with_columns(_at(0, "value_classification", "Panic")), 1),
    ("silver/fear_greed", "unique_date", _dup, 2),
    (
        "silver/fear_greed",
        "missing_means_no_value",
        lambda f: f.with_columns(_at(0, "is_missing", not f["is_missing"][0])),
        1,
    ),
    ("gold/daily_returns", "schema", lambda f: f.with_columns(_at(0, "close", 0.0)), 1),
    ("gold/daily_returns", "unique_symbol_date", _dup, 2),
    (
        "gold/daily_returns",
        "returns_consistent",
        lambda f: f.with_columns(_at(f["return_1d"].arg_max(), "log_return_1d", 0.5)),
        1,
    ),
    ("gold/market_overview", "schema", lambda f: f.with_columns(_at(0, "btc_dominance", 1.5)), 1),
    ("gold/market_overview", "unique_date", _dup, 2),
    (
        "gold/market_overview",
        "breadth_consistent",
        lambda f: f.with_columns(_at(0, "advancers", f["symbols_traded"][0] + 1)),
        1,
    ),
    (
        "gold/market_overview",
        "market_cap_present_when_counted",
        lambda f: f.with_columns(_at(0, "coins_with_market_cap", 3), _at(0, "universe_market_cap", None)),
        1,
    ),
    ("gold/dim_symbol_market", "schema", lambda f: f.with_columns(_at(0, "snapshot_date", None)), 1),
    ("gold/dim_symbol_market", "unique_symbol", _dup, 2),
]


def test_every_new_rule_has_a_bad_frame():
    assert {(a, c) for a, c, _, _ in BAD_FRAMES} == {("/".join(t.asset), r.name) for t in NEW_TABLES for r in t.rules}


@pytest.mark.parametrize(
    ("asset", "check", "mutate", "expected"), BAD_FRAMES, ids=[f"{a}:{c}" for a, c, _, _ in BAD_FRAMES]
)
def test_a_minimal_bad_frame_fails_its_check_only(pipeline, asset, check, mutate, expected):
    _, frames = pipeline
    tables = {"/".join(t.asset): t for t in NEW_TABLES}
    findings = {f.rule.name: f for f in evaluate_table(tables[asset], mutate(frames[asset]), RuleContext())}
    assert findings[check].count == expected
    others = {name: f.count for name, f in findings.items() if name != check and f.count and f.rule.severity == ERROR}
    assert others == {}


REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


def _realdata(*parts: str):
    if not REALDATA.exists():
        pytest.skip(f"real data folder {REALDATA} is absent (a user's own clone); CI always has it")
    return json.loads(REALDATA.joinpath(*parts).read_text())


def _failing(table, frame: pl.DataFrame) -> dict[str, int]:
    return {f.rule.name: f.count for f in evaluate_table(table, frame, RuleContext()) if f.count}


@pytest.mark.parametrize(
    ("path", "day"),
    [
        (("coingecko", "gusgoros_API_DOCKER_PGADMIN", "coins_markets.json"), dt.date(2023, 1, 2)),
        (("coingecko", "ddbbooss_market-terminal", "crypto_markets.json"), dt.date(2026, 5, 3)),
    ],
)
def test_real_coingecko_captures_pass_the_bronze_and_silver_models(path, day):
    coins, _ = split_snapshot(_realdata(*path))
    bronze = coingecko_markets_frame(
        coins, snapshot_date=day, ingested_at=dt.datetime.combine(day, dt.time(8), tzinfo=dt.UTC)
    )
    assert _failing(catalog.BRONZE_COINGECKO_MARKETS, bronze) == {}
    silver = silver_coingecko_markets(bronze, load_universe())
    assert silver.height >= 3  # BTC, ETH and BNB at least are in both captures and the universe
    assert _failing(catalog.SILVER_COINGECKO_MARKETS, silver) == {}


def test_real_fear_greed_history_passes_the_bronze_and_silver_models():
    bronze = fear_greed_frame(
        fear_greed_entries(_realdata("fear_greed", "paleaura01_trading-bot", "fear_greed.json")),
        ingested_at=dt.datetime(2025, 4, 22, 8, tzinfo=dt.UTC),
    )
    assert _failing(catalog.BRONZE_FEAR_GREED, bronze) == {}
    days = [dt.date(2024, 4, 22) + dt.timedelta(days=n) for n in range(366)]
    silver = silver_fear_greed(bronze, days)
    assert silver["is_missing"].sum() == 1  # 2024-10-26 was not published: an explicit gap
    assert _failing(catalog.SILVER_FEAR_GREED, silver) == {}
