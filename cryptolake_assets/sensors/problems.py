r"""What is wrong right now: the problems the alert sensor turns into alerts.

Two families. *States* are recomputed every tick (asset freshness FAIL, stale symbols): a problem
is open while it is in the set. *Events* are read incrementally after a storage-id cursor (blocking
check evaluations, run failures/successes): a failure opens a problem, a later success on the same
thing closes it.

Storage ids are not commit order. On Postgres a transaction that took id N may commit after N + 1
was read, and even on SQLite a check evaluation's row is updated in its own transaction after the
event is stored. So the event cursors are ``IdWindow``\ s: each tick re-reads the ids above a
*settled* watermark and skips those already reported (kept in the cursor); an id becomes settled
``SETTLE_SECONDS`` after a tick read a higher one, by when its transaction has long committed.
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
    deserialize_value,
)

from cryptolake_assets.freshness import STALENESS_DEADLINES, find_stale_symbols
from resources.dagster_internals import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
    AssetCheckExecutionRecordStatus,
    AssetCheckExecutionsTable,
    FreshnessState,
    SqlEventLogStorage,
    db_select,
)

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


# An id below one a tick has read is committed within this long (a transaction open longer than
# this, holding a lower id, could be missed; Dagster's writes are single statements or short batches).
SETTLE_SECONDS = 600.0
# At most this many reported ids are remembered above the watermark (about 2 ids per tick-second
# of sustained check results for 10 minutes); beyond it the lowest ones settle early.
MAX_SEEN_IDS = 5000


@dataclass
class IdWindow:
    """An event cursor that misses nothing when ids commit out of order, and repeats nothing.

    ``after``: every id up to it is settled (read, or past the time its transaction could still
    commit); None before the first tick. ``seen``: ids above ``after`` already reported.
    ``marks``: (tick time, highest id read by then); once a mark is ``SETTLE_SECONDS`` old, every
    id up to its id is settled and ``after`` moves there. The cursor stays bounded: ``seen`` holds
    only ids above ``after`` (at most ``MAX_SEEN_IDS``), ``marks`` one entry per tick of the window.
    """

    after: int | None = None
    seen: set[int] = field(default_factory=set)
    marks: list[tuple[float, int]] = field(default_factory=list)

    @classmethod
    def load(cls, after: int | None, saved: Mapping | None) -> "IdWindow":
        saved = saved or {}
        return cls(
            after=after,
            seen={int(i) for i in saved.get("seen", [])},
            marks=[(float(t), int(i)) for t, i in saved.get("marks", [])],
        )

    def dump(self) -> dict:
        return {"seen": sorted(self.seen), "marks": [[t, i] for t, i in self.marks]}

    def read_after(self) -> int:
        """Read the ids above this (0 before the first tick, whose reads are cut by time instead)."""
        return self.after or 0

    def take(self, storage_id: int) -> bool:
        """True the first time ``storage_id`` is read (report it), False when it was reported already."""
        if (self.after is not None and storage_id <= self.after) or storage_id in self.seen:
            return False
        self.seen.add(storage_id)
        return True

    def tick(self, now: float, highest_read: int | None) -> None:
        """End a tick at ``now``: remember what was read, settle old marks, bound the cursor."""
        if self.after is None:
            # First tick (reads cut by time, not by id): everything up to the highest id read, or
            # the highest stored when nothing was read, is settled. Only on this tick can a row
            # still committing below that id be missed.
            self.after = highest_read or 0
            self.seen = set()
        top = max([highest_read or 0, *(i for _, i in self.marks)])
        if top:
            self.marks.append((now, top))
        settled = [i for t, i in self.marks if t <= now - SETTLE_SECONDS]
        if settled:
            self.after = max(self.after, *settled)
        self.marks = [(t, i) for t, i in self.marks if t > now - SETTLE_SECONDS]
        self.seen = {i for i in self.seen if i > self.after}
        if len(self.seen) > MAX_SEEN_IDS:
            ordered = sorted(self.seen)
            self.after = ordered[len(ordered) - MAX_SEEN_IDS - 1]
            self.seen = set(ordered[len(ordered) - MAX_SEEN_IDS :])
        # Keep one mark per distinct id (newest time last): ticks with nothing new add no entries.
        latest: dict[int, float] = {}
        for t, i in self.marks:
            latest.setdefault(i, t)
        self.marks = sorted(((t, i) for i, t in latest.items()), key=lambda m: m[0])


def check_transitions(
    instance: DagsterInstance,
    blocking_by_check: Mapping[AssetCheckKey, bool],
    window: IdWindow,
    after_timestamp: float,
    now: float,
) -> list[Transition]:
    """Blocking check failures open a problem per (check, partition); a passing evaluation closes it.

    Reads the check evaluations stored above ``window``'s settled id (an event storage id) from
    the asset-check index, which every SQL event log storage keeps globally ordered (cross-run
    event cursors do not work on the default run-sharded SQLite storage), and reports each once
    (``IdWindow``). Only rows whose evaluation is new are read, so a tick costs what happened since
    the last ones, not the size of the history (Dagster's ``get_asset_check_partition_info`` also
    returns, and joins against, every partition with a new materialization: a 25,000-partition
    backfill made each tick scan the whole table). On the first tick only evaluations from the
    last ``after_timestamp`` onwards count. ``window`` is updated in place.
    """
    if not blocking_by_check:
        return []
    first_tick = window.after is None
    transitions = []
    since = dt.datetime.fromtimestamp(after_timestamp, dt.UTC) if first_tick else None
    rows = _check_evaluations_after(instance, list(blocking_by_check), window.read_after(), since)
    for storage_id, event in rows:
        if not window.take(storage_id):
            continue
        evaluation = event.dagster_event.event_specific_data if event.dagster_event else None
        if not isinstance(evaluation, AssetCheckEvaluation):
            continue
        if first_tick and event.timestamp < after_timestamp:
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
    ids = [storage_id for storage_id, _ in rows]
    if first_tick and not ids:
        ids = [_max_check_storage_id(instance)]
    window.tick(now, max(ids) if ids else None)
    return transitions


def _max_check_storage_id(instance: DagsterInstance) -> int:
    """The highest evaluation storage id in the asset-check index (0 when there is none)."""
    storage = _sql_storage(instance)
    table = AssetCheckExecutionsTable
    with storage.index_connection() as connection:
        value = connection.execute(db_select([db.func.max(table.c.evaluation_event_storage_id)])).scalar()
    return int(value or 0)


def _sql_storage(instance: DagsterInstance) -> SqlEventLogStorage:
    storage = instance.event_log_storage
    if not isinstance(storage, SqlEventLogStorage):
        raise TypeError(
            f"the alert sensor reads check evaluations from a SQL event log storage, not {type(storage).__name__}"
        )
    return storage


def _check_evaluations_after(
    instance: DagsterInstance,
    check_keys: Sequence[AssetCheckKey],
    after_storage_id: int | None,
    since: dt.datetime | None = None,
) -> list[tuple[int, EventLogEntry]]:
    """(storage id, evaluation event) of the given checks evaluated after ``after_storage_id`` (and,
    on a first tick, not before ``since``), oldest first."""
    storage = _sql_storage(instance)
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
    failures: IdWindow,
    successes: IdWindow,
    after_timestamp: float | None,
    now: float,
) -> list[Transition]:
    """A failed run opens a problem for its job and symbols; a later success of the same closes it.

    Each window is updated in place (see ``IdWindow``); each status change is reported once.
    """
    transitions: list[Transition] = []
    for event_type, window in ((DagsterEventType.RUN_FAILURE, failures), (DagsterEventType.RUN_SUCCESS, successes)):
        first_tick = window.after is None
        records: list = []
        after_id = window.after
        while True:  # page through everything above the settled id (most of it seen on busy ticks)
            result = instance.fetch_run_status_changes(
                RunStatusChangeRecordsFilter(
                    event_type=event_type,  # type: ignore[arg-type]  # RUN_FAILURE/RUN_SUCCESS are run status events
                    after_storage_id=after_id,
                    after_timestamp=after_timestamp if first_tick else None,
                ),
                limit=EVENT_BATCH,
                ascending=True,
            )
            records.extend(result.records)
            if len(result.records) < EVENT_BATCH:
                break
            after_id = result.records[-1].storage_id
        for record in records:
            if not window.take(record.storage_id):
                continue
            run = instance.get_run_by_id(record.run_id)
            if run is None:
                continue
            failed = event_type == DagsterEventType.RUN_FAILURE
            if failed and _failed_only_on_blocking_checks(instance, run.run_id):
                continue  # the failing check is the problem, and alerts once as such
            transitions.append(
                Transition(record.storage_id, opened=failed, problem=_run_problem(instance, run, failed))
            )
        ids = [record.storage_id for record in records]
        if first_tick and not ids:
            ids = [_max_run_status_storage_id(instance, event_type)]
        window.tick(now, max(ids) if ids else None)
    transitions.sort(key=lambda t: t.storage_id)
    return transitions


def _max_run_status_storage_id(instance: DagsterInstance, event_type: DagsterEventType) -> int:
    """The storage id of the newest run status change of this type (0 when there is none)."""
    result = instance.fetch_run_status_changes(
        RunStatusChangeRecordsFilter(event_type=event_type),  # type: ignore[arg-type]
        limit=1,
        ascending=False,
    )
    return result.records[0].storage_id if result.records else 0


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
