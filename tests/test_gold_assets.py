"""Gold assets through Dagster: lineage, partition mappings, and partition invariance in DuckDB.

Two platform traps shape this layer (PLATFORM-NOTES): a time-window mapping straight from a
date × symbol asset to a date-only asset fails at run time, so cross-symbol assets read a date-only
hop (gold/daily_returns); and the 30-day look-back must be a partition mapping so backfills and
lineage show it. The invariance tests materialize into a temporary DuckDB file with the project's
I/O manager: one partition alone and the same partition inside a 60-day range must store identical
rows.
"""

import base64
import datetime as dt
import math
import random
import re

import duckdb
import polars as pl
import pytest
from dagster import (
    AssetKey,
    AssetSpec,
    BackfillPolicy,
    DagsterInstance,
    MultiPartitionKey,
    MultiPartitionMapping,
    MultiToSingleDimensionPartitionMapping,
    TableColumnLineage,
    TableSchema,
    TimeWindowPartitionMapping,
    materialize,
)
from polars.testing import assert_frame_equal

from cryptolake_assets.gold.category_daily import category_daily
from cryptolake_assets.gold.correlations import correlations
from cryptolake_assets.gold.daily_features import daily_features
from cryptolake_assets.gold.daily_returns import daily_returns
from cryptolake_assets.gold.dim_date import dim_date
from cryptolake_assets.gold.dim_symbol import dim_symbol
from cryptolake_assets.gold.market_daily import market_daily
from cryptolake_assets.silver.transform import SILVER_OHLCV_SCHEMA
from partitions import DAILY_SYMBOL_PARTITION_EXPR, daily_partitions, daily_symbol_partitions
from resources.dagster_internals import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from resources.duckdb_io import CryptoLakeDuckDBIOManager

GOLD = {
    "daily_features": AssetKey(["gold", "daily_features"]),
    "daily_returns": AssetKey(["gold", "daily_returns"]),
    "correlations": AssetKey(["gold", "correlations"]),
    "category_daily": AssetKey(["gold", "category_daily"]),
    "market_daily": AssetKey(["gold", "market_daily"]),
    "dim_symbol": AssetKey(["gold", "dim_symbol"]),
    "dim_date": AssetKey(["gold", "dim_date"]),
    "market_overview": AssetKey(["gold", "market_overview"]),
    "dim_symbol_market": AssetKey(["gold", "dim_symbol_market"]),
    "ml_features": AssetKey(["gold", "ml_features"]),
    "predictions": AssetKey(["gold", "predictions"]),
    "model_evaluation": AssetKey(["gold", "model_evaluation"]),
}
SILVER = AssetKey(["silver", "ohlcv"])
BRONZE = AssetKey(["bronze", "klines"])
DATE_ONLY_ASSETS = [daily_returns, correlations, category_daily, market_daily, dim_date]
SYMBOLS = ["BTCUSDT", "ETHUSDT"]  # adjacent in the universe file, so a key range covers exactly these
FIRST_DAY = dt.date(2024, 1, 1)
DAYS = 100


# --- lineage (the project's code location) --------------------------------------------------


@pytest.fixture(scope="module")
def asset_graph():
    from cryptolake_assets.definitions import defs

    return defs.resolve_asset_graph()


def test_lineage_is_bronze_silver_gold(asset_graph):
    parents = {key: set(asset_graph.get(key).parent_keys) for key in GOLD.values()}
    assert set(asset_graph.get(SILVER).parent_keys) == {BRONZE}
    assert parents == {
        GOLD["daily_features"]: {SILVER},
        GOLD["daily_returns"]: {GOLD["daily_features"]},
        GOLD["correlations"]: {GOLD["daily_returns"]},
        GOLD["category_daily"]: {GOLD["daily_returns"]},
        GOLD["market_daily"]: {GOLD["daily_returns"]},
        GOLD["dim_symbol"]: set(),
        GOLD["dim_date"]: set(),
        GOLD["market_overview"]: {
            GOLD["market_daily"],
            AssetKey(["silver", "fear_greed"]),
            AssetKey(["silver", "coingecko_markets"]),
        },
        GOLD["dim_symbol_market"]: {AssetKey(["silver", "coingecko_markets"])},
        GOLD["ml_features"]: {
            GOLD["daily_returns"],
            GOLD["daily_features"],
            GOLD["correlations"],
            GOLD["category_daily"],
            GOLD["market_daily"],
            AssetKey(["silver", "fear_greed"]),
            AssetKey(["silver", "coingecko_markets"]),
        },
        GOLD["predictions"]: {GOLD["ml_features"]},
        GOLD["model_evaluation"]: {GOLD["predictions"], GOLD["ml_features"]},
    }
    gold_keys = {key for key in asset_graph.get_all_asset_keys() if key.path[0] == "gold"}
    stream = {
        key for key in gold_keys if asset_graph.get(key).tags.get("pipeline") == "stream"
    }  # test_stream_assets.py
    assert stream == {AssetKey(["gold", "bars_1m"])}
    assert gold_keys - stream == set(GOLD.values())


def test_partition_mappings_express_the_look_backs(asset_graph):
    silver_window = asset_graph.get_parent_partition_keys_for_child(
        MultiPartitionKey({"date": "2024-03-15", "symbol": "ETHUSDT"}), SILVER, GOLD["daily_features"]
    ).partitions_subset.get_partition_keys()
    assert sorted(silver_window) == [
        MultiPartitionKey({"date": str(dt.date(2024, 2, 14) + dt.timedelta(days=k)), "symbol": "ETHUSDT"})
        for k in range(31)
    ]
    features_of_day = asset_graph.get_parent_partition_keys_for_child(
        "2024-03-15", GOLD["daily_features"], GOLD["daily_returns"]
    ).partitions_subset.get_partition_keys()
    assert {key.keys_by_dimension["date"] for key in features_of_day} == {"2024-03-15"}
    assert len(features_of_day) == len(
        daily_symbol_partitions.get_partitions_def_for_dimension("symbol").get_partition_keys()
    )
    windows = {
        name: sorted(
            asset_graph.get_parent_partition_keys_for_child(
                "2024-03-15", GOLD["daily_returns"], GOLD[name]
            ).partitions_subset.get_partition_keys()
        )
        for name in ("correlations", "category_daily", "market_daily")
    }
    assert (windows["correlations"][0], windows["correlations"][-1], len(windows["correlations"])) == (
        "2024-02-15",
        "2024-03-15",
        30,
    )
    assert (windows["category_daily"][0], len(windows["category_daily"])) == ("2024-02-14", 31)
    assert windows["market_daily"] == ["2024-03-15"]


def test_every_gold_asset_is_documented_and_runs_in_the_duckdb_pool(asset_graph):
    for key in GOLD.values():
        node = asset_graph.get(key)
        spec = next(s for s in node.assets_def.specs if s.key == key)
        assert spec.description and len(spec.description) > 40, key
        assert spec.group_name == "gold", key
        assert {"polars", "duckdb"} <= set(spec.kinds), key
        assert isinstance(spec.metadata["dagster/column_schema"], TableSchema), key
        assert all(c.description for c in spec.metadata["dagster/column_schema"].columns), key
        assert node.assets_def.op.pool == "duckdb", key
        if node.partitions_def is not None:
            assert node.assets_def.backfill_policy == BackfillPolicy.single_run(), key
            assert "partition_expr" in spec.metadata, key
    assert asset_graph.get(GOLD["daily_features"]).partitions_def == daily_symbol_partitions
    assert all(
        asset_graph.get(GOLD[n]).partitions_def == daily_partitions
        for n in ("daily_returns", "correlations", "category_daily", "market_daily", "dim_date")
    )
    assert asset_graph.get(GOLD["dim_symbol"]).partitions_def is None


def test_mapping_objects_are_dagster_built_ins():
    """Custom PartitionMapping subclasses are not serialized to the webserver (PLATFORM-NOTES)."""
    assert isinstance(daily_features.get_partition_mapping(SILVER), MultiPartitionMapping)
    assert isinstance(
        daily_returns.get_partition_mapping(GOLD["daily_features"]), MultiToSingleDimensionPartitionMapping
    )
    assert daily_features.get_partition_mapping(SILVER).downstream_mappings_by_upstream_dimension[
        "date"
    ].partition_mapping == TimeWindowPartitionMapping(start_offset=-30)
    assert correlations.get_partition_mapping(GOLD["daily_returns"]) == TimeWindowPartitionMapping(start_offset=-29)
    assert category_daily.get_partition_mapping(GOLD["daily_returns"]) == TimeWindowPartitionMapping(start_offset=-30)


# --- materializing into DuckDB ----------------------------------------------------------------

SILVER_SPEC = AssetSpec(
    SILVER, partitions_def=daily_symbol_partitions, metadata={"partition_expr": DAILY_SYMBOL_PARTITION_EXPR}
)


def synthetic_silver() -> pl.DataFrame:
    """Hourly bars for BTC and ETH over 100 days: a random walk with some missing bars, ETH without
    bars on day 60 and BTC with a zero-volume day."""
    rng = random.Random(11)
    rows = []
    for index, symbol in enumerate(SYMBOLS):
        price = 100.0 * (index + 1)
        for n in range(DAYS):
            day = FIRST_DAY + dt.timedelta(days=n)
            if symbol == "ETHUSDT" and n == 60:
                continue
            for hour in range(24):
                if rng.random() < 0.02:
                    continue
                price *= math.exp(rng.gauss(0, 0.01))
                volume = 0.0 if (symbol == "BTCUSDT" and n == 45) else rng.random()
                open_time = dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)
                rows.append(
                    {
                        "date": day,
                        "symbol": symbol,
                        "interval": "1h",
                        "open_time": open_time,
                        "close_time": open_time + dt.timedelta(hours=1) - dt.timedelta(milliseconds=1),
                        "open": price,
                        "high": price * 1.01,
                        "low": price * 0.99,
                        "close": price,
                        "volume": volume,
                        "quote_volume": volume * price,
                        "trades": rng.randint(0, 100),
                        "taker_buy_base_volume": volume / 2,
                        "taker_buy_quote_volume": volume * price / 2,
                        "gap_before": 0,
                        "source": "test",
                    }
                )
    return pl.DataFrame(rows, schema=SILVER_OHLCV_SCHEMA)


def lake(tmp_path, name: str) -> CryptoLakeDuckDBIOManager:
    path = tmp_path / f"{name}.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA silver").fetchall()
        con.register("bars", synthetic_silver().to_arrow())
        con.execute("CREATE TABLE silver.ohlcv AS SELECT * FROM bars").fetchall()
    return CryptoLakeDuckDBIOManager(database=str(path))


def table(io_manager: CryptoLakeDuckDBIOManager, name: str, where: str = "TRUE") -> pl.DataFrame:
    with duckdb.connect(io_manager.database, read_only=True) as con:
        return con.sql(f"SELECT * FROM {name} WHERE {where} ORDER BY ALL").pl()


def run(io_manager, selection, *, instance=None, partition_key=None, first=None, last=None):
    tags = {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last} if first else None
    result = materialize(
        [SILVER_SPEC, daily_features, *DATE_ONLY_ASSETS, dim_symbol],
        selection=selection,
        resources={"io_manager": io_manager},
        partition_key=partition_key,
        tags=tags,
        instance=instance,
    )
    assert result.success
    return result


def png_of(markdown: str) -> bytes:
    match = re.fullmatch(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", markdown)
    assert match, markdown[:80]
    return base64.b64decode(match.group(1))


@pytest.fixture(scope="module")
def ranged(tmp_path_factory):
    """A lake where gold is materialized as one 60-day range run per partitioning."""
    io_manager = lake(tmp_path_factory.mktemp("ranged"), "ranged")
    instance = DagsterInstance.ephemeral()
    features_run = run(
        io_manager, [daily_features], instance=instance, first="2024-02-10|BTCUSDT", last="2024-04-09|ETHUSDT"
    )
    dates_run = run(io_manager, DATE_ONLY_ASSETS, instance=instance, first="2024-02-10", last="2024-04-09")
    return io_manager, features_run, dates_run


def test_one_feature_partition_alone_equals_it_inside_a_60_day_range(tmp_path, ranged):
    in_range, _, _ = ranged
    alone = lake(tmp_path, "alone")
    for key in ("2024-02-20|ETHUSDT", "2024-03-20|BTCUSDT", "2024-04-09|ETHUSDT"):
        run(alone, [daily_features], partition_key=key)
    stored = table(alone, "gold.daily_features")
    assert stored.height == 3
    assert stored["volatility_30d"].null_count() == 0
    where = "(date, symbol) IN (('2024-02-20', 'ETHUSDT'), ('2024-03-20', 'BTCUSDT'), ('2024-04-09', 'ETHUSDT'))"
    assert_frame_equal(stored, table(in_range, "gold.daily_features", where), check_exact=True)


def test_range_run_stores_every_partition_with_bars(ranged):
    in_range, features_run, _ = ranged
    stored = table(in_range, "gold.daily_features")
    # 60 days × 2 symbols, minus ETH's day without bars (2024-03-01).
    assert stored.height == 119
    assert stored.filter((pl.col("symbol") == "ETHUSDT") & (pl.col("date") == dt.date(2024, 3, 1))).is_empty()
    # ETH's windows covering 2024-03-01 are null; BTC's zero-volume day has no vwap.
    eth = stored.filter(pl.col("symbol") == "ETHUSDT")
    assert eth.filter(pl.col("date") == dt.date(2024, 3, 30))["sma_30"].to_list() == [None]
    assert eth.filter(pl.col("date") == dt.date(2024, 3, 31))["sma_30"].null_count() == 0
    assert stored.filter((pl.col("symbol") == "BTCUSDT") & (pl.col("date") == dt.date(2024, 2, 15)))[
        "vwap"
    ].to_list() == [None]
    materializations = features_run.asset_materializations_for_node("gold__daily_features")
    # Each partition records its own rows: 1 feature row, 0 for ETH's day without bars.
    assert sum(m.metadata["rows"].value for m in materializations) == 119
    assert {m.metadata["rows"].value for m in materializations} == {0, 1}
    # Window and missing-bar figures are the partition's own too.
    by_partition = {
        (m.partition.keys_by_dimension["date"], m.partition.keys_by_dimension["symbol"]): m.metadata
        for m in materializations
    }
    for row in stored.iter_rows(named=True):
        figures = by_partition[(str(row["date"]), row["symbol"])]
        assert figures["missing_bars"].value == row["missing_bars"]
        assert figures["rows_with_full_30d_window"].value == int(row["volatility_30d"] is not None)
    assert by_partition[("2024-03-01", "ETHUSDT")]["partitions_without_bars"].value == 1
    metadata = materializations[0].metadata
    # 120 partitions: Dagster copies metadata onto every partition event, so charts are left out.
    assert "price_chart" not in metadata and "previews" not in metadata and "preview" not in metadata


def test_single_partition_run_shows_chart_lineage_and_preview(tmp_path, ranged):
    alone = lake(tmp_path, "alone")
    result = run(alone, [daily_features], partition_key="2024-03-20|BTCUSDT")
    metadata = result.asset_materializations_for_node("gold__daily_features")[0].metadata
    assert png_of(metadata["price_chart"].value).startswith(b"\x89PNG\r\n\x1a\n")
    assert isinstance(metadata["dagster/column_lineage"].value, TableColumnLineage)
    assert "| date | symbol | close |" in metadata["preview"].value


def test_correlations_of_one_date_alone_equal_them_inside_the_range(tmp_path, ranged):
    in_range, _, dates_run = ranged
    alone = lake(tmp_path, "alone_dates")
    run(alone, [daily_features], first="2024-03-01|BTCUSDT", last="2024-04-09|ETHUSDT")
    run(alone, [daily_returns], first="2024-03-01", last="2024-04-09")
    single = {
        selection[0]: run(alone, selection, partition_key="2024-04-09")
        for selection in ([correlations], [category_daily], [market_daily])
    }
    day = "date = DATE '2024-04-09'"
    for name in ("gold.correlations", "gold.category_daily", "gold.market_daily"):
        stored = table(alone, name)
        assert stored.height >= 1, name
        assert_frame_equal(stored, table(in_range, name, day), check_exact=True)
    # ETH misses 2024-03-01, so its log returns of 03-01 and 03-02 are null: the pair's 30-day
    # window must start on 03-03 or later, i.e. end on 04-01 .. 04-09 (and before 03-01 the
    # range's returns only start on 02-10: no window ends before 03-10).
    pairs = table(in_range, "gold.correlations")
    assert pairs["date"].to_list() == [dt.date(2024, 4, 1) + dt.timedelta(days=k) for k in range(9)]
    assert (pairs["symbol_a"].unique().to_list(), pairs["symbol_b"].unique().to_list()) == (["BTCUSDT"], ["ETHUSDT"])
    # The heatmap and the pair count are drawn for a one-day run; a range run logs its figures.
    metadata = single[correlations].asset_materializations_for_node("gold__correlations")[0].metadata
    assert png_of(metadata["heatmap"].value).startswith(b"\x89PNG")
    assert metadata["pairs_on_last_day"].value == 1
    in_range = dates_run.asset_materializations_for_node("gold__correlations")[0].metadata
    assert not {"heatmap", "pairs_on_last_day", "preview"} & set(in_range)


def test_date_only_gold_tables_cover_the_range(ranged):
    in_range, _, _ = ranged
    returns = table(in_range, "gold.daily_returns")
    assert returns.height == 119 and returns.columns == [
        "date",
        "symbol",
        "close",
        "quote_volume",
        "return_1d",
        "log_return_1d",
    ]
    market = table(in_range, "gold.market_daily")
    assert market.height == 60
    march_first = market.filter(pl.col("date") == dt.date(2024, 3, 1)).row(0, named=True)
    assert march_first["symbols"] == 1  # ETH has no bars that day
    category = table(in_range, "gold.category_daily")
    assert category["category"].unique().to_list() == ["Layer 1"]
    assert category.filter(pl.col("date") == dt.date(2024, 4, 9))["members"].to_list() == [2]
    dates = table(in_range, "gold.dim_date")
    assert dates["date"].to_list() == [dt.date(2024, 2, 10) + dt.timedelta(days=k) for k in range(60)]
    # Facts join the dimensions on their keys.
    with duckdb.connect(in_range.database, read_only=True) as con:
        orphans = con.sql(
            "SELECT count(*) FROM gold.daily_features f LEFT JOIN gold.dim_date d USING (date) WHERE d.date IS NULL"
        ).fetchall()[0][0]
    assert orphans == 0


def test_dim_symbol_and_rerun_idempotence(tmp_path):
    io_manager = lake(tmp_path, "dims")
    run(io_manager, [dim_symbol])
    run(io_manager, [dim_symbol])
    run(io_manager, [daily_features], partition_key="2024-03-15|BTCUSDT")
    run(io_manager, [daily_features], partition_key="2024-03-15|BTCUSDT")
    symbols = table(io_manager, "gold.dim_symbol")
    assert symbols["symbol"].is_unique().all() and "BTCUSDT" in symbols["symbol"].to_list()
    assert table(io_manager, "gold.daily_features").height == 1
    with duckdb.connect(io_manager.database, read_only=True) as con:
        joined = con.sql(
            "SELECT s.category FROM gold.daily_features f JOIN gold.dim_symbol s USING (symbol)"
        ).fetchall()
    assert joined == [("Layer 1",)]


# Figures about the table or the write, not about a partition's data: the table's total row count
# (what the UI shows as "Row count"), the rows the write replaced and the lake version it made.
TABLE_LEVEL_KEYS = {"dagster/row_count", "rows_replaced", "lake_version"}


def _scalar_figures(metadata) -> dict:
    return {
        key: value.value
        for key, value in metadata.items()
        if key not in TABLE_LEVEL_KEYS and isinstance(value.value, (int, float, str))
    }


def test_every_figure_on_a_range_runs_partition_event_is_that_partitions_own(tmp_path, ranged):
    """The house rule "metadata is per partition": a figure a 60-day range run records on a partition
    equals the one that partition records when materialized alone (issue 17 review: a run-wide
    ``silver_bars_read`` and the range's ``pairs_on_last_day`` were copied onto every partition)."""
    _, features_run, dates_run = ranged
    alone = lake(tmp_path, "alone_events")
    run(alone, [daily_features], first="2024-03-01|BTCUSDT", last="2024-04-09|ETHUSDT")
    run(alone, [daily_returns], first="2024-03-01", last="2024-04-09")
    cases = [
        (daily_features, "gold__daily_features", MultiPartitionKey({"date": day, "symbol": symbol}))
        for day, symbol in (("2024-03-01", "ETHUSDT"), ("2024-03-20", "BTCUSDT"))
    ] + [
        (asset, f"gold__{asset.key.path[-1]}", "2024-03-20")
        for asset in (daily_returns, correlations, category_daily, market_daily, dim_date)
    ]
    for asset, node, key in cases:
        single = run(alone, [asset], partition_key=str(key)).asset_materializations_for_node(node)[0]
        source = features_run if asset is daily_features else dates_run
        in_range = next(m for m in source.asset_materializations_for_node(node) if m.partition == str(key))
        range_figures = _scalar_figures(in_range.metadata)
        assert range_figures, (node, key)
        assert range_figures == {k: v for k, v in _scalar_figures(single.metadata).items() if k in range_figures}, (
            node,
            key,
        )
