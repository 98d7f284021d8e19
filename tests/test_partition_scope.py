"""Run log lines describe a run's scope in one short line, not by listing the whole universe.

A universe-wide range run logged the 35 symbols on each of its 35 per-symbol lines (560 characters
each); the scope now names its first and last symbol once it has more than three.
"""

import datetime as dt

from cryptolake_assets.partition_scope import scope_from_keys
from partitions import universe_symbols


def test_universe_scope_is_one_short_line():
    symbols = universe_symbols()
    keys = [f"{day}|{symbol}" for day in ("2024-01-01", "2024-01-02", "2024-01-03") for symbol in symbols]
    scope = scope_from_keys(keys)
    text = scope.describe()
    assert (
        text == f"2024-01-01..2024-01-03 (3 days) × {len(symbols)} symbol(s): {scope.symbols[0]}..{scope.symbols[-1]}"
    )
    assert len(text) < 100


def test_small_scope_names_every_symbol():
    scope = scope_from_keys(["2024-01-01|BTCUSDT", "2024-01-01|ETHUSDT"])
    assert scope.days == (dt.date(2024, 1, 1),)
    assert scope.describe().endswith("× 2 symbol(s): " + ", ".join(scope.symbols))
    assert set(scope.symbols) == {"BTCUSDT", "ETHUSDT"}
