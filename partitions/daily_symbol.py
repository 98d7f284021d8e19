"""The medallion partitioning: one partition per UTC day × symbol, and the date-only sibling.

``CRYPTOLAKE_START_DATE`` (YYYY-MM-DD) moves the first partition; the default keeps the UI snappy
while still covering years of history. ``end_offset=1`` exposes today's (still open) day so it can
be refreshed intraday.
"""

import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from threading import Lock
from typing import cast

from dagster import (
    DailyPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    PartitionKeyRange,
    PartitionsDefinition,
    StaticPartitionsDefinition,
)

from partitions.universe import universe_symbols

DEFAULT_START_DATE = "2023-01-01"
START_DATE_ENV_VAR = "CRYPTOLAKE_START_DATE"

DATE_DIMENSION = "date"
SYMBOL_DIMENSION = "symbol"


def start_date() -> str:
    return os.environ.get(START_DATE_ENV_VAR) or DEFAULT_START_DATE


class RangeMemoMultiPartitionsDefinition(MultiPartitionsDefinition):
    """``MultiPartitionsDefinition`` that remembers the keys of its last few key ranges.

    Creating a range run, Dagster lists the run's partition keys once per asset and once per asset
    check it plans (``DagsterRun.get_resolved_partitions_subset_for_events``): a full-history worker
    run of 85,000 date x symbol partitions and some 30 checks built 2.5 million ``MultiPartitionKey``s,
    80 s before the run started (py-spy, benchmarks/scale_bench.py, ADR 0005). The keys in a range
    depend only on its two ends (both dimensions are fixed lists between them), so they are computed
    once. Only the public method ``get_partition_keys_in_range`` is overridden; equality, hashing and
    snapshots are the parent's (``isinstance`` checks).
    """

    MEMO_RANGES = 4

    def __init__(self, partitions_defs: Mapping[str, PartitionsDefinition]):
        super().__init__(partitions_defs)
        self._memo: OrderedDict[tuple[str, str], tuple[MultiPartitionKey, ...]] = OrderedDict()
        self._memo_lock = Lock()

    def get_partition_keys_in_range(
        self, partition_key_range: PartitionKeyRange, dynamic_partitions_store=None
    ) -> Sequence[MultiPartitionKey]:
        ends = (partition_key_range.start, partition_key_range.end)
        with self._memo_lock:
            keys = self._memo.get(ends)
            if keys is not None:
                self._memo.move_to_end(ends)
                return list(keys)
        keys = tuple(
            cast(MultiPartitionKey, key)
            for key in super().get_partition_keys_in_range(partition_key_range, dynamic_partitions_store)
        )
        with self._memo_lock:
            self._memo[ends] = keys
            while len(self._memo) > self.MEMO_RANGES:
                self._memo.popitem(last=False)
        return list(keys)


daily_partitions = DailyPartitionsDefinition(start_date=start_date(), timezone="UTC", end_offset=1)
symbol_partitions = StaticPartitionsDefinition(universe_symbols())
daily_symbol_partitions = RangeMemoMultiPartitionsDefinition(
    {DATE_DIMENSION: daily_partitions, SYMBOL_DIMENSION: symbol_partitions}
)

# Column names the DuckDB I/O manager filters on, per dimension.
DAILY_SYMBOL_PARTITION_EXPR = {DATE_DIMENSION: "date", SYMBOL_DIMENSION: "symbol"}
