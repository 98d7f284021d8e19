"""The medallion partitioning: one partition per UTC day × symbol, and the date-only sibling.

``CRYPTOLAKE_START_DATE`` (YYYY-MM-DD) moves the first partition; the default keeps the UI snappy
while still covering years of history. ``end_offset=1`` exposes today's (still open) day so it can
be refreshed intraday.
"""

import os

from dagster import DailyPartitionsDefinition, MultiPartitionsDefinition, StaticPartitionsDefinition

from partitions.universe import universe_symbols

DEFAULT_START_DATE = "2023-01-01"
START_DATE_ENV_VAR = "CRYPTOLAKE_START_DATE"

DATE_DIMENSION = "date"
SYMBOL_DIMENSION = "symbol"


def start_date() -> str:
    return os.environ.get(START_DATE_ENV_VAR) or DEFAULT_START_DATE


daily_partitions = DailyPartitionsDefinition(start_date=start_date(), timezone="UTC", end_offset=1)
symbol_partitions = StaticPartitionsDefinition(universe_symbols())
daily_symbol_partitions = MultiPartitionsDefinition(
    {DATE_DIMENSION: daily_partitions, SYMBOL_DIMENSION: symbol_partitions}
)

# Column names the DuckDB I/O manager filters on, per dimension.
DAILY_SYMBOL_PARTITION_EXPR = {DATE_DIMENSION: "date", SYMBOL_DIMENSION: "symbol"}
