"""What a run covers: the UTC days × symbols of its partition keys, for single and range runs alike."""

import datetime as dt
from dataclasses import dataclass

from dagster import AssetExecutionContext, MultiPartitionKey

from cryptolake_assets.retries import permanent_errors
from partitions import DATE_DIMENSION, SYMBOL_DIMENSION, daily_symbol_partitions
from resources.dagster_internals import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    MULTIDIMENSIONAL_PARTITION_PREFIX,
)


@dataclass(frozen=True)
class PartitionScope:
    days: tuple[dt.date, ...]
    symbols: tuple[str, ...]

    @property
    def start(self) -> dt.datetime:
        return dt.datetime.combine(self.days[0], dt.time(), tzinfo=dt.UTC)

    @property
    def end(self) -> dt.datetime:
        return dt.datetime.combine(self.days[-1] + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)

    def describe(self) -> str:
        days = f"{self.days[0]}" if len(self.days) == 1 else f"{self.days[0]}..{self.days[-1]} ({len(self.days)} days)"
        symbols = ", ".join(self.symbols) if len(self.symbols) <= 3 else f"{self.symbols[0]}..{self.symbols[-1]}"
        return f"{days} × {len(self.symbols)} symbol(s): {symbols}"


def scope_from_keys(partition_keys: list[str]) -> PartitionScope:
    """Days and symbols of a set of ``date|symbol`` keys (a run covers a rectangle of them)."""
    days: set[dt.date] = set()
    symbols: set[str] = set()
    for key in partition_keys:
        multi = key if isinstance(key, MultiPartitionKey) else daily_symbol_partitions.get_partition_key_from_str(key)
        by_dim = multi.keys_by_dimension
        days.add(dt.date.fromisoformat(by_dim[DATE_DIMENSION]))
        symbols.add(by_dim[SYMBOL_DIMENSION])
    if not days:
        raise ValueError("a run of a date × symbol asset needs at least one partition key")
    return PartitionScope(days=tuple(sorted(days)), symbols=tuple(sorted(symbols)))


class InconsistentPartitionTagsError(RuntimeError):
    """A run tagged with both a partition range and single-partition dimension tags."""


def run_scope(context: AssetExecutionContext) -> PartitionScope:
    """The run's rectangle; works for a single partition and a partition range run.

    Dagster 1.13.27 gives the range runs of a *job* backfill (launched from the job page) the
    ``dagster/partition/<dimension>`` tags of the backfill's first partition; the run then resolves
    to that one partition and would report success while the rest of the range is never written.
    Such a run fails loudly, and without retries, instead (launch backfills from the asset graph;
    see docs/tutorial.md, "Backfilling from the UI").
    """
    with permanent_errors(InconsistentPartitionTagsError):
        _refuse_inconsistent_tags(context)
    return scope_from_keys(list(context.partition_keys))


def _refuse_inconsistent_tags(context: AssetExecutionContext) -> None:
    tags = context.run.tags
    if ASSET_PARTITION_RANGE_START_TAG in tags and any(
        tag.startswith(MULTIDIMENSIONAL_PARTITION_PREFIX) for tag in tags
    ):
        raise InconsistentPartitionTagsError(
            f"run {context.run.run_id} has a partition range ({tags[ASSET_PARTITION_RANGE_START_TAG]}"
            f"...{tags.get(ASSET_PARTITION_RANGE_END_TAG)}) and single-partition tags "
            f"{ {k: v for k, v in tags.items() if k.startswith(MULTIDIMENSIONAL_PARTITION_PREFIX)} }: "
            "Dagster would write only one partition of the range. Launch the backfill from the asset "
            "graph (Materialize → partitions) instead of the job page."
        )
