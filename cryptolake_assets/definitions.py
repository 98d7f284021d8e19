"""The CryptoLake code location: every asset, check, job, schedule, sensor and resource."""

from dagster import (
    AssetsDefinition,
    AssetSelection,
    Definitions,
    define_asset_job,
    load_asset_checks_from_package_module,
    load_assets_from_package_module,
)

from cryptolake_assets import bronze, checks, gold, silver
from partitions import daily_partitions, daily_symbol_partitions
from resources.definitions import build_resources

ASSETS = [
    *load_assets_from_package_module(bronze),
    *load_assets_from_package_module(silver),
    *load_assets_from_package_module(gold),
]
ASSET_CHECKS = load_asset_checks_from_package_module(checks)


def _keys_partitioned_by(partitions_def) -> list:
    return [
        key
        for asset in ASSETS
        if isinstance(asset, AssetsDefinition) and asset.partitions_def == partitions_def
        for key in asset.keys
    ]


def _unpartitioned_keys() -> list:
    return [key for asset in ASSETS if isinstance(asset, AssetsDefinition) and asset.partitions_def is None for key in asset.keys]


# One job per partitioning: a run may only span assets that share a partitions definition.
daily_symbol_job = define_asset_job(
    "daily_symbol_assets",
    selection=AssetSelection.assets(*_keys_partitioned_by(daily_symbol_partitions)),
    partitions_def=daily_symbol_partitions,
    description="Bronze → silver → gold assets partitioned by UTC day × symbol.",
)
daily_job = define_asset_job(
    "daily_assets",
    selection=AssetSelection.assets(*_keys_partitioned_by(daily_partitions)),
    partitions_def=daily_partitions,
    description="Cross-symbol and market-wide assets partitioned by UTC day.",
)
reference_job = define_asset_job(
    "reference_assets",
    selection=AssetSelection.assets(*_unpartitioned_keys()),
    description="Unpartitioned reference tables (dimensions).",
)
JOBS = [job for job, keys in ((daily_symbol_job, _keys_partitioned_by(daily_symbol_partitions)), (daily_job, _keys_partitioned_by(daily_partitions)), (reference_job, _unpartitioned_keys())) if keys]

defs = Definitions(
    assets=ASSETS,
    asset_checks=ASSET_CHECKS,
    jobs=JOBS,
    resources=build_resources(),
)
