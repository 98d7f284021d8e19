"""Staging between a fetching op and its DuckDB write: a Parquet file per step output.

A graph-backed bronze asset downloads in one op (outside the ``duckdb`` pool) and writes in the
next (inside it); what was downloaded crosses the step boundary through this I/O manager, so it
works with any executor (the steps may run in different processes) and survives a retry of the
write step. Layout: ``<root>/<run_id>/<step_key>.<output>.parquet`` plus a ``.json`` sidecar for the
download's notes (request counts, empty partitions). The root is ``CRYPTOLAKE_STAGING``, else
``staging/`` under the Dagster instance's storage directory (where Dagster's own filesystem I/O
manager keeps step outputs), so every process of a run finds it. Files are written to a temporary
name and renamed, the sidecar last: a crash mid-write leaves no half file to load. Run folders
older than ``retention_days`` are pruned when a new one is written.

Storage is a resource (``StagingIOManager``): object storage later is another implementation of the
same two methods.
"""

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from dagster import ConfigurableIOManager, InitResourceContext, InputContext, OutputContext
from pydantic import PrivateAttr

STAGING_ENV_VAR = "CRYPTOLAKE_STAGING"
STAGING_IO_MANAGER_KEY = "bronze_staging_io_manager"


def _with(path: Path, suffix: str) -> Path:
    """``path`` with ``suffix`` appended (its name holds dots: ``<step_key>.<output>``)."""
    return path.with_name(path.name + suffix)


@dataclass(frozen=True)
class StagedFrame:
    """What a fetching op hands to its write op: the rows and JSON-able notes about the download."""

    frame: pl.DataFrame
    notes: dict[str, Any] = field(default_factory=dict)


class StagingIOManager(ConfigurableIOManager):
    """Stores ``StagedFrame`` outputs as Parquet + JSON under ``root`` (see the module docstring)."""

    root: str | None = None
    retention_days: float = 7.0

    _resolved_root: Path | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        configured = self.root or os.environ.get(STAGING_ENV_VAR)
        if configured:
            self._resolved_root = Path(configured).expanduser().resolve()
        elif context.instance is not None:
            self._resolved_root = Path(context.instance.storage_directory()) / "staging"

    def _root(self) -> Path:
        if self._resolved_root is not None:
            return self._resolved_root
        configured = self.root or os.environ.get(STAGING_ENV_VAR)
        if not configured:
            raise RuntimeError(f"{type(self).__name__}: no root configured and no Dagster instance to stage under")
        return Path(configured).expanduser().resolve()

    def _path(self, context: InputContext | OutputContext) -> Path:
        # get_identifier(): [run_id, step_key, output_name] of the output (of the upstream output for
        # an input), so a re-executed write step in a new run still loads from the original run.
        output = context if isinstance(context, OutputContext) else context.upstream_output
        if output is None:
            raise RuntimeError(f"{type(self).__name__} loads only the outputs of upstream steps")
        run_id, *rest = output.get_identifier()
        return self._root() / run_id / ".".join(rest)

    def handle_output(self, context: OutputContext, obj: StagedFrame) -> None:
        if not isinstance(obj, StagedFrame):
            raise TypeError(f"{type(self).__name__} stores StagedFrame outputs, got {type(obj).__name__}")
        base = self._path(context)
        base.parent.mkdir(parents=True, exist_ok=True)
        self._prune(base.parent.parent, keep=base.parent)
        parquet, sidecar = _with(base, ".parquet"), _with(base, ".json")
        sidecar.unlink(missing_ok=True)  # the sidecar marks a complete pair: never beside an old file
        tmp = _with(parquet, ".tmp")
        obj.frame.write_parquet(tmp)
        os.replace(tmp, parquet)
        tmp = _with(sidecar, ".tmp")
        tmp.write_text(json.dumps({"rows": len(obj.frame), "notes": obj.notes}, sort_keys=True))
        os.replace(tmp, sidecar)
        context.add_output_metadata({"staged_rows": len(obj.frame), "staged_path": str(parquet)})

    def load_input(self, context: InputContext) -> StagedFrame:
        base = self._path(context)
        sidecar = json.loads(_with(base, ".json").read_text())
        frame = pl.read_parquet(_with(base, ".parquet"))
        if len(frame) != sidecar["rows"]:
            raise OSError(f"{base}.parquet holds {len(frame)} rows, its sidecar says {sidecar['rows']}")
        return StagedFrame(frame, sidecar["notes"])

    def _prune(self, root: Path, keep: Path) -> None:
        cutoff = time.time() - self.retention_days * 86400
        for folder in root.iterdir():
            if folder != keep and folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
