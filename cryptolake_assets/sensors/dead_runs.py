"""``dead_run_sensor``: under the daemon, fail runs whose process is gone and free their pool slots.

Dagster's run monitoring cannot tell that a run worker of the DefaultRunLauncher died (the launcher
has no worker health check), nor anything about runs the CLI executes in-process; this sensor does
what the CLI does before each run (resources/run_health.py), every few seconds.
"""

from dagster import SensorEvaluationContext, SkipReason, sensor

from cryptolake_assets.automation_status import default_sensor_status
from resources.run_health import recover_dead_runs

DEAD_RUN_SENSOR_NAME = "dead_run_sensor"
DEAD_RUN_SENSOR_INTERVAL_SECONDS = 5


@sensor(
    name=DEAD_RUN_SENSOR_NAME,
    minimum_interval_seconds=DEAD_RUN_SENSOR_INTERVAL_SECONDS,
    default_status=default_sensor_status(),
    description="Fails runs whose process is gone and frees their pool slots (see docs/troubleshooting.md, Killed runs).",
)
def dead_run_sensor(context: SensorEvaluationContext) -> SkipReason:
    lines: list[str] = []
    recovery = recover_dead_runs(context.instance, echo=lines.append)
    for line in lines:
        context.log.warning(line)
    if recovery.failed_runs or recovery.freed_runs:
        return SkipReason(" | ".join(lines))
    return SkipReason("no dead run")
