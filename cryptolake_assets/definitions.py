"""The CryptoLake code location: every asset, check, job, schedule, sensor and resource."""

from dagster import Definitions, JobDefinition, load_assets_from_package_module

from cryptolake_assets import bronze, gold, silver
from cryptolake_assets.dashboard import link_assets
from cryptolake_assets.freshness import apply_freshness
from cryptolake_assets.quality.catalog import MEDALLION_CHECKS
from cryptolake_assets.schedules import JOBS, SCHEDULES, stream_job
from cryptolake_assets.sensors import SENSORS
from resources.definitions import build_resources
from resources.executors import build_executor

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
    # In-process by default: every step holds a "duckdb" pool slot (dagster.yaml: 2, one per core
    # here), and runs already take both: one process per run saves a Python start-up per step.
    # CRYPTOLAKE_EXECUTOR=celery: each step is a Celery task on any worker (resources/executors.py,
    # deploy/celery/); pools still apply, claimed by the run before it hands a step to Celery.
    executor=build_executor(),
)


def job_named(name: str) -> JobDefinition:
    """The job ``name`` of ``defs``: the reconstructor Celery workers call to load a run's job
    (``dagster.build_reconstructable_job("cryptolake_assets.definitions", "job_named", (name,))``)."""
    return defs.resolve_job_def(name)
