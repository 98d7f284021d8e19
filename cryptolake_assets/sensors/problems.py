"""What is wrong right now: the problems the alert sensor turns into alerts.

Two families. *States* are recomputed every tick (asset freshness FAIL, stale symbols): a problem
is open while it is in the set. *Events* are read incrementally after a storage-id cursor (blocking
check evaluations, run failures/successes): a failure opens a problem, a later success on the same
thing closes it.
"""

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import sqlalchemy as db
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    EventLogEntry,
    RunStatusChangeRecordsFilter,
)
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
from dagster._core.storage.sqlalchemy_compat import db_select
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)
from dagster._serdes import deserialize_value

from cryptolake_assets.freshness import STALENESS_DEADLINES, find_stale_symbols

EVENT_BATCH = 500


@dataclass(frozen=True)
class Problem:
    key: str  # identity of the episode, e.g. "stale:bronze/klines:BTCUSDT"
    group: str  # problems of one group share a message, e.g. "stale:bronze/klines"
    kind: str  # freshness | stale_symbols | check | run | closed_gold
    line: str  # one human line about this problem
    fields: dict[str, str] = field(default_factory=dict)


def freshness_failures(instance: DagsterInstance, asset_keys: Sequence[AssetKey]) -> list[Problem]:
    """Assets the freshness daemon currently rates FAIL."""
    records = instance.get_freshness_state_records(list(asset_keys)) if asset_keys else {}
    problems = []
    for key in sorted(records, key=lambda k: k.to_user_string()):
        record = records[key]
        if record.freshness_state != FreshnessState.FAIL:
            continue
        name = key.to_user_string()
        since = f"{record.updated_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"
        problems.append(
            Problem(
                key=f"freshness:{name}",
                group=f"freshness:{name}",
                kind="freshness",
                line=f"`{name}` fails its freshness policy since {since}",
                fields={"Asset": name, "Freshness": "FAIL", "Since": since},
            )
        )
    return problems


def stale_symbol_problems(instance: DagsterInstance, asset_keys: Iterable[AssetKey], now: dt.datetime) -> list[Problem]:
    """One problem per (layer, symbol) whose latest expected day is missing past its deadline."""
    problems = []
    for key in asset_keys:
        if key not in STALENESS_DEADLINES:
            continue
        name = key.to_user_string()
        for stale in find_stale_symbols(instance, key, now):
            problems.append(
                Problem(
                    key=f"stale:{name}:{stale.symbol}",
                    group=f"stale:{name}",
                    kind="stale_symbols",
                    line=stale.describe(),
                    fields={"Asset": name, "Expected day": str(stale.day)},
                )
            )
    return problems


# A closed day's gold may trail its silver this long (the closed-day sensor re-runs it meanwhile).
CLOSED_DAY_GOLD_GRACE = dt.timedelta(hours=2)


def closed_day_gold_problems(instance: DagsterInstance, now: dt.datetime) -> list[Problem]:
    """A problem per closed day whose cross-symbol gold is older than its silver, past the grace time."""
    from cryptolake_assets.sensors.closed_days import DATE_LEVEL_GOLD, closed_day_state, closed_days

    problems = []
    for day in closed_days(now):
        if now < dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC) + CLOSED_DAY_GOLD_GRACE:
            continue
        state = closed_day_state(instance, day)
        if state.gold_behind:
            gold = DATE_LEVEL_GOLD.to_user_string()
            what = "was never computed" if state.newest_gold is None else "is older than its silver"
            problems.append(
                Problem(
                    key=f"closed_gold:{day}",
                    group="closed_gold",
                    kind="closed_gold",
                    line=f"`{day}`: {gold} {what} ({state.with_silver}/{state.listed} symbols have silver)",
                    fields={"Asset": gold, "Day": str(day)},
                )
            )
    return problems


@dataclass(frozen=True)
class Transition:
    """An event-driven change: ``opened`` or ``closed`` problem, in storage order."""

    storage_id: int
    opened: bool
    problem: Problem


def check_transitions(
    instance: DagsterInstance,
    blocking_by_check: Mapping[AssetCheckKey, bool],
    after_storage_id: int | None,
    after_timestamp: float,
) -> tuple[list[Transition], int | None]:
    """Blocking check failures open a problem per (check, partition); a passing evaluation closes it.

    Reads the check evaluations stored after ``after_storage_id`` (an event storage id) from the
    asset-check index, which every SQL event log storage keeps globally ordered (cross-run event
    cursors do not work on the default run-sharded SQLite storage). Only rows whose evaluation is
    new are read, so a tick costs what happened since the last one, not the size of the history
    (Dagster's ``get_asset_check_partition_info`` also returns, and joins against, every partition
    with a new materialization: a 25,000-partition backfill made each tick scan the whole table).
    On the first tick only evaluations from the last ``after_timestamp`` onwards count.
    """
    if not blocking_by_check:
        return [], after_storage_id
    transitions = []
    cursor = after_storage_id
    since = None if after_storage_id is not None else dt.datetime.fromtimestamp(after_timestamp, dt.UTC)
    for storage_id, event in _check_evaluations_after(instance, list(blocking_by_check), after_storage_id, since):
        cursor = max(cursor or 0, storage_id)
        evaluation = event.dagster_event.event_specific_data if event.dagster_event else None
        if not isinstance(evaluation, AssetCheckEvaluation):
            continue
        if after_storage_id is None and event.timestamp < after_timestamp:
            continue
        check_key = AssetCheckKey(evaluation.asset_key, evaluation.check_name)
        blocking = evaluation.blocking if evaluation.blocking is not None else blocking_by_check.get(check_key, False)
        if not evaluation.passed and not blocking:
            continue  # non-blocking failures are reported in the digest only
        name = evaluation.asset_key.to_user_string()
        partition = evaluation.partition or "-"
        if evaluation.partition is None and "partitions_checked" in evaluation.metadata:
            # One result for a whole range run: the run also recorded an evaluation on each failing
            # partition (and on each that passes again), which open and close the problems. Only a
            # failure it could not place on partitions is a problem of the range itself.
            if "failing_partitions" in evaluation.metadata and not evaluation.passed:
                continue
            run = instance.get_run_by_id(event.run_id) if event.run_id else None
            partition = _run_partitions(dict(run.tags)) if run is not None else "-"
        detail = evaluation.description or _metadata_summary(evaluation)
        problem = Problem(
            key=f"check:{name}:{evaluation.check_name}:{partition}",
            group=f"check:{name}:{evaluation.check_name}",
            kind="check",
            line=f"`{partition}`" + (f": {detail}" if detail else ""),
            fields={"Asset": name, "Check": evaluation.check_name, "Run": event.run_id or "-"},
        )
        transitions.append(Transition(storage_id, opened=not evaluation.passed, problem=problem))
    return transitions, cursor


def _check_evaluations_after(
    instance: DagsterInstance,
    check_keys: Sequence[AssetCheckKey],
    after_storage_id: int | None,
    since: dt.datetime | None = None,
) -> list[tuple[int, EventLogEntry]]:
    """(storage id, evaluation event) of the given checks evaluated after ``after_storage_id`` (and,
    on a first tick, not before ``since``), oldest first."""
    storage = instance.event_log_storage
    if not isinstance(storage, SqlEventLogStorage):
        raise TypeError(
            f"the alert sensor reads check evaluations from a SQL event log storage, not {type(storage).__name__}"
        )
    table = AssetCheckExecutionsTable
    names_by_asset: dict[str, list[str]] = {}
    for key in check_keys:
        names_by_asset.setdefault(key.asset_key.to_string(), []).append(key.name)
    conditions = [
        table.c.execution_status.in_(
            [AssetCheckExecutionRecordStatus.SUCCEEDED.value, AssetCheckExecutionRecordStatus.FAILED.value]
        ),
        table.c.evaluation_event_storage_id > (after_storage_id or 0),
        db.or_(
            *(
                db.and_(table.c.asset_key == asset, table.c.check_name.in_(names))
                for asset, names in names_by_asset.items()
            )
        ),
    ]
    if since is not None:
        # Stored as naive UTC to the second; the caller applies the exact cut-off to the event's timestamp.
        conditions.append(table.c.evaluation_event_timestamp >= since.replace(tzinfo=None) - dt.timedelta(seconds=1))
    query = (
        db_select([table.c.evaluation_event_storage_id, table.c.evaluation_event])
        .where(db.and_(*conditions))
        .order_by(table.c.evaluation_event_storage_id.asc())
    )
    with storage.index_connection() as connection:
        rows = connection.execute(query).fetchall()
    return [(int(storage_id), deserialize_value(serialized, EventLogEntry)) for storage_id, serialized in rows]


def _metadata_summary(evaluation: AssetCheckEvaluation) -> str:
    parts = []
    for label, value in list(evaluation.metadata.items())[:3]:
        text = str(getattr(value, "value", value))
        parts.append(f"{label}={text[:80]}")
    return ", ".join(parts)


def run_transitions(
    instance: DagsterInstance,
    after_failure_id: int | None,
    after_success_id: int | None,
    after_timestamp: float | None,
) -> tuple[list[Transition], int | None, int | None]:
    """A failed run opens a problem for its job and symbols; a later success of the same closes it."""
    transitions: list[Transition] = []
    cursors = []
    for event_type, after_id in (
        (DagsterEventType.RUN_FAILURE, after_failure_id),
        (DagsterEventType.RUN_SUCCESS, after_success_id),
    ):
        result = instance.fetch_run_status_changes(
            RunStatusChangeRecordsFilter(
                event_type=event_type,  # type: ignore[arg-type]  # RUN_FAILURE/RUN_SUCCESS are run status events
                after_storage_id=after_id,
                after_timestamp=None if after_id is not None else after_timestamp,
            ),
            limit=EVENT_BATCH,
            ascending=True,
        )
        for record in result.records:
            run = instance.get_run_by_id(record.run_id)
            if run is None:
                continue
            failed = event_type == DagsterEventType.RUN_FAILURE
            if failed and _failed_only_on_blocking_checks(instance, run.run_id):
                continue  # the failing check is the problem, and alerts once as such
            transitions.append(
                Transition(record.storage_id, opened=failed, problem=_run_problem(instance, run, failed))
            )
        cursors.append(result.records[-1].storage_id if result.records else after_id)
    transitions.sort(key=lambda t: t.storage_id)
    return transitions, cursors[0], cursors[1]


def _failed_only_on_blocking_checks(instance: DagsterInstance, run_id: str) -> bool:
    """True when every failed step of the run failed because a blocking check failed."""
    failures = [
        entry.dagster_event.step_failure_data.error
        for entry in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE)
        if entry.dagster_event and entry.dagster_event.step_failure_data
    ]
    return bool(failures) and all(
        error is not None and error.cls_name == "DagsterAssetCheckFailedError" for error in failures
    )


def run_target(tags: dict[str, str]) -> str:
    """What a run covered, without the day: the symbol(s) of ``date|symbol`` keys, else ``-``."""

    def without_day(partition_key: str) -> str:
        return partition_key.split("|", 1)[1] if "|" in partition_key else "-"

    if ASSET_PARTITION_RANGE_START_TAG in tags and ASSET_PARTITION_RANGE_END_TAG in tags:
        start, end = (
            without_day(tags[ASSET_PARTITION_RANGE_START_TAG]),
            without_day(tags[ASSET_PARTITION_RANGE_END_TAG]),
        )
        return start if start == end else f"{start}..{end}"
    if PARTITION_NAME_TAG in tags:
        return without_day(tags[PARTITION_NAME_TAG])
    return "-"


def _run_partitions(tags: dict[str, str]) -> str:
    if ASSET_PARTITION_RANGE_START_TAG in tags and ASSET_PARTITION_RANGE_END_TAG in tags:
        return f"{tags[ASSET_PARTITION_RANGE_START_TAG]}...{tags[ASSET_PARTITION_RANGE_END_TAG]}"
    return tags.get(PARTITION_NAME_TAG, "-")


def _run_problem(instance: DagsterInstance, run, failed: bool) -> Problem:
    tags = dict(run.tags)
    key = f"run:{run.job_name}:{run_target(tags)}"
    line = f"run `{run.run_id[:8]}` of `{run.job_name}` for `{_run_partitions(tags)}`"
    if failed:
        errors = [
            f"{entry.step_key}: {entry.dagster_event.step_failure_data.error.message.strip().splitlines()[0][:200]}"
            for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_FAILURE)
            if entry.dagster_event and entry.dagster_event.step_failure_data.error
        ]
        line += " failed" + (": " + "; ".join(errors[:3]) if errors else "")
    else:
        line += " succeeded"
    return Problem(
        key=key,
        group=key,
        kind="run",
        line=line,
        fields={"Job": run.job_name, "Run": run.run_id, "Partitions": _run_partitions(tags)},
    )
