"""Partition definitions: daily × symbol, the symbol universe and its categories."""

from partitions.daily_symbol import (
    DAILY_SYMBOL_PARTITION_EXPR,
    DATE_DIMENSION,
    SYMBOL_DIMENSION,
    daily_partitions,
    daily_symbol_partitions,
    symbol_partitions,
)
from partitions.universe import (
    SymbolInfo,
    UniverseError,
    categories,
    load_universe,
    symbol_info,
    universe_symbols,
)

__all__ = [
    "DAILY_SYMBOL_PARTITION_EXPR",
    "DATE_DIMENSION",
    "SYMBOL_DIMENSION",
    "SymbolInfo",
    "UniverseError",
    "categories",
    "daily_partitions",
    "daily_symbol_partitions",
    "load_universe",
    "symbol_info",
    "symbol_partitions",
    "universe_symbols",
]
