"""Sensors of the code location; ``SENSORS`` is what definitions.py registers."""

from cryptolake_assets.sensors.alerts import ALERT_SENSOR_NAME, alert_sensor
from cryptolake_assets.sensors.dead_runs import DEAD_RUN_SENSOR_NAME, dead_run_sensor

SENSORS = [alert_sensor, dead_run_sensor]

__all__ = ["ALERT_SENSOR_NAME", "DEAD_RUN_SENSOR_NAME", "SENSORS", "alert_sensor", "dead_run_sensor"]
