"""The CryptoLake code location: every asset, check, job, schedule, sensor and resource."""

from dagster import (
    Definitions,
    in_process_executor,
    load_asset_checks_from_package_module,
    load_assets_from_package_module,
)

from cryptolake_assets import bronze, checks, gold, silver
from cryptolake_assets.dashboard import link_assets
from cryptolake_assets.freshness import apply_freshness
from cryptolake_assets.schedules import JOBS, SCHEDULES
from cryptolake_assets.sensors import SENSORS
from resources.definitions import build_resources

ASSETS = link_assets(
    apply_freshness(
        [
            *load_assets_from_package_module(bronze),
            *load_assets_from_package_module(silver),
            *load_assets_from_package_module(gold),
        ]
    )
)
ASSET_CHECKS = load_asset_checks_from_package_module(checks)

defs = Definitions(
    assets=ASSETS,
    asset_checks=ASSET_CHECKS,
    jobs=JOBS,
    schedules=SCHEDULES,
    sensors=SENSORS,
    resources=build_resources(),
    # Every step holds the single "duckdb" pool slot, so steps cannot run in parallel anyway; one
    # process per run saves a Python start-up per step. Swap for k8s/celery executors at scale.
    executor=in_process_executor,
)
