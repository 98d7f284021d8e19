"""The landing zone of the live stream: rotating JSONL files, one per symbol and time window.

Layout: ``<root>/<SYMBOL>/<YYYY-MM-DD>/<SYMBOL>-<YYYYMMDDTHHMMSS>-<writer>.jsonl``, the window's
UTC start in the name (60 s windows by default; the day is the window's receive day). A file is
written as ``<name>.jsonl.part``, flushed to the OS every ``flush_seconds``, and closed by fsync +
atomic rename once its window is over (or on shutdown): a closed ``.jsonl`` file is complete and
never changes again. A crash loses at most the open file's unflushed tail; ``recover_parts`` turns
the ``.part`` files of dead writers into closed files, cut at their last complete line.

Each line is one received message plus its receive time (epoch ms):
``{"recv_ms":N,"msg":<the message as received>}``; text that is not JSON is kept as a string
(``{"recv_ms":N,"raw":"..."}``); trades fetched over REST to fill a gap are
``{"recv_ms":N,"rest":<historicalTrades item>}`` and gaps REST could not fill
``{"recv_ms":N,"gap":{"from_id":a,"to_id":b,"reason":"..."}}``.
"""

import datetime as dt
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from dagster import ConfigurableResource

DEFAULT_LANDING = "data/landing"
LANDING_ENV_VAR = "CRYPTOLAKE_LANDING"
ROTATE_ENV_VAR = "CRYPTOLAKE_LANDING_ROTATE_SECONDS"
DEFAULT_ROTATE_SECONDS = 60
PART_SUFFIX = ".part"
UNROUTED = "_UNROUTED"  # messages whose symbol cannot be told (not JSON, no stream name)
_NAME = re.compile(r"^(?P<symbol>[A-Z0-9_]+)-(?P<start>\d{8}T\d{6})-(?P<writer>[A-Za-z0-9]+)\.jsonl$")


def landing_root() -> Path:
    """``CRYPTOLAKE_LANDING``, else ``landing/`` beside a local DuckDB file (``data/landing`` by
    default, so a demo or test on another DuckDB file lands beside it), made absolute."""
    configured = os.environ.get(LANDING_ENV_VAR)
    if configured:
        return Path(configured).expanduser().resolve()
    from resources.settings import duckdb_path

    database = duckdb_path()
    if database.startswith("md:") or database == ":memory:":
        return Path(DEFAULT_LANDING).resolve()
    return Path(database).parent / "landing"


def rotate_seconds() -> int:
    """``CRYPTOLAKE_LANDING_ROTATE_SECONDS`` (default 60: one file per symbol and minute)."""
    value = int(os.environ.get(ROTATE_ENV_VAR) or DEFAULT_ROTATE_SECONDS)
    if not 1 <= value <= 3600:
        raise ValueError(f"{ROTATE_ENV_VAR}={value}: expected 1..3600 seconds")
    return value


@dataclass(frozen=True)
class LandedFile:
    path: Path
    symbol: str
    window_start: dt.datetime
    writer: str

    @property
    def day(self) -> dt.date:
        return self.window_start.date()


def parse_name(path: Path) -> LandedFile | None:
    match = _NAME.match(path.name)
    if match is None:
        return None
    start = dt.datetime.strptime(match["start"], "%Y%m%dT%H%M%S").replace(tzinfo=dt.UTC)
    return LandedFile(path, match["symbol"], start, match["writer"])


def closed_files(root: Path, symbol: str | None = None, day: dt.date | None = None) -> list[LandedFile]:
    """Closed landing files (optionally of one symbol and/or receive day), oldest window first."""
    root = Path(root)
    symbols = [symbol] if symbol else sorted(p.name for p in root.iterdir() if p.is_dir()) if root.exists() else []
    found: list[LandedFile] = []
    for sym in symbols:
        days = [root / sym / day.isoformat()] if day else sorted((root / sym).glob("????-??-??"))
        for folder in days:
            if folder.is_dir():
                found.extend(f for f in map(parse_name, folder.glob("*.jsonl")) if f is not None)
    return sorted(found, key=lambda f: (f.window_start, f.symbol, f.path.name))


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _close_part(part: Path) -> Path:
    final = part.with_name(part.name[: -len(PART_SUFFIX)])
    os.replace(part, final)
    _fsync_dir(part.parent)
    return final


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_parts(root: Path) -> list[Path]:
    """Close the ``.part`` files of writers that are gone (a crash): cut at the last complete line,
    fsync, rename. Parts of live writers are left alone. Returns the recovered files."""
    recovered = []
    for part in sorted(Path(root).glob(f"*/*/*.jsonl{PART_SUFFIX}")):
        info = parse_name(part.with_name(part.name[: -len(PART_SUFFIX)]))
        if info is None or not info.writer.startswith("p"):
            continue
        if _pid_alive(int(info.writer[1:].split("x")[0])):
            continue
        with open(part, "r+b") as handle:
            data = handle.read()
            keep = data.rfind(b"\n") + 1
            if keep != len(data):
                handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())
        if keep == 0:
            part.unlink()
            continue
        recovered.append(_close_part(part))
    return recovered


class _OpenFile:
    __slots__ = ("part", "window", "handle", "lines")

    def __init__(self, part: Path, window: int, handle: IO[str]):
        self.part, self.window, self.handle, self.lines = part, window, handle, 0


class LandingWriter:
    """Appends lines to the open file of each symbol, rotating per window (not thread-safe)."""

    def __init__(self, root: Path, rotate_seconds: int = DEFAULT_ROTATE_SECONDS, writer_id: str | None = None):
        self.root = Path(root)
        self.window_ms = int(rotate_seconds) * 1000
        # p<pid>x<n>: recover_parts checks the pid; the counter keeps restarts in one process apart
        self.writer_id = writer_id or f"p{os.getpid()}x{_next_writer()}"
        self._open: dict[str, _OpenFile] = {}
        self.closed: list[Path] = []
        self.lines_written = 0

    def _open_file(self, symbol: str, window: int) -> _OpenFile:
        start = dt.datetime.fromtimestamp(window * self.window_ms / 1000, dt.UTC)
        folder = self.root / symbol / start.date().isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        part = folder / f"{symbol}-{start:%Y%m%dT%H%M%S}-{self.writer_id}.jsonl{PART_SUFFIX}"
        handle = open(part, "a", encoding="utf-8", buffering=1 << 16)
        opened = _OpenFile(part, window, handle)
        self._open[symbol] = opened
        return opened

    def write(self, symbol: str, recv_ms: int, line: str) -> None:
        """Append one line (no trailing newline) received at ``recv_ms`` to the symbol's file."""
        window = recv_ms // self.window_ms
        current = self._open.get(symbol)
        if current is None or current.window != window:
            if current is not None:
                self._close(symbol)
            current = self._open_file(symbol, window)
        current.handle.write(line)
        current.handle.write("\n")
        current.lines += 1
        self.lines_written += 1

    def write_message(self, symbol: str, recv_ms: int, raw: str, is_json: bool) -> None:
        if is_json and "\n" not in raw:
            self.write(symbol, recv_ms, f'{{"recv_ms":{recv_ms},"msg":{raw}}}')
        else:
            self.write(symbol, recv_ms, json.dumps({"recv_ms": recv_ms, "raw": raw}, separators=(",", ":")))

    def write_record(self, symbol: str, recv_ms: int, kind: str, record: dict) -> None:
        self.write(symbol, recv_ms, json.dumps({"recv_ms": recv_ms, kind: record}, separators=(",", ":")))

    def flush(self) -> None:
        """Hand buffered lines to the OS (a process crash then loses nothing written so far)."""
        for opened in self._open.values():
            opened.handle.flush()

    def close_due(self, now_ms: int) -> list[Path]:
        """Close the files whose window is over at ``now_ms``."""
        return self.finish(self.detach_due(now_ms))

    def detach_due(self, now_ms: int) -> list[_OpenFile]:
        """Take the files whose window is over out of rotation (writes go to new files); ``finish``
        them, e.g. in a worker thread so their fsync does not stall the receiving loop."""
        window = now_ms // self.window_ms
        due = [symbol for symbol, opened in self._open.items() if opened.window < window]
        return [self._open.pop(symbol) for symbol in due]

    def finish(self, detached: list[_OpenFile]) -> list[Path]:
        """Flush, fsync, close and atomically rename detached files."""
        closed = [self._finish(opened) for opened in detached]
        self.closed.extend(closed)
        return closed

    def close_all(self) -> list[Path]:
        return [self._close(symbol) for symbol in list(self._open)]

    def open_files(self) -> list[Path]:
        return [opened.part for opened in self._open.values()]

    def _close(self, symbol: str) -> Path:
        return self.finish([self._open.pop(symbol)])[0]

    @staticmethod
    def _finish(opened: _OpenFile) -> Path:
        opened.handle.flush()
        os.fsync(opened.handle.fileno())
        opened.handle.close()
        return _close_part(opened.part)


_writers = 0


def _next_writer() -> int:
    global _writers
    _writers += 1
    return _writers


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number from 1, text) of a closed landing file."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            yield number, line.rstrip("\n")


COMPACTED_ENV_VAR = "CRYPTOLAKE_COMPACTED"


class StreamLanding(ConfigurableResource):
    """Where the collector lands raw stream files and where daily compaction writes Parquet."""

    root: str
    compacted_root: str

    @classmethod
    def from_env(cls) -> "StreamLanding":
        """``CRYPTOLAKE_LANDING`` (default data/landing) and ``CRYPTOLAKE_COMPACTED`` (default ``compacted/`` beside it)."""
        root = landing_root()
        compacted = os.environ.get(COMPACTED_ENV_VAR) or str(root.parent / "compacted")
        return cls(root=str(root), compacted_root=str(Path(compacted).expanduser().resolve()))
