"""Sensors of the code location; ``SENSORS`` is what definitions.py registers."""

from cryptolake_assets.sensors.alerts import ALERT_SENSOR_NAME, alert_sensor
from cryptolake_assets.sensors.closed_days import CLOSED_DAY_SENSOR_NAME, closed_day_sensor
from cryptolake_assets.sensors.dead_runs import DEAD_RUN_SENSOR_NAME, dead_run_sensor
from cryptolake_assets.sensors.housekeeping import RUN_LOG_RETENTION_SENSOR_NAME, run_log_retention_sensor
from cryptolake_assets.sensors.landing import STREAM_LANDING_SENSOR_NAME, stream_landing_sensor

SENSORS = [alert_sensor, dead_run_sensor, closed_day_sensor, stream_landing_sensor, run_log_retention_sensor]

__all__ = [
    "ALERT_SENSOR_NAME",
    "CLOSED_DAY_SENSOR_NAME",
    "closed_day_sensor",
    "DEAD_RUN_SENSOR_NAME",
    "RUN_LOG_RETENTION_SENSOR_NAME",
    "SENSORS",
    "STREAM_LANDING_SENSOR_NAME",
    "alert_sensor",
    "dead_run_sensor",
    "run_log_retention_sensor",
    "stream_landing_sensor",
]
