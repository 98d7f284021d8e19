"""Contract of every private Dagster name the project uses (resources/dagster_internals.py).

Each test pins the exact behaviour, signature or attributes the project relies on, so a Dagster
upgrade that moves or changes one fails here, naming the module to fix, instead of deep inside a
run. Run this file first when bumping Dagster (docs/deployment.md, "Upgrading Dagster").
"""

import ast
import inspect
from pathlib import Path

import dagster
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckResult,
    AssetKey,
    AssetSelection,
    DagsterInstance,
    Definitions,
    IOManager,
    PartitionKeyRange,
    RunRequest,
    StaticPartitionsDefinition,
    StepExecutionContext,
    asset,
    asset_check,
    build_output_context,
    define_asset_job,
    materialize,
)

FIX = "Dagster changed a private name: fix resources/dagster_internals.py and its users"
try:
    from resources import dagster_internals as internals
except ImportError as error:  # a name moved or vanished: say where to look, at collection time
    raise ImportError(f"{FIX} ({error})") from error

ROOT = Path(__file__).resolve().parents[1]
#: The Dagster release this contract was verified against (pyproject pins the same).
CONTRACT_VERIFIED_FOR = "1.13.27"
#: Modules that still import private names directly: another branch is rewriting them for
#: PostgreSQL; the merger switches them to resources.dagster_internals (then this list empties).
NOT_YET_MIGRATED: set[str] = set()


def _params(function) -> list[str]:
    return [name for name in inspect.signature(function).parameters if name != "self"]


# --- inventory -----------------------------------------------------------------------------------


def test_the_contract_was_verified_against_the_installed_and_pinned_dagster():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert dagster.__version__ == CONTRACT_VERIFIED_FOR, (
        f"{FIX}: dagster {dagster.__version__} is installed, this contract was verified for "
        f"{CONTRACT_VERIFIED_FOR}; run this file, fix what fails, then update CONTRACT_VERIFIED_FOR"
    )
    assert f'"dagster=={CONTRACT_VERIFIED_FOR}"' in pyproject


def test_the_internals_module_is_the_only_importer_of_private_dagster_names():
    offenders = []
    for folder in ("cryptolake_assets", "resources", "partitions", "benchmarks", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative in NOT_YET_MIGRATED or relative == "resources/dagster_internals.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                elif isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                for name in names:
                    if name.startswith(("dagster._", "dagster_shared", "dagster_duckdb.")):
                        offenders.append(f"{relative}:{node.lineno} {name}")
    assert offenders == [], "import these through resources/dagster_internals.py (or the public API)"


def test_the_internals_module_exports_exactly_its_private_names():
    assert sorted(internals.__all__) == [
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
    for name in internals.__all__:
        assert not hasattr(dagster, name), f"dagster now exports {name} publicly: import it from dagster instead"


# --- run tags ------------------------------------------------------------------------------------

LETTERS = StaticPartitionsDefinition(["a", "b", "c"])


def test_run_tags_have_the_values_the_cli_sensors_dashboards_and_alerts_use():
    assert internals.ASSET_PARTITION_RANGE_START_TAG == "dagster/asset_partition_range_start", FIX
    assert internals.ASSET_PARTITION_RANGE_END_TAG == "dagster/asset_partition_range_end", FIX
    assert internals.PARTITION_NAME_TAG == "dagster/partition", FIX
    assert internals.MULTIDIMENSIONAL_PARTITION_PREFIX == "dagster/partition/", FIX
    request = RunRequest(
        tags={internals.ASSET_PARTITION_RANGE_START_TAG: "a", internals.ASSET_PARTITION_RANGE_END_TAG: "b"}
    )
    assert request.partition_key_range == PartitionKeyRange("a", "b"), FIX


class _PerPartitionMetadata(IOManager):
    """Records per-partition metadata the way resources/partition_metadata.py does (one bulk copy)."""

    def handle_output(self, context, obj):
        from resources.partition_metadata import add_asset_metadata_by_partition

        add_asset_metadata_by_partition(
            context.step_context, context.asset_key, {key: {"rows": len(key) * 10 + i} for i, key in enumerate(obj)}
        )

    def load_input(self, context):
        raise NotImplementedError


@asset(partitions_def=LETTERS, io_manager_key="per_partition")
def _letters(context) -> list[str]:
    """The run's partition keys."""
    return list(context.partition_keys)


def test_range_tags_run_the_range_and_the_metadata_accumulator_records_each_partition(monkeypatch):
    def public_route(*args, **kwargs):
        raise AssertionError(f"{FIX}: the bulk accumulator route failed, the per-key fallback ran")

    monkeypatch.setattr(StepExecutionContext, "add_asset_metadata", public_route)
    result = materialize(
        [_letters],
        resources={"per_partition": _PerPartitionMetadata()},
        tags={internals.ASSET_PARTITION_RANGE_START_TAG: "a", internals.ASSET_PARTITION_RANGE_END_TAG: "b"},
    )
    assert result.output_for_node("_letters") == ["a", "b"], FIX
    events = result.get_asset_materialization_events()
    assert {e.partition: e.materialization.metadata["rows"].value for e in events} == {"a": 10, "b": 11}, FIX
    # the materialization event's data class and the asset event set the batched event log tests for
    assert all(type(e.event_specific_data) is internals.StepMaterializationData for e in events), FIX
    assert events[0].event_specific_data._fields == ("materialization", "asset_lineage"), FIX
    assert all(e.event_type in internals.ASSET_EVENTS for e in events), FIX
    assert {t.value for t in internals.ASSET_EVENTS} == {
        "ASSET_FAILED_TO_MATERIALIZE",
        "ASSET_MATERIALIZATION",
        "ASSET_MATERIALIZATION_PLANNED",
        "ASSET_OBSERVATION",
        "FRESHNESS_STATE_CHANGE",
    }, FIX


def test_metadata_accumulator_holds_per_partition_handles():
    handle = internals.AssetMetadataHandle(asset_key=AssetKey("a"), partition_key="k")
    assert handle == internals.AssetMetadataHandle(asset_key=AssetKey("a"), partition_key="k"), FIX
    accumulator = internals.OutputMetadataAccumulator(per_output_metadata={handle: {"rows": 3}})
    assert accumulator.get_asset_metadata(AssetKey("a"), "k") == {"rows": 3}, FIX
    assert "self._metadata_accumulator" in inspect.getsource(StepExecutionContext), FIX
    assert _params(StepExecutionContext.add_asset_metadata) == ["metadata", "asset_key", "partition_key"]


# --- records -------------------------------------------------------------------------------------


@internals.record
class _LettersOnly(AssetSelection):
    """Like schedules.PartitionedLikeSelection: a selection resolved against whatever assets exist."""

    partitions_def: StaticPartitionsDefinition | None

    def resolve_inner(self, asset_graph, allow_missing: bool):
        return {k for k in asset_graph.materializable_asset_keys if asset_graph.get(k).partitions_def == LETTERS}


@asset(partitions_def=LETTERS)
def _selected() -> int:
    """Selected by _LettersOnly."""
    return 1


@asset
def _unpartitioned() -> int:
    """Not selected."""
    return 1


def test_a_record_asset_selection_resolves_in_a_job():
    assert _LettersOnly(partitions_def=LETTERS) == _LettersOnly(partitions_def=LETTERS), FIX
    assert hash(_LettersOnly(partitions_def=LETTERS)) == hash(_LettersOnly(partitions_def=LETTERS)), FIX
    job = define_asset_job("letters", selection=_LettersOnly(partitions_def=LETTERS))
    defs = Definitions(assets=[_selected, _unpartitioned], jobs=[job])
    assert defs.resolve_job_def("letters").asset_layer.executable_asset_keys == {AssetKey("_selected")}, FIX


def test_copy_replaces_one_field_of_a_planned_check_event():
    subset = LETTERS.subset_with_partition_keys(["a", "b"])
    planned = internals.AssetCheckEvaluationPlanned(asset_key=AssetKey("t"), check_name="c", partitions_subset=subset)
    copied = internals.copy(planned, partitions_subset=None)
    assert copied == internals.AssetCheckEvaluationPlanned(asset_key=AssetKey("t"), check_name="c"), FIX
    assert planned.partitions_subset == subset  # the original is untouched
    assert copied.asset_check_key == AssetCheckKey(AssetKey("t"), "c"), FIX


# --- asset checks --------------------------------------------------------------------------------


def test_a_per_partition_evaluation_carries_its_target_materialization():
    target = internals.AssetCheckEvaluationTargetMaterializationData(storage_id=7, run_id="r", timestamp=1.5)
    evaluation = AssetCheckEvaluation(
        asset_key=AssetKey("t"),
        check_name="c",
        passed=False,
        metadata={"failing_rows": 2},
        target_materialization_data=target,
        blocking=True,
        partition="a",
    )
    assert (target.storage_id, target.run_id, target.timestamp) == (7, "r", 1.5), FIX
    assert (evaluation.target_materialization_data, evaluation.partition) == (target, "a"), FIX
    assert evaluation.metadata["failing_rows"].value == 2  # AssetCheckEvaluation normalizes metadata itself


@asset
def _checked() -> int:
    """Checked below."""
    return 1


@asset_check(asset=_checked)
def _always_fails() -> AssetCheckResult:
    """Fails, so its recorded status is FAILED."""
    return AssetCheckResult(passed=False)


def test_check_history_and_partition_info_report_statuses_of_the_private_enum():
    assert {s.name: s.value for s in internals.AssetCheckExecutionRecordStatus} == {
        "PLANNED": "PLANNED",
        "SUCCEEDED": "SUCCEEDED",
        "FAILED": "FAILED",
    }, FIX
    with DagsterInstance.ephemeral() as instance:
        materialize([_checked, _always_fails], instance=instance, raise_on_error=False)
        key = AssetCheckKey(AssetKey("_checked"), "_always_fails")
        [record] = instance.event_log_storage.get_asset_check_execution_history(key, limit=5)
        assert record.status == internals.AssetCheckExecutionRecordStatus.FAILED, FIX
        assert isinstance(instance.event_log_storage, internals.SqlEventLogStorage), FIX


# --- the database I/O manager base ---------------------------------------------------------------


def test_db_io_manager_base_has_the_slices_and_hooks_duckdb_io_overrides():
    assert internals.TableSlice._fields == ("table", "schema", "database", "columns", "partition_dimensions"), FIX
    assert internals.TablePartitionDimension._fields == ("partition_expr", "partitions"), FIX
    assert internals.DbTypeHandler.__abstractmethods__ == {"handle_output", "load_input", "supported_types"}, FIX
    assert {"connect", "get_select_statement", "get_table_name"} <= set(vars(internals.DbClient)), FIX
    assert _params(internals.DbIOManager.__init__) == [
        "type_handlers",
        "db_client",
        "database",
        "schema",
        "io_manager_name",
        "default_load_type",
    ], FIX
    assert _params(internals.DbIOManager._get_table_slice) == ["context", "output_context"], FIX
    client = object()
    manager = internals.DbIOManager(type_handlers=[], db_client=client, database="lake.duckdb")  # type: ignore[arg-type]
    assert (manager._database, manager._db_client) == ("lake.duckdb", client), FIX
    context = build_output_context(asset_key=AssetKey(["silver", "bars"]), definition_metadata={})
    assert manager._get_table_slice(context, context) == internals.TableSlice(
        table="bars", schema="silver", database="lake.duckdb", columns=None, partition_dimensions=[]
    ), FIX


# --- event-log storage ---------------------------------------------------------------------------


def test_sqlite_event_log_storage_has_the_hooks_the_batched_storage_overrides(tmp_path):
    storage = internals.SqliteEventLogStorage(base_dir=str(tmp_path))
    hooks = {
        "has_table": ["table_name"],
        "_has_asset_key_col_on_connection": ["conn", "column_name"],
        "_connect": ["shard"],
        "_initdb": ["engine"],
        "conn_string_for_shard": ["shard_name"],
        "store_event_batch": ["events"],
        "run_connection": ["run_id"],
        "index_connection": [],
        "index_transaction": [],
        "_store_asset_event_tags": ["conn", "events", "event_ids"],
        "_store_asset_event": ["conn", "event", "event_id"],
        "claim_concurrency_slot": ["concurrency_key", "run_id", "step_key", "priority"],
        "_claim_concurrency_slot": ["concurrency_key", "run_id", "step_key"],
        "_store_asset_check_evaluation_planned": ["event", "event_id"],
        "_event_insert_timestamp": ["event"],
    }
    assert {name: _params(getattr(storage, name))[: len(want)] for name, want in hooks.items()} == hooks, FIX
    assert _params(internals.SqliteEventLogStorage.__init__) == ["base_dir", "inst_data"], FIX
    assert isinstance(storage._initialized_dbs, set) and hasattr(storage, "_db_lock"), FIX
    assert storage.supports_partition_subset_in_asset_materialization_planned_events is False, FIX
    assert isinstance(storage, internals.SqlEventLogStorage), FIX
    assert internals.ConfigurableClassData("m", "C", "{}") == internals.ConfigurableClassData(
        module_name="m", class_name="C", config_yaml="{}"
    ), FIX
    assert internals.SQLITE_BUSY_TIMEOUT_SECONDS == 30, FIX
    storage.dispose()


def test_event_log_tables_have_the_columns_the_batched_writes_and_alert_query_use():
    assert [c.name for c in internals.SqlEventLogStorageTable.columns] == [
        "id",
        "run_id",
        "event",
        "dagster_event_type",
        "timestamp",
        "step_key",
        "asset_key",
        "partition",
    ], FIX
    assert {
        "asset_key",
        "check_name",
        "partition",
        "run_id",
        "execution_status",
        "evaluation_event",
        "evaluation_event_timestamp",
        "evaluation_event_storage_id",
    } <= {c.name for c in internals.AssetCheckExecutionsTable.columns}, FIX
    table = internals.AssetCheckExecutionsTable
    query = internals.db_select([table.c.evaluation_event_storage_id, table.c.evaluation_event])
    assert " ".join(str(query).split()) == (
        "SELECT asset_check_executions.evaluation_event_storage_id, asset_check_executions.evaluation_event "
        "FROM asset_check_executions"
    ), FIX


def test_the_slot_table_and_statuses_the_atomic_sqlite_claim_uses():
    assert {"id", "concurrency_key", "run_id", "step_key", "deleted"} <= {
        c.name for c in internals.ConcurrencySlotsTable.columns
    }, FIX
    assert {s.name for s in internals.ConcurrencySlotStatus} >= {"CLAIMED", "BLOCKED"}, FIX


def test_a_refused_pool_claim_can_be_retried_at_once(tmp_path):
    storage = internals.SqliteEventLogStorage(base_dir=str(tmp_path))
    storage.set_concurrency_slots("duckdb", 1)
    first = storage.claim_concurrency_slot("duckdb", "run-1", "step")
    second = storage.claim_concurrency_slot("duckdb", "run-2", "step")
    assert isinstance(second, internals.ConcurrencyClaimStatus), FIX
    assert (first.is_claimed, second.is_claimed) == (True, False), FIX
    assert second.with_sleep_interval(0.0).sleep_interval == 0.0, FIX
    storage.dispose()


# --- freshness and run health --------------------------------------------------------------------


def test_freshness_states_and_state_changes():
    assert [s.value for s in internals.FreshnessState] == ["PASS", "WARN", "FAIL", "UNKNOWN", "NOT_APPLICABLE"], FIX
    change = internals.FreshnessStateChange(
        key=AssetKey("t"),
        new_state=internals.FreshnessState.FAIL,
        previous_state=internals.FreshnessState.WARN,
        state_change_timestamp=1.0,
    )
    assert (change.key, change.new_state, change.previous_state) == (
        AssetKey("t"),
        internals.FreshnessState.FAIL,
        internals.FreshnessState.WARN,
    ), FIX


def test_a_dead_run_can_be_failed_as_unexpectedly_terminated():
    data = internals.JobFailureData(error=None, failure_reason=internals.RunFailureReason.UNEXPECTED_TERMINATION)
    assert (data.error, data.failure_reason.value) == (None, "UNEXPECTED_TERMINATION"), FIX
    assert _params(DagsterInstance.report_run_failed) == ["dagster_run", "message", "job_failure_data"], FIX


def test_only_a_local_sqlite_instance_has_sqlite_run_storage():
    with DagsterInstance.local_temp() as local, DagsterInstance.ephemeral() as ephemeral:
        assert isinstance(local.run_storage, internals.SqliteRunStorage), FIX
        assert not isinstance(ephemeral.run_storage, internals.SqliteRunStorage), FIX


# --- run-log retention (resources/run_log_retention.py; the purge itself is pinned by
# tests/test_run_log_retention.py::test_dagster_internals_the_purge_relies_on) -------------------


def test_event_type_sets_and_finished_statuses_retention_keeps_in_step_with():
    assert {t.value for t in internals.ASSET_CHECK_EVENTS} == {
        "ASSET_CHECK_EVALUATION",
        "ASSET_CHECK_EVALUATION_PLANNED",
    }, FIX
    assert {k.value: v.value for k, v in internals.EVENT_TYPE_TO_PIPELINE_RUN_STATUS.items()} == {
        "PIPELINE_CANCELED": "CANCELED",
        "PIPELINE_CANCELING": "CANCELING",
        "PIPELINE_ENQUEUED": "QUEUED",
        "PIPELINE_FAILURE": "FAILURE",
        "PIPELINE_START": "STARTED",
        "PIPELINE_STARTING": "STARTING",
        "PIPELINE_SUCCESS": "SUCCESS",
        "RUN_RESUMED": "STARTED",
        "RUN_SUSPENDED": "SUSPENDED",
    }, FIX
    assert [s.value for s in internals.FINISHED_STATUSES] == ["SUCCESS", "FAILURE", "CANCELED"], FIX


def test_tick_retention_keys_and_the_runs_table():
    assert {i.value for i in internals.InstigatorType} >= {"SCHEDULE", "SENSOR"}, FIX
    assert [s.value for s in internals.TickStatus] == ["STARTED", "SKIPPED", "SUCCESS", "FAILURE"], FIX
    assert {"run_id", "status", "create_timestamp"} <= {c.name for c in internals.RunsTable.columns}, FIX


def test_a_local_instance_keeps_compute_logs_under_a_run_id_prefix():
    with DagsterInstance.local_temp() as instance:
        manager = instance.compute_log_manager
        assert isinstance(manager, internals.LocalComputeLogManager), FIX
        assert list(manager.build_log_key_for_run("abc", "step")) == ["abc", "compute_logs", "step"], FIX
