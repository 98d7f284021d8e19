"""Every private ``dagster._…`` name the project uses, in one place.

Dagster 1.13.27 offers no public API for these; the project imports them from here and nowhere else,
so an upgrade touches one module. ``tests/test_dagster_internals_contract.py`` pins the exact
behaviour, signatures and attributes the project relies on: when a Dagster upgrade moves or changes
one of them, that test fails naming this module, before anything fails deep inside a run.

Names Dagster exports publicly are not here: import them from ``dagster`` (``TimeWindow``,
``AssetCheckEvaluation``, ``AssetMaterialization``, ``DagsterEvent``, ``DagsterEventType``,
``EventLogEntry``, ``StepExecutionContext``, ``deserialize_value``, ``serialize_value``...).
See docs/deployment.md, "Upgrading Dagster".
"""

# One line per name: why no public API serves. Who uses it is in the contract test.
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationPlanned,  # the planned-check event's data (event-log override); not exported
    AssetCheckEvaluationTargetMaterializationData,  # public AssetCheckEvaluation takes it, yet it is not exported
)
from dagster._core.definitions.freshness import (
    FreshnessState,  # get_freshness_state_records is public, the state enum it returns is not exported
    FreshnessStateChange,  # the freshness event's data (the alert sensor's tests build them); not exported
)
from dagster._core.definitions.run_request import InstigatorType  # sensor/schedule kind of tick retention (tests)
from dagster._core.events import (
    ASSET_CHECK_EVENTS,  # no public set of the check event types (run-log retention keeps them; tests)
    ASSET_EVENTS,  # no public set of the asset event types (batched event-log writes)
    EVENT_TYPE_TO_PIPELINE_RUN_STATUS,  # no public map of the run-status event types (retention tests)
    JobFailureData,  # failing a dead run as Dagster's run monitoring does: no public failure-reason API
    RunFailureReason,  # ditto (UNEXPECTED_TERMINATION)
    StepMaterializationData,  # the materialization event's data class; not exported
)
from dagster._core.execution.context.metadata_logging import (
    AssetMetadataHandle,  # no public bulk add_asset_metadata (the public one is O(partitions) per call)
    OutputMetadataAccumulator,  # ditto
)
from dagster._core.scheduler.instigation import TickStatus  # tick retention settings' keys (tests); not exported
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecordStatus,  # status of the check-history records (public readers); not exported
)
from dagster._core.storage.dagster_run import FINISHED_STATUSES  # no public set of finished run statuses (tests)
from dagster._core.storage.db_io_manager import (
    DbClient,  # dagster-duckdb builds on these but exports only DuckDBIOManager: no public base for a
    DbIOManager,  # custom table slice, client or type handler (resources/duckdb_io.py, resources/lake.py)
    DbTypeHandler,  # ditto
    TablePartitionDimension,  # ditto
    TableSlice,  # ditto
)
from dagster._core.storage.event_log.schema import (
    AssetCheckExecutionsTable,  # the event log's SQL tables (batched writes, the alert sensor's query)
    ConcurrencySlotsTable,  # ditto (the SQLite slot claim made atomic)
    SqlEventLogStorageTable,  # ditto
)
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage  # no public storage base class
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage  # ditto (subclassed)
from dagster._core.storage.local_compute_log_manager import (
    LocalComputeLogManager,  # run-log retention deletes its per-run files; no public compute-log manager type
)
from dagster._core.storage.runs.schema import RunsTable  # the runs SQL table (retention tests age a run)
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage  # no public storage type
from dagster._core.storage.sqlalchemy_compat import db_select  # Dagster's SQLAlchemy select shim for its tables
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS  # Dagster's own SQLite busy timeout
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,  # dagster exports only MAX_RUNTIME_SECONDS_TAG; range runs are
    ASSET_PARTITION_RANGE_START_TAG,  # launched by these tags (RunRequest has no partition-range argument)
    MULTIDIMENSIONAL_PARTITION_PREFIX,  # no public constant for the ``dagster/partition/<dimension>`` tags
    PARTITION_NAME_TAG,  # no public constant for ``dagster/partition`` (a single-partition run's key)
)
from dagster._record import (
    copy,  # no public way to copy a dagster record (AssetCheckEvaluationPlanned) with a changed field
    record,  # AssetSelection is a dagster record: a custom selection (schedules.py) must be one too
)
from dagster._serdes import ConfigurableClassData  # instance-config plumbing of storage classes; not exported
from dagster._utils.concurrency import (
    ConcurrencyClaimStatus,  # claim_concurrency_slot's return type; not exported
    ConcurrencySlotStatus,  # _claim_concurrency_slot's return type; not exported
)

__all__ = [
    "ASSET_CHECK_EVENTS",
    "ASSET_EVENTS",
    "ASSET_PARTITION_RANGE_END_TAG",
    "ASSET_PARTITION_RANGE_START_TAG",
    "AssetCheckEvaluationPlanned",
    "AssetCheckEvaluationTargetMaterializationData",
    "AssetCheckExecutionRecordStatus",
    "AssetCheckExecutionsTable",
    "AssetMetadataHandle",
    "ConcurrencyClaimStatus",
    "ConcurrencySlotStatus",
    "ConcurrencySlotsTable",
    "ConfigurableClassData",
    "DbClient",
    "DbIOManager",
    "DbTypeHandler",
    "EVENT_TYPE_TO_PIPELINE_RUN_STATUS",
    "FINISHED_STATUSES",
    "FreshnessState",
    "FreshnessStateChange",
    "InstigatorType",
    "JobFailureData",
    "LocalComputeLogManager",
    "MULTIDIMENSIONAL_PARTITION_PREFIX",
    "OutputMetadataAccumulator",
    "PARTITION_NAME_TAG",
    "RunFailureReason",
    "RunsTable",
    "SQLITE_BUSY_TIMEOUT_SECONDS",
    "SqlEventLogStorage",
    "SqlEventLogStorageTable",
    "SqliteEventLogStorage",
    "SqliteRunStorage",
    "StepMaterializationData",
    "TablePartitionDimension",
    "TableSlice",
    "TickStatus",
    "copy",
    "db_select",
    "record",
]
