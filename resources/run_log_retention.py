"""Run-log retention: drop old finished runs' step and log events and their compute logs.

Dagster purges schedule and sensor ticks itself (``retention:`` in dagster.yaml) but keeps every
event of every run for ever: about 40 non-asset events per run (step start/success, inputs and
outputs, engine events, log lines; ~1 kB each) and the run's stdout/stderr files under
``$DAGSTER_HOME/storage/<run_id>/compute_logs/``. With the hourly schedules that is about 1 GB a
year of instance (issue 17). ``purge_run_logs`` removes, for finished runs created more than
``run_log_retention_days`` ago (dagster.yaml, ``event_log_storage.config``; default 30):

* every event whose type is not in ``KEPT_EVENT_TYPES`` (step events, engine events, resource
  events, log lines, captured-log pointers, ...);
* the run's compute-log files (through the instance's compute log manager).

It keeps what the asset pages, partition status, data versions and checks read: every asset
event (materialization, observation, planned, failed to materialize, freshness change), every
check event (planned, evaluation), the run's status events, and the run record with its status
and tags (it adds one tag, ``RUN_LOGS_PURGED_TAG``, the date of the purge). Dagster's index shard
(SQLite) or table (Postgres) rows of asset and check events are never touched, nor are the
``asset_keys``, ``asset_event_tags`` or ``asset_check_executions`` rows that point at them.

Why SQL on Dagster's event log table rather than a public API: Dagster's only public deletion is
``instance.delete_run`` / ``EventLogStorage.delete_events(run_id)``, which drops the run and every
one of its events, materializations included (its partitions would turn "missing"). The delete
here is written against ``SqlEventLogStorage.run_connection(run_id)`` and the
``SqlEventLogStorageTable`` schema, so it runs on Dagster's run-sharded SQLite storage (one file
per run, plus an index shard holding only asset, check and run-status events, all kept) and on a
single-table storage (Postgres, ConsolidatedSqlite) alike. tests/test_run_log_retention.py holds
the contract test for the private imports.

SQLite does not shrink a file on DELETE: on the run-sharded storage each purged run's shard is
vacuumed (the whole file belongs to one finished run, so that is quick and blocks nobody) and the
bytes freed are measured on disk. On other storages the bytes freed are not measured (``None``);
Postgres reclaims the space with its autovacuum.
"""

import datetime as dt
import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter
from sqlalchemy import and_, or_, select

# Private, needed for the SQL (see the module docstring): the event table's schema and the storage
# classes whose connections and shard files the purge uses. Contract test:
# tests/test_run_log_retention.py::test_dagster_internals_the_purge_relies_on.
from resources.dagster_internals import (
    LocalComputeLogManager,
    SqlEventLogStorage,
    SqlEventLogStorageTable,
    SqliteEventLogStorage,
)

DEFAULT_RUN_LOG_RETENTION_DAYS = 30
# Rows deleted per transaction, and runs purged per call (the sensor's tick; the CLI loops).
DELETE_BATCH_ROWS = 5000
DEFAULT_MAX_RUNS_PER_CALL = 100
# Page size of a purged run shard after its VACUUM (SQLite's default is 4096; see _vacuum).
PURGED_SHARD_PAGE_SIZE = 1024
# Run records read per query while looking for purgeable runs.
RUN_PAGE_SIZE = 500
# Set on a run whose logs were purged (value: the UTC date); purged runs are not visited again.
RUN_LOGS_PURGED_TAG = "cryptolake/run_logs_purged"

# Written out with the public enum (``dagster._core.events`` has the same sets as ASSET_EVENTS,
# ASSET_CHECK_EVENTS and EVENT_TYPE_TO_PIPELINE_RUN_STATUS; the contract test checks that this set
# still covers all three).
KEPT_EVENT_TYPES: frozenset[DagsterEventType] = frozenset(
    {
        # asset events: asset pages, partition status, data versions, freshness
        DagsterEventType.ASSET_MATERIALIZATION,
        DagsterEventType.ASSET_OBSERVATION,
        DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
        DagsterEventType.ASSET_FAILED_TO_MATERIALIZE,
        DagsterEventType.FRESHNESS_STATE_CHANGE,
        # asset checks
        DagsterEventType.ASSET_CHECK_EVALUATION,
        DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED,
        # the run's status changes (run status sensors, the run's start and end times)
        DagsterEventType.RUN_ENQUEUED,
        DagsterEventType.RUN_STARTING,
        DagsterEventType.RUN_START,
        DagsterEventType.RUN_SUCCESS,
        DagsterEventType.RUN_FAILURE,
        DagsterEventType.RUN_CANCELING,
        DagsterEventType.RUN_CANCELED,
        DagsterEventType.RUN_SUSPENDED,
        DagsterEventType.RUN_RESUMED,
    }
)
FINISHED_STATUSES = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]


@dataclass
class RunLogPurge:
    """What one purge call deleted."""

    cutoff: dt.datetime
    runs: list[str] = field(default_factory=list)
    events_deleted: int = 0
    event_log_bytes_freed: int | None = 0  # None: not measurable on this storage
    compute_log_files_deleted: int = 0
    compute_log_bytes_freed: int | None = 0
    more: bool = False  # stopped at max_runs: more runs are waiting
    last_created: float | None = None  # creation time of the last run visited (a cursor)

    @property
    def runs_purged(self) -> int:
        return len(self.runs)

    def summary(self) -> str:
        def size(value: int | None) -> str:
            return "n/a" if value is None else f"{value:,} bytes"

        text = (
            f"purged {self.runs_purged} run(s) created before {self.cutoff:%Y-%m-%d %H:%M} UTC: "
            f"{self.events_deleted:,} events ({size(self.event_log_bytes_freed)} of event log freed), "
            f"{self.compute_log_files_deleted} compute-log files ({size(self.compute_log_bytes_freed)})"
        )
        return text + ("; more runs wait for the next call" if self.more else "")

    def metadata(self) -> dict[str, int | str]:
        """Figures for a tick or run's metadata (sizes -1 when not measurable)."""
        return {
            "runs_purged": self.runs_purged,
            "events_deleted": self.events_deleted,
            "event_log_bytes_freed": -1 if self.event_log_bytes_freed is None else self.event_log_bytes_freed,
            "compute_log_files_deleted": self.compute_log_files_deleted,
            "compute_log_bytes_freed": -1 if self.compute_log_bytes_freed is None else self.compute_log_bytes_freed,
            "cutoff": self.cutoff.isoformat(),
        }


def run_log_retention_days(instance: DagsterInstance) -> int:
    """``run_log_retention_days`` of the instance's event log storage (dagster.yaml), else 30."""
    days = getattr(instance.event_log_storage, "run_log_retention_days", None)
    return DEFAULT_RUN_LOG_RETENTION_DAYS if days is None else int(days)


def purge_run_logs(
    instance: DagsterInstance,
    older_than_days: int | None = None,
    *,
    now: dt.datetime | None = None,
    max_runs: int = DEFAULT_MAX_RUNS_PER_CALL,
    created_after: float | None = None,
) -> RunLogPurge:
    """Purge the non-asset events and compute logs of finished runs older than the retention.

    ``older_than_days`` defaults to the instance's ``run_log_retention_days``; a value < 1
    disables the purge. At most ``max_runs`` runs are purged per call (``more`` says whether
    others wait); ``created_after`` (a timestamp, e.g. the previous call's ``last_created``) skips
    the runs an earlier call already went through. Runs already purged are skipped by their tag,
    so calling it again deletes nothing more.
    """
    days = run_log_retention_days(instance) if older_than_days is None else older_than_days
    now = now or dt.datetime.now(dt.UTC)
    cutoff = now - dt.timedelta(days=days)
    report = RunLogPurge(cutoff=cutoff)
    if days < 1:
        return report
    storage = instance.event_log_storage
    if not isinstance(storage, SqlEventLogStorage):
        raise TypeError(f"run-log retention needs a SQL event log storage, not {type(storage).__name__}")
    for record in _old_finished_runs(instance, cutoff, created_after):
        if len(report.runs) >= max_runs:
            report.more = True
            break
        report.last_created = record.create_timestamp.timestamp()
        if RUN_LOGS_PURGED_TAG in record.dagster_run.tags:
            continue
        run_id = record.dagster_run.run_id
        deleted, freed = _purge_events(storage, run_id)
        files, file_bytes = _purge_compute_logs(instance, run_id)
        instance.add_run_tags(run_id, {RUN_LOGS_PURGED_TAG: now.date().isoformat()})
        report.runs.append(run_id)
        report.events_deleted += deleted
        report.event_log_bytes_freed = _add(report.event_log_bytes_freed, freed)
        report.compute_log_files_deleted += files
        report.compute_log_bytes_freed = _add(report.compute_log_bytes_freed, file_bytes)
    return report


def purge_all(
    instance: DagsterInstance,
    older_than_days: int | None = None,
    *,
    now: dt.datetime | None = None,
    echo: Callable[[str], None] = print,
) -> RunLogPurge:
    """``purge_run_logs`` in batches until no old run is left (the CLI); the totals."""
    total: RunLogPurge | None = None
    cursor = None
    while True:
        batch = purge_run_logs(instance, older_than_days, now=now, created_after=cursor)
        if batch.runs:
            echo(batch.summary())
        if total is None:
            total = batch
        else:
            total.runs += batch.runs
            total.events_deleted += batch.events_deleted
            total.event_log_bytes_freed = _add(total.event_log_bytes_freed, batch.event_log_bytes_freed)
            total.compute_log_files_deleted += batch.compute_log_files_deleted
            total.compute_log_bytes_freed = _add(total.compute_log_bytes_freed, batch.compute_log_bytes_freed)
        if not batch.more:
            total.more = False
            return total
        # the batch stopped before the run at which it would have continued: resume just before it
        cursor = _resume_point(batch.last_created)


def _resume_point(last_created: float | None) -> float | None:
    # Run storage compares creation times strictly (``>``) and runs may share a timestamp: step
    # back a second and let the purged tag skip the few runs seen twice.
    return None if last_created is None else last_created - 1.0


def _add(total: int | None, value: int | None) -> int | None:
    return None if total is None or value is None else total + value


def _old_finished_runs(instance: DagsterInstance, cutoff: dt.datetime, created_after: float | None) -> Iterator:
    """Finished runs created before ``cutoff`` (and after ``created_after``), oldest first."""
    after = dt.datetime.fromtimestamp(created_after, dt.UTC) if created_after is not None else None
    cursor = None
    while True:
        page = instance.get_run_records(
            filters=RunsFilter(statuses=FINISHED_STATUSES, created_before=cutoff, created_after=after),
            limit=RUN_PAGE_SIZE,
            order_by="id",
            ascending=True,
            cursor=cursor,
        )
        yield from page
        if len(page) < RUN_PAGE_SIZE:
            return
        cursor = page[-1].dagster_run.run_id


def _purge_condition(run_id: str):
    table = SqlEventLogStorageTable
    kept = sorted(event_type.value for event_type in KEPT_EVENT_TYPES)
    return and_(
        table.c.run_id == run_id,
        # log lines (context.log, stdout handlers) have no Dagster event type
        or_(table.c.dagster_event_type.is_(None), table.c.dagster_event_type.not_in(kept)),
    )


def _purge_events(storage: SqlEventLogStorage, run_id: str) -> tuple[int, int | None]:
    """Delete the run's non-kept events in batches; (rows deleted, bytes freed or None)."""
    table = SqlEventLogStorageTable
    shard_files: list[str] = []
    sharded = isinstance(storage, SqliteEventLogStorage) and storage.is_run_sharded
    if isinstance(storage, SqliteEventLogStorage) and sharded:
        shard = storage.path_for_shard(run_id)
        if not os.path.exists(shard):  # opening a run connection would create an empty shard
            return 0, 0
        shard_files = [shard, shard + "-wal", shard + "-shm"]
    before = _sizes(shard_files)
    deleted = 0
    condition = _purge_condition(run_id)
    while True:
        with storage.run_connection(run_id) as conn:
            ids = [row[0] for row in conn.execute(select(table.c.id).where(condition).limit(DELETE_BATCH_ROWS))]
            if ids:
                conn.execute(table.delete().where(table.c.id.in_(ids)))
        deleted += len(ids)
        if len(ids) < DELETE_BATCH_ROWS:
            break
    if not sharded:
        return deleted, None
    if deleted:
        _vacuum(shard_files[0])
    return deleted, before - _sizes(shard_files)


def _vacuum(path: str) -> None:
    """Rewrite a SQLite run shard without its free pages, in pages of ``PURGED_SHARD_PAGE_SIZE``.

    A run shard holds every table and index of Dagster's event log schema (25 objects), nearly all
    empty, and each takes at least one page: at SQLite's default 4 kB pages a purged shard keeps
    about 130 kB of them, at 1 kB about 50 kB (measured; see docs/deployment.md). The page size can
    only change outside WAL mode, so the shard goes to rollback-journal mode for the VACUUM and
    back to WAL; if another connection holds it (the mode stays WAL) it is vacuumed as it is.
    Outside SQLAlchemy: VACUUM cannot run inside the transaction ``run_connection`` opens.
    """
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
        if str(mode).lower() == "delete":
            conn.execute(f"PRAGMA page_size={PURGED_SHARD_PAGE_SIZE}")
        conn.execute("VACUUM")
    except sqlite3.OperationalError:
        # busy for 30 s (a reader held it): the rows are gone all the same; the bytes freed,
        # measured on disk, then say 0, and the run is not visited again
        pass
    finally:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError:
            pass
        conn.close()


def _sizes(paths: list[str]) -> int:
    return sum(os.path.getsize(path) for path in paths if os.path.exists(path))


def _purge_compute_logs(instance: DagsterInstance, run_id: str) -> tuple[int, int | None]:
    """Delete the run's captured stdout/stderr; (files deleted, bytes freed or None)."""
    manager = instance.compute_log_manager
    prefix = list(manager.build_log_key_for_run(run_id, "step")[:-1])  # [run_id, "compute_logs"]
    if not isinstance(manager, LocalComputeLogManager):
        manager.delete_logs(prefix=prefix)
        return 0, None
    directory = os.path.dirname(manager.get_captured_local_path([*prefix, "x"], "out"))
    if not os.path.isdir(directory):
        return 0, 0
    files = [os.path.join(root, name) for root, _, names in os.walk(directory) for name in names]
    size = _sizes(files)
    manager.delete_logs(prefix=prefix)
    run_dir = os.path.dirname(directory)
    if os.path.isdir(run_dir) and not os.listdir(run_dir):
        os.rmdir(run_dir)
    return len(files), size
