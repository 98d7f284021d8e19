"""Settings read from the environment (one place), with the defaults docs/configuration.md documents."""

import os
from pathlib import Path

from resources.duckdb_io import DEFAULT_DUCKDB_PATH, DUCKDB_PATH_ENV_VAR

SOURCE_ENV_VAR = "CRYPTOLAKE_SOURCE"
STORAGE_ENV_VAR = "CRYPTOLAKE_STORAGE"
#: ``duckdb``: one local DuckDB file (the default); ``lake``: every table a Delta table at ``CRYPTOLAKE_LAKE``.
STORAGES = ("duckdb", "lake")
SOURCES = ("simulated", "binance")


def source() -> str:
    """``simulated`` (offline fakes) or ``binance`` (live APIs, the default outside the demo)."""
    value = (os.environ.get(SOURCE_ENV_VAR) or "binance").strip().lower()
    if value not in SOURCES:
        raise ValueError(f"{SOURCE_ENV_VAR}={value!r}: expected one of {', '.join(SOURCES)}")
    return value


def storage() -> str:
    """``duckdb`` (the default: one DuckDB file, one writer) or ``lake`` (Delta tables at
    ``CRYPTOLAKE_LAKE``, writable from several processes and hosts). Anything else is refused."""
    value = (os.environ.get(STORAGE_ENV_VAR) or "duckdb").strip().lower()
    if value not in STORAGES:
        raise ValueError(f"{STORAGE_ENV_VAR}={value!r}: expected one of {', '.join(STORAGES)}")
    return value


def duckdb_path() -> str:
    """The DuckDB database: ``CRYPTOLAKE_DUCKDB`` or ``data/cryptolake.duckdb`` (made absolute)."""
    value = os.environ.get(DUCKDB_PATH_ENV_VAR) or DEFAULT_DUCKDB_PATH
    if value.startswith("md:") or value == ":memory:":
        return value
    return str(Path(value).expanduser().resolve())


def default_lake_root() -> str | None:
    """``lake/`` beside a local DuckDB file (``data/lake`` by default), so a run against another
    DuckDB file (a test, a second environment) publishes beside it; ``CRYPTOLAKE_LAKE`` overrides."""
    database = duckdb_path()
    if database.startswith("md:") or database == ":memory:":
        return None
    return str(Path(database).parent / "lake")
