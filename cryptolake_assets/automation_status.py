"""The status every schedule and sensor starts in on a new instance (``CRYPTOLAKE_AUTOMATION``).

``on`` (the default): running, as a production instance needs. ``off``: stopped, for an instance
that only backfills, benchmarks or inspects (a schedule tick there would add runs for today's
partitions nobody asked for). Dagster keeps a status set in the UI over this default.
"""

from dagster import DefaultScheduleStatus, DefaultSensorStatus

from resources.settings import automation_on


def default_schedule_status() -> DefaultScheduleStatus:
    return DefaultScheduleStatus.RUNNING if automation_on() else DefaultScheduleStatus.STOPPED


def default_sensor_status() -> DefaultSensorStatus:
    return DefaultSensorStatus.RUNNING if automation_on() else DefaultSensorStatus.STOPPED
