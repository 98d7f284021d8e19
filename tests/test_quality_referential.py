"""Referential checks read the dimension tables they name (gold.dim_symbol, gold.dim_date) through
the I/O manager: a fact whose key the stored dimension lacks fails (ERROR, blocking), even when the
universe file and the partition calendar know the key; a dimension not materialized yet gives a WARN
"cannot verify" (the run is not blocked by the order in which jobs run)."""

import polars as pl
from dagster import AssetKey, DagsterInstance, asset, materialize
from test_quality_pipeline import DAY, GOOD, _evaluations, _resources, materialize_dimensions, stub_silver

from cryptolake_assets.gold.daily_features import daily_features
from cryptolake_assets.gold.dim_date import date_dimension
from cryptolake_assets.gold.dim_symbol import symbol_dimension
from cryptolake_assets.quality.catalog import GOLD_CORRELATIONS, GOLD_DAILY_FEATURES
from cryptolake_assets.quality.factory import RuleContext, build_table_checks, evaluate_table
from partitions import daily_partitions, load_universe

CHECKS = build_table_checks(GOLD_DAILY_FEATURES)


@asset(key=["gold", "dim_symbol"])
def dim_symbol_without_eth() -> pl.DataFrame:
    """A stored dim_symbol that lost ETHUSDT (the universe file still lists it)."""
    return symbol_dimension(load_universe()).filter(pl.col("symbol") != "ETHUSDT")


@asset(key=["gold", "dim_date"], partitions_def=daily_partitions, metadata={"partition_expr": "date"})
def dim_date_without_rows() -> pl.DataFrame:
    """A materialized dim_date partition whose row is gone."""
    return date_dimension([DAY]).clear()


def _features_checks(path, instance):
    result = materialize(
        [stub_silver, daily_features, CHECKS],
        partition_key=GOOD,
        resources=_resources(path),
        instance=instance,
        raise_on_error=False,
    )
    return result, _evaluations(result)


def test_a_symbol_missing_from_the_stored_dim_symbol_fails_and_blocks(tmp_path):
    path, instance = tmp_path / "lake.duckdb", DagsterInstance.ephemeral()
    materialize_dimensions(path, instance, [DAY])
    assert materialize([dim_symbol_without_eth], resources=_resources(path), instance=instance).success
    result, checks = _features_checks(path, instance)
    failed = checks[("gold/daily_features", "symbol_in_dim_symbol")]
    assert (failed.passed, failed.severity.value, failed.partition) == (False, "ERROR", GOOD)
    assert failed.metadata["failing_rows"].value == 1
    assert checks[("gold/daily_features", "date_in_dim_date")].passed
    assert not result.success  # blocking


def test_a_date_missing_from_the_stored_dim_date_fails(tmp_path):
    path, instance = tmp_path / "lake.duckdb", DagsterInstance.ephemeral()
    materialize_dimensions(path, instance, [DAY])
    assert materialize(
        [dim_date_without_rows], partition_key=str(DAY), resources=_resources(path), instance=instance
    ).success
    _, checks = _features_checks(path, instance)
    failed = checks[("gold/daily_features", "date_in_dim_date")]
    assert (failed.passed, failed.severity.value, failed.metadata["failing_rows"].value) == (False, "ERROR", 1)
    assert checks[("gold/daily_features", "symbol_in_dim_symbol")].passed


def test_dimensions_not_materialized_yet_warn_that_the_references_cannot_be_verified(tmp_path):
    result, checks = _features_checks(tmp_path / "lake.duckdb", DagsterInstance.ephemeral())
    for name in ("symbol_in_dim_symbol", "date_in_dim_date"):
        e = checks[("gold/daily_features", name)]
        assert (e.passed, e.severity.value) == (False, "WARN")
        assert "not materialized yet" in e.metadata["unverifiable"].value
    assert result.success  # a WARN does not block
    assert AssetKey(["gold", "daily_features"]) in {m.asset_key for m in result.get_asset_materialization_events()}


def test_correlation_pairs_are_checked_against_the_given_dim_symbol():
    frame = pl.DataFrame(
        {
            "date": [DAY, DAY],
            "symbol_a": ["BTCUSDT", "ETHUSDT"],
            "symbol_b": ["ETHUSDT", "SOLUSDT"],
            "corr_30d": [0.5, 0.4],
        }
    )
    dims = symbol_dimension(load_universe()).filter(pl.col("symbol") != "SOLUSDT")
    [finding] = [
        f
        for f in evaluate_table(GOLD_CORRELATIONS, frame, RuleContext(dimensions={"gold/dim_symbol": dims}))
        if f.rule.name == "symbols_in_dim_symbol"
    ]
    assert (finding.count, finding.rows["symbol_b"].to_list()) == (1, ["SOLUSDT"])
    [unknown] = [
        f for f in evaluate_table(GOLD_CORRELATIONS, frame, RuleContext()) if f.rule.name == "symbols_in_dim_symbol"
    ]
    assert (unknown.passed, unknown.severity.value) == (False, "WARN")
