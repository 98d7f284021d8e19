"""Sensors of the code location; ``SENSORS`` is what definitions.py registers."""

from cryptolake_assets.sensors.alerts import ALERT_SENSOR_NAME, alert_sensor

SENSORS = [alert_sensor]

__all__ = ["ALERT_SENSOR_NAME", "SENSORS", "alert_sensor"]
