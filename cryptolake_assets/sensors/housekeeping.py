"""``run_log_retention_sensor``: under the daemon, purge old runs' step and log events, in batches.

Each tick purges at most ``RUN_LOG_PURGE_RUNS_PER_TICK`` finished runs older than
``run_log_retention_days`` (dagster.yaml, ``event_log_storage.config``; default 30): their
non-asset events and compute logs go, their asset and check events and run records stay
(resources/run_log_retention.py). The tick's message says what it deleted. Ticks come hourly so
that a backlog (the first tick on an instance with a year of runs) drains in bounded steps; once
caught up, each tick finds the runs that crossed the retention line in the hour before. The
cursor is the creation time of the last run visited; a run older than the cursor that finishes
later (one stuck for more than the retention) is left to ``cryptolake prune``.
"""

from dagster import SensorEvaluationContext, SkipReason, sensor

from cryptolake_assets.automation_status import default_sensor_status
from resources.run_log_retention import purge_run_logs

RUN_LOG_RETENTION_SENSOR_NAME = "run_log_retention_sensor"
RUN_LOG_RETENTION_INTERVAL_SECONDS = 3600
# About 0.13 s a run here (benchmarks/run_log_retention_bench.py): a tick stays well inside
# Dagster's 60 s sensor evaluation timeout, and 2,400 runs a day drain a backlog.
RUN_LOG_PURGE_RUNS_PER_TICK = 100


@sensor(
    name=RUN_LOG_RETENTION_SENSOR_NAME,
    minimum_interval_seconds=RUN_LOG_RETENTION_INTERVAL_SECONDS,
    default_status=default_sensor_status(),
    description=(
        "Deletes the step/log events and compute logs of finished runs older than run_log_retention_days "
        "(dagster.yaml); asset and check events stay (see docs/deployment.md, Run-log retention)."
    ),
)
def run_log_retention_sensor(context: SensorEvaluationContext) -> SkipReason:
    """Purge one batch of old runs' logs; the skip message is the tick's report."""
    created_after = float(context.cursor) if context.cursor else None
    purge = purge_run_logs(context.instance, max_runs=RUN_LOG_PURGE_RUNS_PER_TICK, created_after=created_after)
    if purge.last_created is not None:
        # step back a second: run storage compares creation times strictly and runs can share one;
        # runs seen twice are skipped by their purged tag
        context.update_cursor(repr(purge.last_created - 1.0))
    message = purge.summary()
    context.log.info(message)
    return SkipReason(message)
