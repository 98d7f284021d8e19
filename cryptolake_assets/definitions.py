"""The CryptoLake code location: every asset, check, job, schedule, sensor and resource."""

from dagster import Definitions, in_process_executor, load_assets_from_package_module

from cryptolake_assets import bronze, gold, silver
from cryptolake_assets.dashboard import link_assets
from cryptolake_assets.freshness import apply_freshness
from cryptolake_assets.quality.catalog import MEDALLION_CHECKS
from cryptolake_assets.schedules import JOBS, SCHEDULES, stream_job
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
ASSET_CHECKS = MEDALLION_CHECKS

defs = Definitions(
    assets=ASSETS,
    asset_checks=ASSET_CHECKS,
    jobs=[*JOBS, stream_job],
    schedules=SCHEDULES,
    sensors=SENSORS,
    resources=build_resources(),
    # Every step holds a "duckdb" pool slot (dagster.yaml: 2, one per core here), and runs already
    # take both: one process per run saves a Python start-up per step.
    executor=in_process_executor,
)
