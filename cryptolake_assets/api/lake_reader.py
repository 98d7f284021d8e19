"""Delta tables of the lake, loaded once per table version and cached with their query results."""

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import polars as pl
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from resources.lake import table_uri


class TableNotPublished(LookupError):
    """The table has no Delta commit yet (its asset was never materialized)."""


class _CachedTable:
    def __init__(self, uri: str, storage_options: dict[str, str]):
        self.uri, self.storage_options = uri, storage_options
        self.table: DeltaTable | None = None
        self.version = -1
        self.frame: pl.DataFrame | None = None
        self.checked_at = 0.0
        self.lock = threading.Lock()


class LakeReader:
    """Reads ``<root>/<layer>/<table>``; a table's version is re-checked at most every
    ``refresh_seconds`` (one log listing), its rows reloaded only when the version changed, and
    query results are memoised per (table, version, query) so a repeated query costs a lookup."""

    def __init__(self, root: str, storage_options: dict[str, str] | None = None, refresh_seconds: float = 0.5,
                 max_cached_results: int = 512):
        self.root = root
        self.storage_options = dict(storage_options or {})
        self.refresh_seconds = refresh_seconds
        self._tables: dict[tuple[str, str], _CachedTable] = {}
        self._results: OrderedDict[Hashable, Any] = OrderedDict()
        self._max_results = max_cached_results
        self._lock = threading.Lock()

    def _entry(self, layer: str, name: str) -> _CachedTable:
        with self._lock:
            key = (layer, name)
            if key not in self._tables:
                self._tables[key] = _CachedTable(table_uri(self.root, layer, name), self.storage_options)
            return self._tables[key]

    def snapshot(self, layer: str, name: str) -> tuple[int, pl.DataFrame]:
        """(version, rows) of the table's newest version (at most ``refresh_seconds`` old)."""
        entry = self._entry(layer, name)
        with entry.lock:
            now = time.monotonic()
            if entry.frame is None or now - entry.checked_at >= self.refresh_seconds:
                try:
                    if entry.table is None:
                        entry.table = DeltaTable(entry.uri, storage_options=entry.storage_options)
                    else:
                        entry.table.update_incremental()
                except TableNotFoundError as exc:
                    raise TableNotPublished(f"{layer}/{name} is not published in the lake yet") from exc
                entry.checked_at = now
                version = entry.table.version()
                if version != entry.version or entry.frame is None:
                    entry.frame = pl.from_arrow(entry.table.to_pyarrow_table())
                    entry.version = version
            return entry.version, entry.frame

    def query(self, layer: str, name: str, key: Hashable, compute: Callable[[pl.DataFrame], Any]) -> tuple[int, Any]:
        """``compute(rows)`` for the table's current version, memoised per (table, version, key)."""
        version, frame = self.snapshot(layer, name)
        cache_key = (layer, name, version, key)
        with self._lock:
            if cache_key in self._results:
                self._results.move_to_end(cache_key)
                return version, self._results[cache_key]
        result = compute(frame)
        with self._lock:
            self._results[cache_key] = result
            while len(self._results) > self._max_results:
                self._results.popitem(last=False)
        return version, result

    def versions(self) -> dict[str, int]:
        with self._lock:
            return {f"{layer}/{name}": entry.version for (layer, name), entry in self._tables.items()}
