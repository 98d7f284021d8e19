"""Which market-data source a database holds, so simulated and live data never meet in one file.

``cryptolake demo`` fills a database from the simulated exchange. Without a record of that, a later
``cryptolake ui`` (whose schedules default to the live source) or ``cryptolake backfill`` would
write live Binance bars into the demo's file, next to simulated ones, with nothing to tell them
apart. The instance (``DAGSTER_HOME``) keeps a small JSON record: database path → source, written
the first time the CLI runs the pipeline on a database. A later command on the same database
uses the recorded source when ``CRYPTOLAKE_SOURCE`` is not set, and refuses another source.
"""

import json
import os
from pathlib import Path

from resources.settings import SOURCE_ENV_VAR, source

RECORD_FILE = "cryptolake_sources.json"


class SourceMismatchError(ValueError):
    """The database holds data of another source than the one configured."""


def _record_path(home: Path) -> Path:
    return home / RECORD_FILE


def recorded_sources(home: Path) -> dict[str, str]:
    path = _record_path(home)
    if not path.exists():
        return {}
    try:
        return dict(json.loads(path.read_text()))
    except (ValueError, TypeError):
        raise SourceMismatchError(f"{path} is not valid JSON: fix or delete it") from None


def resolve_source(home: Path, database: str) -> str:
    """The source to run on ``database``: the recorded one unless ``CRYPTOLAKE_SOURCE`` says otherwise
    (then refused when the database already holds another source's data). Sets the environment."""
    recorded = recorded_sources(home).get(database)
    explicit = os.environ.get(SOURCE_ENV_VAR)
    if explicit is None and recorded is not None:
        os.environ[SOURCE_ENV_VAR] = recorded
    chosen = source()
    if recorded is not None and recorded != chosen:
        raise SourceMismatchError(
            f"{database} holds {recorded} data; {SOURCE_ENV_VAR}={chosen} would mix {chosen} and {recorded} rows in one "
            f"database. Point CRYPTOLAKE_DUCKDB (or --duckdb) at another file for {chosen} data"
        )
    return chosen


def record_source(home: Path, database: str, chosen: str) -> None:
    records = recorded_sources(home)
    if records.get(database) == chosen:
        return
    records[database] = chosen
    path = _record_path(home)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(records, indent=2, sort_keys=True))
    temporary.replace(path)
