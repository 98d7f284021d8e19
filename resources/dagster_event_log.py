"""Dagster's SQLite (and PostgreSQL) event log, made fit for backfills of thousands of partitions.

A materialization of a date × symbol asset over a range writes one ``ASSET_MATERIALIZATION``
event per partition (25,585 for the default universe over two years, per asset). Dagster's stock
``SqliteEventLogStorage`` writes each event on its own: two fresh SQLite connections, two commits
and two schema inspections per event, about 9 ms here, so a two-year backfill spent most of its
time in ``store_event`` (see docs/changelog.md and docs/adr/0002-batched-event-log.md). This subclass keeps Dagster's
schema, files and read paths and only changes how events are written:

- ``store_event_batch`` writes a batch of asset events of one run in one transaction on the run
  shard and one on the index shard (Dagster hands over such batches when
  ``DAGSTER_EVENT_BATCH_SIZE`` > 0; it does by default for an instance using this storage);
- schema inspections (``has_table``, asset-key index columns) are answered once per process,
  and each shard's SQLAlchemy engine is made once per process (Dagster makes and disposes one per
  connection, about 0.1 ms of dialect set-up each time, tens of thousands of times per backfill);
- a batch's per-partition materializations, which differ only in partition, partition tags and
  timestamp, are serialized from one template per shape (``EventRowSerializer``): the stored JSON
  is byte for byte what Dagster's ``serialize_value`` writes, at a tenth of the cost; the index
  shard takes the batch in one multi-row insert;
- a range run's planned check executions (one row per check and partition, as in Dagster) store
  the planned event without its partition subset in each row: Dagster copies the event, whose
  subset lists every partition of the run, into every row (25,585 rows × a 500 kB subset per
  check for a two-year backfill of the universe). The event log itself keeps the full event;
- a run over a partition range records one ``ASSET_MATERIALIZATION_PLANNED`` event per asset
  (with the partition subset) instead of one per partition. Dagster's caveat for this mode: if such
  a run fails, its partitions show as "missing", not "failed", in the partition bar (the run and
  its failed step still say what failed);
- a step waiting for a pool slot (the ``duckdb`` pool) waits here, ``BLOCKED_CLAIM_WAIT_SECONDS``
  between checks, instead of spinning: Dagster 1.13's executor loop never sleeps between claim
  attempts (``InstanceConcurrencyContext.interval_to_next_pending_claim_check`` returns
  ``min(0, ...)``), so a queued run waiting for the slot burned a whole core, half of this 2-core
  machine, while the run holding the slot worked, and noticed a freed slot only after Dagster's
  backoff (1 s growing to 15 s) had passed. While it waits it says which runs and steps hold the
  slots (``PoolWait``), frees the slots of holders whose process is gone, and gives up after
  ``pool_wait_timeout_seconds`` / ``CRYPTOLAKE_POOL_WAIT_TIMEOUT_SECONDS`` (default 30 min);
- a range run longer than ``PER_PARTITION_CHECK_RESULTS_MAX`` partitions plans each check as one
  row for the whole range, the way the project's checks report it, instead of one PLANNED row per
  partition that no result would ever resolve.

The instance selects it in ``dagster.yaml`` (``event_log_storage``). Everything above but the
per-shard engines lives in ``BatchedEventLogMixin``, which ``BatchedPostgresEventLogStorage``
applies to dagster-postgres' ``PostgresEventLogStorage`` (deploy/postgres/dagster.yaml): there a
batch is one multi-row insert into the single ``event_logs`` table in the same transaction as its
tags and asset rows (benchmarks/postgres_event_log_bench.py measures both storages against Dagster's).
"""

import json
import os
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterEventType,
    EventLogEntry,
    Field,
    IntMetadataValue,
    StringSource,
    TextMetadataValue,
    serialize_value,
)
from dagster_postgres import PostgresEventLogStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

# Private, the base of every SQL event log (the mixin's base, so that mypy sees the methods it
# overrides and calls); contract test: tests/test_dagster_event_log.py::test_private_dagster_names_the_event_log_relies_on.
from resources.dagster_internals import (
    ASSET_EVENTS,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    AssetCheckEvaluationPlanned,
    AssetCheckExecutionRecordStatus,
    AssetCheckExecutionsTable,
    ConcurrencyClaimStatus,
    ConcurrencySlotsTable,
    ConcurrencySlotStatus,
    ConfigurableClassData,
    SqlEventLogStorage,
    SqlEventLogStorageTable,
    SqliteEventLogStorage,
    StepMaterializationData,
    copy,
    db_select,
)

# Read by Dagster on every write (not cached), in every process that opens the instance: the run
# worker, the daemon and the webserver all import this module through dagster.yaml.
DEFAULT_EVENT_BATCH_SIZE = "1000"
os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", DEFAULT_EVENT_BATCH_SIZE)


# Range runs of up to this many partitions get one check result per partition (and so one planned
# row per partition); larger ranges get one result per check (cryptolake_assets/quality/factory.py).
PER_PARTITION_CHECK_RESULTS_MAX = 40

# How long a blocked pool-slot claim waits before Dagster asks again (a check is one small SQLite
# read; a freed slot is noticed within this time).
BLOCKED_CLAIM_WAIT_SECONDS = 0.2

# A step waiting for a pool slot says who holds it this often, and looks for dead holders to free.
POOL_WAIT_REPORT_SECONDS = 30.0
POOL_WAIT_TIMEOUT_ENV_VAR = "CRYPTOLAKE_POOL_WAIT_TIMEOUT_SECONDS"
DEFAULT_POOL_WAIT_TIMEOUT_SECONDS = 1800.0

# Engines kept per process (one per shard: the index and the most recent runs' files).
ENGINES_KEPT = 32


def default_base_dir() -> str:
    """Where Dagster's default SQLite storage keeps run event logs: ``$DAGSTER_HOME/history/runs``."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise RuntimeError("DAGSTER_HOME is not set: set it or give event_log_storage a base_dir")
    return os.path.join(home, "history", "runs")


class BatchedEventLogMixin(SqlEventLogStorage):
    """What the project's event log adds to any of Dagster's SQL event logs (SQLite or Postgres).

    Put first in the bases (``class X(BatchedEventLogMixin, SqliteEventLogStorage)``): ``super()``
    then reaches the concrete storage. It never runs on its own (``SqlEventLogStorage`` is abstract;
    it is a base here only so that type checking sees the storage's methods).
    """

    def _init_batched(self, pool_wait_timeout_seconds: float | None, run_log_retention_days: int = 30) -> None:
        """Set up the mixin's state; call before the storage's own ``__init__`` (which may write)."""
        self.run_log_retention_days = run_log_retention_days  # read by resources/run_log_retention.py
        self._pool_wait = PoolWait(pool_wait_timeout_seconds)
        self._known_tables: set[str] = set()
        self._asset_key_cols: dict[str, bool] = {}

    @property
    def supports_partition_subset_in_asset_materialization_planned_events(self) -> bool:
        return True

    # Schema answers, once per process (tables and columns are only ever added, by migrations
    # that run with no Dagster process up).
    def has_table(self, table_name: str) -> bool:
        if table_name in self._known_tables:
            return True
        # Abstract on SqlEventLogStorage; the concrete storage after this mixin in the MRO answers.
        exists = super().has_table(table_name)  # type: ignore[safe-super]
        if exists:
            self._known_tables.add(table_name)
        return exists

    def _has_asset_key_col_on_connection(self, conn, column_name: str) -> bool:
        if column_name not in self._asset_key_cols:
            self._asset_key_cols[column_name] = super()._has_asset_key_col_on_connection(conn, column_name)
        return self._asset_key_cols[column_name]

    def _event_rows(self, events: Sequence[EventLogEntry]) -> list[dict[str, Any]]:
        """``_event_to_row`` for each event, serializing repeated shapes from a template."""
        serializer = EventRowSerializer()
        rows = []
        for event in events:
            dagster_event = event.get_dagster_event()
            rows.append(
                {
                    "run_id": event.run_id,
                    "event": serializer.serialize(event),
                    "dagster_event_type": dagster_event.event_type_value,
                    "timestamp": self._event_insert_timestamp(event),
                    "step_key": dagster_event.step_key,
                    "asset_key": dagster_event.asset_key.to_string() if dagster_event.asset_key else None,
                    "partition": dagster_event.partition or None,
                }
            )
        return rows

    def _store_run_shard_rows(self, run_id: str, rows: list[dict[str, Any]]) -> None:
        """Where the storage keeps a run's events apart from the index (SQLite's per-run files)."""

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Store asset events of one run in one index transaction (plus SQLite's run shard).

        Anything else (mixed runs, step or run events, check evaluations) goes to the storage's
        own ``store_event_batch``, exactly as in Dagster.
        """
        if not events or not all(_is_asset_event(event) for event in events):
            super().store_event_batch(events)
            return
        run_ids = {event.run_id for event in events}
        if len(run_ids) != 1:
            super().store_event_batch(events)
            return

        rows = self._event_rows(events)
        self._store_run_shard_rows(run_ids.pop(), rows)

        with self.index_transaction() as conn:
            inserted = conn.execute(
                SqlEventLogStorageTable.insert().returning(SqlEventLogStorageTable.c.id, sort_by_parameter_order=True),
                rows,
            )
            event_ids = [row[0] for row in inserted]
            self._store_asset_event_tags(conn, events, event_ids)
            # The asset-key row keeps only the latest event of each kind: writing the last one of
            # each (asset, event type) leaves it exactly as writing them all in order would.
            latest: dict[tuple[str, str], tuple[EventLogEntry, int]] = {}
            for event, event_id in zip(events, event_ids):
                dagster_event = event.get_dagster_event()
                asset_key = cast(AssetKey, dagster_event.asset_key)  # asset events always carry one
                latest[(asset_key.to_string(), dagster_event.event_type_value)] = (event, event_id)
            for event, event_id in sorted(latest.values(), key=lambda pair: pair[1]):
                self._store_asset_event(conn, event, event_id)

    def claim_concurrency_slot(
        self, concurrency_key: str, run_id: str, step_key: str, priority: int | None = None
    ) -> ConcurrencyClaimStatus:
        """Dagster's claim; when the slot is taken, wait a moment here and ask to be asked again at once.

        The executor calls this in a loop without sleeping while a step waits for a slot; waiting
        here turns that busy loop into a check every ``BLOCKED_CLAIM_WAIT_SECONDS``.
        """
        status = super().claim_concurrency_slot(concurrency_key, run_id, step_key, priority)
        if status.is_claimed:
            self._pool_wait.done(run_id, step_key)
            return status
        self._pool_wait.blocked(self._instance if self.has_instance else None, concurrency_key, run_id, step_key)
        time.sleep(BLOCKED_CLAIM_WAIT_SECONDS)
        return status.with_sleep_interval(0.0)

    def _store_asset_check_evaluation_planned(self, event: EventLogEntry, event_id: int | None) -> None:
        """Planned-check rows of a range run: one per partition only where results come per partition.

        Dagster writes one PLANNED row per check and partition of the run, each holding the planned
        event with the run's whole partition subset. The project's checks report one result per
        partition for ranges of up to ``PER_PARTITION_CHECK_RESULTS_MAX`` partitions, which resolve
        those rows (stored without the subset); a larger range gets one result per check for the
        whole range (``partition`` None), so it gets one planned row without a partition, which
        that result resolves. Per-partition rows there would stay PLANNED for ever: a 2-year × 35
        symbol backfill wrote 700,000 of them (590 MB) and made every run's creation slower.
        """
        dagster_event = event.get_dagster_event()
        planned = cast(AssetCheckEvaluationPlanned, dagster_event.event_specific_data)
        if planned.partitions_subset is None:
            super()._store_asset_check_evaluation_planned(event, event_id)
            return
        per_row_event = event._replace(
            dagster_event=dagster_event._replace(event_specific_data=copy(planned, partitions_subset=None))
        )
        common = dict(
            asset_key=planned.asset_key.to_string(),
            check_name=planned.check_name,
            run_id=event.run_id,
            execution_status=AssetCheckExecutionRecordStatus.PLANNED.value,
            evaluation_event=serialize_value(per_row_event),
            evaluation_event_timestamp=self._event_insert_timestamp(event),
            evaluation_event_storage_id=event_id,
        )
        keys: list[str | None] = list(planned.partitions_subset.get_partition_keys())
        if len(keys) > PER_PARTITION_CHECK_RESULTS_MAX:
            keys = [None]
        rows = [{**common, "partition": key} for key in keys]
        if rows:
            with self.index_connection() as conn:
                conn.execute(AssetCheckExecutionsTable.insert(), rows)


class BatchedSqliteEventLogStorage(BatchedEventLogMixin, SqliteEventLogStorage):
    """``SqliteEventLogStorage`` that writes batches of asset events in one transaction per shard."""

    def __init__(
        self,
        base_dir: str | None = None,
        inst_data: ConfigurableClassData | None = None,
        pool_wait_timeout_seconds: float | None = None,
        run_log_retention_days: int = 30,
    ):
        self._init_batched(pool_wait_timeout_seconds, run_log_retention_days)
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        super().__init__(base_dir=base_dir or default_base_dir(), inst_data=inst_data)

    def _claim_concurrency_slot(self, concurrency_key: str, run_id: str, step_key: str) -> ConcurrencySlotStatus:
        """Dagster's slot claim as ONE conditional ``UPDATE``, so two processes can never both hold a slot.

        Dagster selects a free slot row, then updates it by id. On SQLite the select runs before the
        transaction takes the write lock (pysqlite begins it at the first write), so two runs that
        claim at the same moment can both read the same free row and both "claim" it: two writers in
        a pool of one (seen in tests/test_klines_ingest_concurrency.py, which releases two runs'
        writes at once). PostgreSQL is safe (``SELECT ... FOR UPDATE SKIP LOCKED``) and keeps Dagster's.
        """
        slots = ConcurrencySlotsTable
        free = (slots.c.concurrency_key == concurrency_key) & slots.c.step_key.is_(None) & (slots.c.deleted == False)  # noqa: E712
        first_free = db_select([slots.c.id]).where(free).limit(1).scalar_subquery()
        with self.index_connection() as conn:
            claimed = conn.execute(
                slots.update()
                .values(run_id=run_id, step_key=step_key)
                .where((slots.c.id == first_free) & slots.c.step_key.is_(None))
            ).rowcount
        return ConcurrencySlotStatus.CLAIMED if claimed else ConcurrencySlotStatus.BLOCKED

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            "base_dir": Field(StringSource, is_required=False),
            # How long a step waits for a pool slot before it fails (env CRYPTOLAKE_POOL_WAIT_TIMEOUT_SECONDS
            # when unset here; default 30 min).
            "pool_wait_timeout_seconds": Field(float, is_required=False),
            # Finished runs older than this many days lose their step/log events and compute logs
            # (asset and check events stay); < 1 disables it. See resources/run_log_retention.py.
            "run_log_retention_days": Field(int, is_required=False, default_value=30),
        }

    @classmethod
    def from_config_value(  # type: ignore[override]  # our config adds fields to SqliteStorageConfig
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]
    ):
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        """Dagster's ``_connect`` with the shard's engine kept instead of made and disposed each time.

        The engine pools nothing (``NullPool``): every call still opens and closes its own SQLite
        connection, in one transaction, under the storage's lock, as Dagster's does.
        """
        with self._db_lock:
            engine = self._engines.get(shard)
            if engine is None:
                engine = create_engine(
                    self.conn_string_for_shard(shard),
                    poolclass=NullPool,
                    connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
                )
                self._engines[shard] = engine
                if len(self._engines) > ENGINES_KEPT:
                    self._engines.popitem(last=False)[1].dispose()
            else:
                self._engines.move_to_end(shard)
            if shard not in self._initialized_dbs:  # reset by wipe() and upgrade(), as in Dagster
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                with conn.begin():
                    yield conn

    def _store_run_shard_rows(self, run_id: str, rows: list[dict[str, Any]]) -> None:
        """SQLite keeps each run's events in its own file as well as in the index."""
        with self.run_connection(run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)


class BatchedPostgresEventLogStorage(BatchedEventLogMixin, PostgresEventLogStorage):
    """dagster-postgres' ``PostgresEventLogStorage`` with the project's event-log behaviours.

    Postgres keeps one ``event_logs`` table (no run shards): a range output's events go in as one
    multi-row insert in the same transaction as their tags and asset rows. Configured like
    ``storage: postgres:`` (``postgres_url`` or ``postgres_db``) plus ``pool_wait_timeout_seconds``;
    see deploy/postgres/dagster.yaml.
    """

    def __init__(
        self,
        postgres_url: str,
        should_autocreate_tables: bool = True,
        inst_data: ConfigurableClassData | None = None,
        token_provider: Any = None,
        pool_wait_timeout_seconds: float | None = None,
        run_log_retention_days: int = 30,
    ):
        self._init_batched(pool_wait_timeout_seconds, run_log_retention_days)
        super().__init__(
            postgres_url,
            should_autocreate_tables=should_autocreate_tables,
            inst_data=inst_data,
            token_provider=token_provider,
        )

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            **cast(dict[str, Any], PostgresEventLogStorage.config_type()),
            "pool_wait_timeout_seconds": Field(float, is_required=False),
            # As for SQLite: resources/run_log_retention.py purges old finished runs' step/log events.
            "run_log_retention_days": Field(int, is_required=False, default_value=30),
        }

    @classmethod
    def from_config_value(  # type: ignore[override]  # returns this class, with the extra field
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]
    ) -> "BatchedPostgresEventLogStorage":
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
            pool_wait_timeout_seconds=config_value.get("pool_wait_timeout_seconds"),
            run_log_retention_days=config_value.get("run_log_retention_days", 30),
        )


# Stand-ins for the per-event values in a template; NUL characters never occur in Dagster's values.
_TIMESTAMP_STANDIN = -1.2345678901234567e-300
_PARTITION_STANDIN = "\x00cryptolake:partition\x00"
_PARTITION_TAG_PREFIX = "dagster/partition/"
_METADATA_SLOT = "\x00metadata:"
# Stand-ins for per-partition int figures: all of one length, so none is a substring of another.
_INT_STANDIN_BASE = -8_765_432_109_876_540_000


def _slot_kind(value: object) -> str | None:
    """Metadata values that differ per partition (row counts, time spans) and template as JSON scalars."""
    if type(value) is IntMetadataValue and (value.value is None or type(value.value) is int):
        return "int"
    if type(value) is TextMetadataValue and type(value.text) is str:
        return "text"
    return None


class EventRowSerializer:
    """``serialize_value`` for a batch of events, from a template for runs of events of one shape.

    Dagster writes a range run's materializations as one event per partition: the same run, step,
    asset, metadata values (the same objects) and tags, with only the partition, the partition's
    ``dagster/partition/<dimension>`` tags and the timestamp differing. The first event of a shape
    is serialized as usual; from the second on, the shape's JSON is serialized once with stand-ins
    for those values and each event's JSON is that template with its own values put in (each
    value JSON-encoded as ``serialize_value`` encodes it). Anything else, or any event whose shape
    differs from the one before, is serialized by ``serialize_value``.
    """

    def __init__(self) -> None:
        self._shape: tuple | None = None
        self._template: list[str] | None = None  # JSON pieces around the stand-ins; [] = none possible
        self._slots: list[str] = []  # which value goes between pieces i and i + 1

    def serialize(self, event: EventLogEntry) -> str:
        shape = _materialization_shape(event)
        if shape is None:
            return serialize_value(event)
        if shape != self._shape:
            self._shape, self._template = shape, None
            return serialize_value(event)
        if self._template is None:
            self._template, self._slots = _template_for(event)
        if not self._template:  # this shape cannot be templated (see _template_for)
            return serialize_value(event)
        materialization = event.get_dagster_event().event_specific_data.materialization  # type: ignore[union-attr]
        values = {"timestamp": json.dumps(event.timestamp), "partition": json.dumps(materialization.partition)}
        pieces = [self._template[0]]
        for slot, piece in zip(self._slots, self._template[1:]):
            if slot in values:
                pieces.append(values[slot])
            elif slot.startswith(_METADATA_SLOT):
                pieces.append(json.dumps(materialization.metadata[slot[len(_METADATA_SLOT) :]].value))
            else:
                pieces.append(json.dumps((materialization.tags or {})[slot]))
            pieces.append(piece)
        return "".join(pieces)


def _materialization_shape(event: EventLogEntry) -> tuple | None:
    """What must be equal for two materializations to share a template (None: not templatable)."""
    dagster_event = event.dagster_event
    if (
        dagster_event is None
        or event.error_info is not None
        or dagster_event.event_type_value != DagsterEventType.ASSET_MATERIALIZATION.value
        or type(dagster_event.event_specific_data) is not StepMaterializationData
    ):
        return None
    data = dagster_event.event_specific_data
    materialization = data.materialization
    if type(materialization) is not AssetMaterialization or not isinstance(materialization.partition, str):
        return None
    if type(event.timestamp) is not float:
        return None
    tags = materialization.tags or {}
    return (
        event.level,
        event.user_message,
        event.run_id,
        event.step_key,
        event.job_name,
        dagster_event.job_name,
        dagster_event.step_handle,
        dagster_event.node_handle,
        dagster_event.step_kind_value,
        tuple((dagster_event.logging_tags or {}).items()),
        dagster_event.message,
        dagster_event.pid,
        dagster_event.step_key,
        tuple(data.asset_lineage or ()),
        materialization.asset_key,
        materialization.description,
        materialization.tags is None,
        # Metadata values are the same objects in every partition's event (identity, and key order),
        # except per-partition figures (ints and texts), which are template slots: their type only.
        tuple((key, _slot_kind(value) or id(value)) for key, value in materialization.metadata.items()),
        tuple((key, None if key.startswith(_PARTITION_TAG_PREFIX) else value) for key, value in tags.items()),
    )


def _template_for(event: EventLogEntry) -> tuple[list[str], list[str]]:
    """The event's JSON split around stand-ins for its timestamp, partition and partition tags.

    Empty when a stand-in does not occur exactly once in the JSON (it collides with a real value).
    """
    dagster_event = event.get_dagster_event()
    data = dagster_event.event_specific_data
    materialization = data.materialization  # type: ignore[union-attr]
    standins = {"timestamp": json.dumps(_TIMESTAMP_STANDIN), "partition": json.dumps(_PARTITION_STANDIN)}
    tags = dict(materialization.tags) if materialization.tags is not None else None
    metadata = dict(materialization.metadata)
    for index, (key, value) in enumerate(materialization.metadata.items()):
        kind = _slot_kind(value)
        if kind == "int":
            metadata[key] = IntMetadataValue(_INT_STANDIN_BASE - index)
        elif kind == "text":
            metadata[key] = TextMetadataValue(f"\x00cryptolake:metadata:{index}\x00")
        else:
            continue
        standins[_METADATA_SLOT + key] = json.dumps(metadata[key].value)
    for key in list(tags or {}):
        if tags is not None and key.startswith(_PARTITION_TAG_PREFIX):
            tags[key] = f"\x00cryptolake:tag:{key}\x00"
            standins[key] = json.dumps(tags[key])
    standin_event = event._replace(
        timestamp=_TIMESTAMP_STANDIN,
        dagster_event=dagster_event._replace(
            event_specific_data=cast(StepMaterializationData, data)._replace(
                materialization=materialization._replace(partition=_PARTITION_STANDIN, tags=tags, metadata=metadata)
            )
        ),
    )
    text = serialize_value(standin_event)
    found = []
    for slot, token in standins.items():
        if text.count(token) != 1:
            return [], []
        found.append((text.index(token), slot, token))
    pieces, slots, position = [], [], 0
    for index, slot, token in sorted(found):
        pieces.append(text[position:index])
        slots.append(slot)
        position = index + len(token)
    pieces.append(text[position:])
    return pieces, slots


class PoolWaitTimeoutError(Exception):
    """A step waited longer than the configured time for a pool slot."""


class PoolWait:
    """What a step blocked on a pool slot tells the run log, and when it gives up.

    On the first blocked claim and every ``POOL_WAIT_REPORT_SECONDS`` after, it writes an engine
    event naming the runs and steps that hold the pool's slots (and since when), logs the same to
    the ``cryptolake.pool`` logger (the CLI prints it), and fails and frees the slots of holders
    whose process is gone (resources/run_health.py). After the timeout the claim raises
    ``PoolWaitTimeoutError``, which fails the run with that message instead of waiting for ever.
    """

    def __init__(self, timeout_seconds: float | None) -> None:
        if timeout_seconds is None:
            timeout_seconds = float(os.environ.get(POOL_WAIT_TIMEOUT_ENV_VAR) or DEFAULT_POOL_WAIT_TIMEOUT_SECONDS)
        self.timeout_seconds = timeout_seconds
        self._since: dict[tuple[str, str], float] = {}
        self._reported: dict[tuple[str, str], float] = {}

    def done(self, run_id: str, step_key: str) -> None:
        self._since.pop((run_id, step_key), None)
        self._reported.pop((run_id, step_key), None)

    def blocked(self, instance, pool: str, run_id: str, step_key: str) -> None:
        from resources import run_health

        key = (run_id, step_key)
        now = time.monotonic()
        since = self._since.setdefault(key, now)
        waited = now - since
        if waited >= self.timeout_seconds:
            holders = run_health.describe_pool_holders(instance, pool) if instance else "unknown"
            self.done(run_id, step_key)
            raise PoolWaitTimeoutError(
                f"step {step_key} waited {waited:.0f} s for a slot of pool {pool!r} and gave up "
                f"({POOL_WAIT_TIMEOUT_ENV_VAR} = {self.timeout_seconds:.0f} s). Held by: {holders}. "
                "Run `cryptolake doctor` to see whether those runs are alive."
            )
        if instance is None or now - self._reported.get(key, -1e18) < POOL_WAIT_REPORT_SECONDS:
            return
        self._reported[key] = now
        run_health.recover_dead_runs(instance, echo=_pool_logger().warning)
        message = (
            f"step {step_key} waits for a slot of pool {pool!r} (waiting {waited:.0f} s, gives up after "
            f"{self.timeout_seconds:.0f} s); held by: {run_health.describe_pool_holders(instance, pool)}"
        )
        _pool_logger().warning(message)
        run = instance.get_run_by_id(run_id)
        if run is not None:
            instance.report_engine_event(message, run, step_key=step_key)


def _pool_logger():
    import logging

    return logging.getLogger("cryptolake.pool")


def _is_asset_event(event: EventLogEntry) -> bool:
    return bool(
        event.is_dagster_event and event.dagster_event_type in ASSET_EVENTS and event.get_dagster_event().asset_key
    )
