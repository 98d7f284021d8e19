"""Turn a table's Pandera model and its rule list into partitioned Dagster asset checks.

One ``multi_asset_check`` per table loads only the checked partition(s) through the DuckDB I/O
manager, runs ``Model.validate(frame, lazy=True)`` once and reports one asset check per rule: the
rule named ``schema`` collects the model's structural failures (columns, dtypes, nulls, value
domains), every other rule is the model check of the same name or a function of the frame and the
run (completeness needs the partition keys and the clock; referential rules the dimension tables,
read through the run's I/O manager). ERROR rules are blocking: a failing partition stops the
downstream steps of its run. WARN rules inform. A rule that cannot judge yet (its dimension is not
materialized) reports a failed WARN saying so.
"""

import datetime as dt
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandera.polars as pa
import polars as pl
from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetIn,
    AssetKey,
    AssetRecordsFilter,
    MetadataValue,
    PartitionsDefinition,
    PythonObjectDagsterType,
    build_input_context,
    build_output_context,
    multi_asset_check,
)

from cryptolake_assets.metadata import markdown_preview
from partitions import daily_symbol_partitions
from partitions.daily_symbol import DATE_DIMENSION, SYMBOL_DIMENSION
from resources.dagster_event_log import PER_PARTITION_CHECK_RESULTS_MAX
from resources.dagster_internals import AssetCheckEvaluationTargetMaterializationData
from resources.duckdb_io import DuckDBWriteError

ERROR, WARN = AssetCheckSeverity.ERROR, AssetCheckSeverity.WARN
SCHEMA_RULE = "schema"
SAMPLE_ROWS = 10
# Range runs up to this many partitions record one check result per partition (see build_table_checks);
# the instance's event log plans per-partition check rows for exactly those runs.
PER_PARTITION_RESULTS_MAX = PER_PARTITION_CHECK_RESULTS_MAX


@dataclass(frozen=True)
class RuleContext:
    """What a rule may know besides the rows: the checked partition keys, the clock, the interval."""

    partition_keys: tuple[str, ...] = ()
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    interval: str | None = None
    # The dimension tables a referential rule compares with, by asset path ("gold/dim_symbol"), as
    # read through the I/O manager; None (or absent): the dimension is not materialized yet.
    dimensions: Mapping[str, pl.DataFrame | None] = field(default_factory=dict)


class Unverifiable(Exception):
    """A rule cannot judge the rows yet (its dimension table is not materialized): the result fails
    as a WARN saying why, instead of passing or blocking the run."""


Evaluator = Callable[[pl.DataFrame, RuleContext], pl.DataFrame]


@dataclass(frozen=True)
class Rule:
    name: str
    severity: AssetCheckSeverity
    why: str
    evaluate: Evaluator | None = None  # None: the model's check of this name (``schema``: its structure)


@dataclass(frozen=True)
class TableQuality:
    asset: tuple[str, ...]
    model: type[pa.DataFrameModel]
    partitions_def: PartitionsDefinition | None
    rules: tuple[Rule, ...]
    needs_interval: bool = False  # completeness of an empty partition needs the configured interval
    dimensions: tuple[str, ...] = ()  # asset paths ("gold/dim_symbol") the referential rules read

    @property
    def key(self) -> AssetKey:
        return AssetKey(list(self.asset))

    @property
    def layer(self) -> str:
        return self.asset[0]

    def model_rule_names(self) -> set[str]:
        return {rule.name for rule in self.rules if rule.evaluate is None and rule.name != SCHEMA_RULE}


@dataclass(frozen=True)
class Finding:
    rule: Rule
    count: int
    rows: pl.DataFrame  # the failing rows (or, for ``schema``, the failure cases)
    unverifiable: str | None = None  # why the rule could not judge the rows (reported as WARN)

    @property
    def severity(self) -> AssetCheckSeverity:
        return WARN if self.unverifiable else self.rule.severity

    @property
    def passed(self) -> bool:
        return self.count == 0


def model_checks(model: type[pa.DataFrameModel]) -> set[str]:
    return {check.name for check in model.to_schema().checks}


def validate_catalog(table: TableQuality) -> None:
    """Every model-backed rule must name a check of the model (a typo would pass silently)."""
    unknown = table.model_rule_names() - model_checks(table.model)
    if unknown:
        raise ValueError(f"{'/'.join(table.asset)}: rules {sorted(unknown)} are not checks of {table.model.__name__}")
    names = [rule.name for rule in table.rules]
    if len(names) != len(set(names)):
        raise ValueError(f"{'/'.join(table.asset)}: duplicate rule names {names}")


def evaluate_table(table: TableQuality, frame: pl.DataFrame, context: RuleContext) -> list[Finding]:
    """Run the model once and every extra rule; one finding per rule, in catalog order."""
    try:
        table.model.validate(frame, lazy=True)
        cases = None
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
    named = table.model_rule_names()
    findings = []
    for rule in table.rules:
        if rule.evaluate is not None:
            try:
                failing = rule.evaluate(frame, context)
            except Unverifiable as reason:
                findings.append(Finding(rule, len(frame), frame.head(SAMPLE_ROWS), unverifiable=str(reason)))
                continue
            findings.append(Finding(rule, len(failing), failing))
        elif cases is None:
            findings.append(Finding(rule, 0, frame.clear()))
        elif rule.name == SCHEMA_RULE:
            structural = cases.filter(~pl.col("check").is_in(sorted(named)))
            findings.append(Finding(rule, len(structural), structural.select("column", "check", "failure_case")))
        else:
            findings.append(_model_rule_finding(rule, frame, cases.filter(pl.col("check") == rule.name)))
    return findings


def _model_rule_finding(rule: Rule, frame: pl.DataFrame, cases: pl.DataFrame) -> Finding:
    indices = sorted(set(cases["index"].drop_nulls().to_list()))
    errors = cases.filter(pl.col("index").is_null())  # the check itself could not run (e.g. a missing column)
    if not errors.is_empty():
        return Finding(rule, len(indices) + len(errors), errors.select("column", "check", "failure_case"))
    return Finding(rule, len(indices), frame[indices] if indices else frame.clear())


def result_metadata(finding: Finding, rows_checked: int, partitions: Sequence[str]) -> dict[str, Any]:
    rule = finding.rule
    metadata: dict[str, Any] = {
        "failing_rows": finding.count,
        "rows_checked": rows_checked,
        "rule": MetadataValue.text(f"{rule.name} [{rule.severity.value}]: {rule.why}"),
        "failing_sample": markdown_preview(finding.rows, rows=SAMPLE_ROWS),
    }
    if finding.unverifiable:
        metadata["unverifiable"] = MetadataValue.text(finding.unverifiable)
    if len(partitions) > 1:
        metadata["partitions_checked"] = len(partitions)
        if not finding.passed and {"date", "symbol"} <= set(finding.rows.columns):
            failing = finding.rows.select(pl.format("{}|{}", "date", "symbol")).to_series().unique().sort()
            metadata["failing_partitions"] = MetadataValue.text(", ".join(failing.head(50).to_list()))
    return metadata


def partition_evaluation(
    key: AssetKey, finding: Finding, rows_checked: int, partition: str, target
) -> AssetCheckEvaluation:
    """A finding recorded on one partition (the UI's per-partition check status)."""
    return AssetCheckEvaluation(
        asset_key=key,
        check_name=finding.rule.name,
        passed=finding.passed,
        severity=finding.severity,
        description=describe_finding(finding),
        metadata=result_metadata(finding, rows_checked, (partition,)),  # AssetCheckEvaluation normalizes it
        target_materialization_data=target,
        blocking=finding.rule.severity == ERROR,
        partition=partition,
    )


if [d.name for d in daily_symbol_partitions.partitions_defs] != [DATE_DIMENSION, SYMBOL_DIMENSION]:
    raise RuntimeError("partition_date_symbol splits keys as date|symbol: the dimensions changed")


@functools.lru_cache(maxsize=1 << 18)
def partition_date_symbol(partition_key: str) -> tuple[dt.date, str | None]:
    """(day, symbol) of a ``date|symbol`` key; (day, None) of a ``date`` key.

    A multi-partition key is its dimensions' keys joined by ``|`` in the order of the dimension
    names (Dagster's ``MultiPartitionKey``): ``date`` then ``symbol``. Split here rather than
    through ``get_partition_key_from_str``, which builds and validates a key object each time
    (11 s of a 9,000-partition silver run's 137 s, for 154,000 calls).
    """
    if "|" in partition_key:
        day, symbol = partition_key.split("|")
        return dt.date.fromisoformat(day), symbol
    return dt.date.fromisoformat(partition_key), None


def partition_rows(frame: pl.DataFrame, partition_key: str) -> pl.DataFrame:
    """The rows of one ``date|symbol`` or ``date`` partition of a table slice."""
    day, symbol = partition_date_symbol(partition_key)
    if symbol is not None:
        return frame.filter((pl.col("date") == day) & (pl.col("symbol") == symbol))
    return frame.filter(pl.col("date") == day)


def _rows_per_partition(frame: pl.DataFrame, partitions: Sequence[str]) -> dict[str, int]:
    """Rows of each ``date|symbol`` or ``date`` partition key of a slice, in one pass."""
    if frame.is_empty() or not partitions:
        return {}
    keys = frame.select([c for c in ("date", "symbol") if c in frame.columns and ("|" in partitions[0] or c == "date")])
    counts = keys.with_columns(partition=_partition_of(keys, partitions)).group_by("partition").len()
    return dict(counts.iter_rows())


def _partition_of(row_keys: pl.DataFrame, partitions: Sequence[str]) -> pl.Series:
    if "|" in partitions[0]:
        return row_keys.select(pl.format("{}|{}", "date", "symbol")).to_series()
    return row_keys["date"].cast(pl.String)


def failing_partitions(
    table: TableQuality,
    finding: Finding,
    rows: pl.DataFrame,
    partitions: Sequence[str],
    context_of: Callable[[tuple[str, ...]], RuleContext],
) -> dict[str, Finding]:
    """The range finding split into one finding per failing partition. Failing rows that name their
    partition (date[, symbol]) are split by it; otherwise (structure failures, a rule that could not
    run) each partition is evaluated on its own rows."""
    if finding.passed:
        return {}
    keys = {"date", "symbol"} if "|" in partitions[0] else {"date"}
    if not finding.unverifiable and keys <= set(finding.rows.columns) and not finding.rows.is_empty():
        labelled = finding.rows.with_columns(_partition=_partition_of(finding.rows, partitions))
        return {
            str(key): Finding(finding.rule, len(group), group.drop("_partition"))
            for (key,), group in labelled.group_by("_partition", maintain_order=True)
            if key in set(partitions)
        }
    split = {}
    for partition in partitions:
        [own] = [
            f
            for f in evaluate_table(table, partition_rows(rows, partition), context_of((partition,)))
            if f.rule.name == finding.rule.name
        ]
        if not own.passed:
            split[partition] = own
    return split


def _failed_partitions(
    context: AssetCheckExecutionContext, key: AssetKey, checks: Sequence[str], partitions: Sequence[str]
) -> dict[str, set[str]]:
    """Per check, the partitions among ``partitions`` whose latest recorded result failed."""
    from dagster import AssetCheckKey

    # Private: Dagster 1.13's per-partition check status lives in the event log storage and has no
    # public reader; tests/test_quality_range_status.py pins the behaviour this relies on.
    from resources.dagster_internals import AssetCheckExecutionRecordStatus

    # No partition_keys filter: a two-year range would bind tens of thousands of SQL parameters.
    infos = context.instance.event_log_storage.get_asset_check_partition_info(
        [AssetCheckKey(key, name) for name in checks]
    )
    wanted = set(partitions)
    failed: dict[str, set[str]] = {}
    for info in infos:
        if info.partition_key in wanted and info.latest_execution_status == AssetCheckExecutionRecordStatus.FAILED:
            failed.setdefault(info.check_key.name, set()).add(info.partition_key)
    return failed


def _target_materialization(context: AssetCheckExecutionContext, key: AssetKey, partition: str):
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
    ).records
    if not records:
        return None
    record = records[0]
    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=record.storage_id, run_id=record.event_log_entry.run_id, timestamp=record.timestamp
    )


def build_table_checks(table: TableQuality) -> AssetChecksDefinition:
    """One Dagster asset check per rule of ``table``, evaluated together on one load of the slice.

    A single-partition run records each result on its partition. A range run of up to
    ``PER_PARTITION_RESULTS_MAX`` partitions evaluates every partition on its own rows and records
    one result per partition and check (the UI's per-partition status). Larger range runs evaluate
    the slice once and record one result per check for the whole range (naming the failing
    partitions) plus, per check, one evaluation on each failing partition and on each partition whose
    recorded failure now passes: every partition's status is true without an event per passing
    partition (each costs an event-log write). Rules judge a partition from its own rows only, so
    its result does not depend on the range it was checked in. A failing ERROR rule fails the step,
    which blocks the downstream steps of the run.
    """
    validate_catalog(table)
    specs = [
        AssetCheckSpec(
            rule.name,
            asset=table.key,
            description=f"[{rule.severity.value}] {rule.why}",
            blocking=rule.severity == ERROR,
            partitions_def=table.partitions_def,
            metadata={"severity": rule.severity.value, "layer": table.layer},
        )
        for rule in table.rules
    ]

    @multi_asset_check(
        name=f"{'_'.join(table.asset)}_quality",
        specs=specs,
        ins={"rows": AssetIn(key=table.key)},
        can_subset=True,
        pool="duckdb",
        required_resource_keys={"io_manager", *(("binance",) if table.needs_interval else ())},
        description=f"Pandera {table.model.__name__} and the {table.layer} rules of {'/'.join(table.asset)}.",
    )
    def _quality(context: AssetCheckExecutionContext, rows: pl.DataFrame):
        partitions = tuple(str(k) for k in context.partition_keys) if table.partitions_def is not None else ()
        # Every partition's outcome, published to the lake's quality/check_results before Dagster
        # records the results (a failed publish fails the step; its re-run publishes again).
        outcomes: list[tuple[str | None, Finding, int]] = []
        results = list(_evaluate(context, rows, partitions, outcomes))
        lake = getattr(context.resources.io_manager, "lake", None)
        if lake is not None:
            from cryptolake_assets.quality.lake_results import publish_check_results

            publish_check_results(lake, table, partitions, outcomes, context.op_execution_context.run_id)
        yield from results

    def _evaluate(context: AssetCheckExecutionContext, rows: pl.DataFrame, partitions: tuple[str, ...], outcomes: list):
        interval = context.resources.binance.interval if table.needs_interval else None
        selected = {key.name for key in context.selected_asset_check_keys}
        dimensions = {path: load_dimension(context, path) for path in table.dimensions}
        context_of = lambda keys: RuleContext(partition_keys=keys, interval=interval, dimensions=dimensions)  # noqa: E731
        findings = [f for f in evaluate_table(table, rows, context_of(partitions)) if f.rule.name in selected]
        if 1 < len(partitions) <= PER_PARTITION_RESULTS_MAX:
            yield from _per_partition_evaluations(context, rows, partitions, findings, context_of, outcomes)
            return
        if len(partitions) > 1:
            # A large range records the per-partition truth where it matters: one evaluation on each
            # failing partition, and one on each partition whose latest recorded result failed and
            # now passes (so it resolves). Partitions that passed before and pass now need no event.
            previously_failed = _failed_partitions(context, table.key, [f.rule.name for f in findings], partitions)
            counts = _rows_per_partition(rows, partitions)
            for finding in findings:
                if finding.unverifiable:
                    # A rule that could not judge the range (its dimension table is not materialized
                    # yet, e.g. a UI backfill runs the dimensions beside the facts) says so once for
                    # the range below. Evaluating each partition alone would repeat the same reason
                    # thousands of times, one pandera call and one stored event each (a symbol's full
                    # history: 3,398 per rule). The lake keeps the reason on every partition.
                    outcomes.extend((partition, finding, counts.get(partition, 0)) for partition in partitions)
                    continue
                failing = failing_partitions(table, finding, rows, partitions, context_of)
                passing = Finding(finding.rule, 0, finding.rows.clear())
                for partition in partitions:  # the lake keeps every partition's outcome
                    outcomes.append((partition, failing.get(partition) or passing, counts.get(partition, 0)))
                for partition in sorted(set(failing) | previously_failed.get(finding.rule.name, set())):
                    partition_finding = failing.get(partition) or Finding(finding.rule, 0, finding.rows.clear())
                    yield partition_evaluation(
                        table.key,
                        partition_finding,
                        len(partition_rows(rows, partition)),
                        partition,
                        _target_materialization(context, table.key, partition),
                    )
        else:
            outcomes.extend((partitions[0] if partitions else None, finding, len(rows)) for finding in findings)
        for finding in findings:
            yield AssetCheckResult(
                asset_key=table.key,
                check_name=finding.rule.name,
                passed=finding.passed,
                severity=finding.severity,
                description=describe_finding(finding),
                metadata=result_metadata(finding, len(rows), partitions),
            )

    def _per_partition_evaluations(context, rows, partitions, findings, context_of, outcomes):
        """One evaluation per partition and check, from ONE evaluation of the slice split by
        partition (``failing_partitions``): a new day's 25 partitions took 9 s evaluated one by one
        (pandera's cost per call, issue 17). A finding that could not judge the rows is evaluated per
        partition, so its reason is each partition's own."""
        counts = _rows_per_partition(rows, partitions)
        own: dict[str, dict[str, Finding]] = {partition: {} for partition in partitions}
        for finding in findings:
            if finding.unverifiable:
                for partition in partitions:
                    [alone] = [
                        f
                        for f in evaluate_table(table, partition_rows(rows, partition), context_of((partition,)))
                        if f.rule.name == finding.rule.name
                    ]
                    own[partition][finding.rule.name] = alone
                continue
            failing = failing_partitions(table, finding, rows, partitions, context_of)
            for partition in partitions:
                own[partition][finding.rule.name] = failing.get(partition) or Finding(
                    finding.rule, 0, finding.rows.clear()
                )
        for partition in partitions:
            target = _target_materialization(context, table.key, partition)
            for finding in own[partition].values():
                outcomes.append((partition, finding, counts.get(partition, 0)))
                yield partition_evaluation(table.key, finding, counts.get(partition, 0), partition, target)

    return _quality


_POLARS_FRAME = PythonObjectDagsterType(pl.DataFrame)  # selects the I/O manager's eager polars handler


def load_dimension(context: AssetCheckExecutionContext, path: str) -> pl.DataFrame | None:
    """A whole dimension table read through the run's I/O manager (wherever it stores the lake),
    or None while the dimension has never been materialized. Read here rather than as an asset
    input: an input of a table that does not exist yet fails the step before any rule runs, and a
    referential rule then has an honest answer (cannot verify yet) instead of none."""
    key = AssetKey(path.split("/"))
    if context.instance.get_latest_materialization_event(key) is None:
        return None
    try:
        # The whole table (no partition slice, no column selection): dimensions are small.
        stored = build_output_context(asset_key=key, definition_metadata={})
        loading = build_input_context(
            asset_key=key, instance=context.instance, dagster_type=_POLARS_FRAME, upstream_output=stored
        )
        return context.resources.io_manager.load_input(loading)
    except DuckDBWriteError:
        return None  # recorded by another instance's storage but absent from this lake


def describe_finding(finding: Finding) -> str:
    if finding.unverifiable:
        return f"cannot verify: {finding.unverifiable}"
    return finding.rule.why if finding.passed else f"{finding.count} failing row(s): {finding.rule.why}"
