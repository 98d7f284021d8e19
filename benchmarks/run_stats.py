"""Per-run timings from a Dagster instance: run duration, step time, and the overhead between them."""

import os
import sqlite3
from pathlib import Path


def event_counts(home: Path) -> dict[str, int]:
    """Events per type in the instance's SQLite event index (what Dagster wrote for the runs)."""
    index = home / "history" / "runs" / "index.db"
    if not index.exists():
        return {}
    with sqlite3.connect(index) as connection:
        return dict(
            connection.execute(
                "SELECT dagster_event_type, count(*) FROM event_logs GROUP BY 1 ORDER BY 2 DESC"
            ).fetchall()
        )


def _union_seconds(intervals: list[tuple[float, float]]) -> float:
    total, current_start, current_end = 0.0, None, None
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        total += current_end - current_start
    return total


def run_statistics(home: Path, tags: dict[str, str] | None = None) -> dict:
    """Runs (optionally filtered by tags) of the instance in ``home``: counts and mean timings.

    ``overhead`` of a run = its duration (start → end) minus the time some step was executing
    (union of step intervals): process start, code loading, resource setup, event writing.
    ``launch_latency`` = run record created → run started (queueing and process spawn).
    """

    # The project's event log storage (dagster.yaml) locates its files through $DAGSTER_HOME.
    previous_home = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(Path(home).absolute())  # DagsterInstance.get() wants an absolute path
    try:
        return _run_statistics(home, tags)
    finally:
        if previous_home is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous_home


def _run_statistics(home: Path, tags: dict[str, str] | None) -> dict:
    from dagster import DagsterInstance, RunsFilter

    with DagsterInstance.get() as instance:  # the instance at $DAGSTER_HOME, set to ``home`` above
        records = instance.get_run_records(filters=RunsFilter(tags=tags) if tags else None)
        runs, by_step = [], {}
        for record in records:
            run_id = record.dagster_run.run_id
            stats = instance.get_run_stats(run_id)
            steps = [s for s in instance.get_run_step_stats(run_id) if s.start_time and s.end_time]
            for step in steps:
                by_step[step.step_key] = by_step.get(step.step_key, 0.0) + (step.end_time - step.start_time)
            if not (stats.start_time and stats.end_time):
                continue
            duration = stats.end_time - stats.start_time
            step_time = _union_seconds([(s.start_time, s.end_time) for s in steps])
            runs.append(
                {
                    "status": record.dagster_run.status.value,
                    "duration": duration,
                    "step_time": step_time,
                    "overhead": duration - step_time,
                    "launch_latency": stats.start_time - record.create_timestamp.timestamp(),
                }
            )
    count = len(runs)

    def mean(key: str) -> float | None:
        return round(sum(r[key] for r in runs) / count, 2) if count else None

    return {
        "runs": len(records),
        "runs_succeeded": sum(r["status"] == "SUCCESS" for r in runs),
        "mean_run_seconds": mean("duration"),
        "mean_step_seconds_per_run": mean("step_time"),
        "mean_overhead_seconds_per_run": mean("overhead"),
        "mean_launch_latency_seconds": mean("launch_latency"),
        "total_run_seconds": round(sum(r["duration"] for r in runs), 1),
        "events_by_type": event_counts(home),
        "step_seconds_by_step": {k: round(v, 1) for k, v in sorted(by_step.items(), key=lambda kv: -kv[1])},
    }
