"""Binance's public kline dumps (data.binance.vision), checksum-verified, as a Dagster resource.

Whole past months come from ``/data/spot/monthly/klines/{S}/{i}/{S}-{i}-{YYYY-MM}.zip`` and the
closed days of the current month from ``daily/``. Every zip is verified against its ``.CHECKSUM``
(SHA-256, ``sha256sum`` format, with or without a trailing newline) **before** it is opened; a
mismatch raises ``ArchiveChecksumError`` and nothing from that file is used. A 404 means "not
published (yet)": that range is reported missing so the caller fetches it over REST. A host that
cannot be reached raises ``ArchiveUnavailableError``, which ``fetch_klines_archive_first`` turns
into a warning and a REST fallback, so a blocked archive never fails the klines lineage.

Rows go through ``resources.kline_format.bronze_klines_frame`` (the one place that handles the µs
timestamps of 2025+ dumps), with provenance ``source = "archive:<zip name>:<sha256>"`` per row.
"""

import datetime as dt
import hashlib
import io
import logging
import os
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import polars as pl
from pydantic import Field, field_validator

from resources.http_source import HTTPSourceResource, SourceHTTPError, SourceUnavailableError, snippet
from resources.kline_format import (
    INTERVAL_MS,
    KlineFormatError,
    bronze_klines_frame,
    bronze_klines_frame_from_text,
    datetime_to_ms,
    empty_bronze_klines,
)
from resources.settings import source as configured_source

DEFAULT_BASE_URL = "https://data.binance.vision"
BASE_URL_ENV_VAR = "CRYPTOLAKE_ARCHIVE_URL"
ENABLED_ENV_VAR = "CRYPTOLAKE_ARCHIVE"
INTERVAL_ENV_VAR = "CRYPTOLAKE_INTERVAL"
SOURCE_PREFIX = "archive"
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")

Range = tuple[dt.datetime, dt.datetime]
log = logging.getLogger(__name__)


class ArchiveError(SourceHTTPError):
    """The archive answered something unusable (other than 404)."""


class ArchiveChecksumError(ArchiveError):
    """A dump does not match its ``.CHECKSUM`` (or the CHECKSUM is malformed): the file is refused."""


class ArchiveFormatError(ArchiveError, KlineFormatError):
    """A verified zip that is not a Binance kline dump (not a zip, no CSV member, bad rows)."""


class ArchiveUnavailableError(SourceUnavailableError):
    """The archive host cannot be reached (blocked, down, DNS): callers fall back to REST."""


@dataclass(frozen=True)
class VerifiedDump:
    """A dump whose bytes matched its published SHA-256."""

    name: str  # the zip's file name, e.g. BTCUSDT-1h-2024-01.zip
    sha256: str
    content: bytes

    @property
    def provenance(self) -> str:
        return f"{SOURCE_PREFIX}:{self.name}:{self.sha256}"


@dataclass
class ArchiveFetch:
    """What ``BinanceArchiveClient.fetch_klines`` got: rows, what is missing, and what it used."""

    frame: pl.DataFrame
    missing: list[Range]
    files: list[str] = field(default_factory=list)
    not_published: list[str] = field(default_factory=list)


def parse_checksum(text: str, zip_name: str) -> str:
    """The hex digest of a ``sha256sum`` line ``<hex>  <name>`` for ``zip_name`` (trailing newline optional)."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if len(lines) != 1:
        raise ArchiveChecksumError(f"{zip_name}.CHECKSUM: expected one '<sha256>  <name>' line, got {text[:200]!r}")
    parts = lines[0].split(None, 1)
    if len(parts) != 2 or not _SHA256.match(parts[0]):
        raise ArchiveChecksumError(f"{zip_name}.CHECKSUM: not a sha256sum line: {lines[0][:200]!r}")
    listed = parts[1].strip().lstrip("*")
    if Path(listed).name != zip_name:
        raise ArchiveChecksumError(f"{zip_name}.CHECKSUM lists another file: {listed!r}")
    return parts[0].lower()


def verify_dump(content: bytes, checksum: str, zip_name: str) -> VerifiedDump:
    """Check ``content`` against its CHECKSUM text; raises ``ArchiveChecksumError`` on any mismatch."""
    expected = parse_checksum(checksum, zip_name)
    actual = hashlib.sha256(content).hexdigest()
    if actual != expected:
        raise ArchiveChecksumError(
            f"{zip_name}: SHA-256 {actual} does not match the published {expected} "
            f"({len(content)} bytes); the file was refused and nothing from it was used"
        )
    return VerifiedDump(name=zip_name, sha256=actual, content=content)


def read_verified_file(zip_path: Path | str) -> VerifiedDump:
    """A dump on disk next to its ``<name>.zip.CHECKSUM``, verified."""
    zip_path = Path(zip_path)
    checksum_path = zip_path.with_name(zip_path.name + ".CHECKSUM")
    if not checksum_path.exists():
        raise ArchiveChecksumError(f"{zip_path.name}: no {checksum_path.name} beside it; refusing an unverified dump")
    return verify_dump(zip_path.read_bytes(), checksum_path.read_text(), zip_path.name)


def dump_fields(dump: VerifiedDump) -> pl.DataFrame:
    """The CSV fields of a verified dump as text columns (a header row, as in futures dumps, is skipped)."""
    try:
        with zipfile.ZipFile(io.BytesIO(dump.content)) as archive:
            members = [name for name in archive.namelist() if name.lower().endswith(".csv")]
            if len(members) != 1:
                raise ArchiveFormatError(f"{dump.name}: expected one CSV member, found {archive.namelist()}")
            text = archive.read(members[0])
    except zipfile.BadZipFile as exc:
        raise ArchiveFormatError(f"{dump.name}: not a readable zip ({exc})") from exc
    if not text.strip():
        return pl.DataFrame()
    frame = pl.read_csv(io.BytesIO(text), has_header=False, infer_schema=False, truncate_ragged_lines=False)
    if frame.height and not str(frame[0, 0]).strip().isdigit():
        frame = frame.slice(1)
    return frame


def dump_rows(dump: VerifiedDump) -> list[tuple[str, ...]]:
    """The CSV rows of a verified dump, as tuples of text fields."""
    return dump_fields(dump).rows()


def dump_frame(dump: VerifiedDump, *, symbol: str, interval: str, ingested_at: dt.datetime) -> pl.DataFrame:
    """Bronze rows of a verified dump, provenance ``archive:<name>:<sha256>`` (built column-wise)."""
    try:
        fields = dump_fields(dump)
        if fields.is_empty():
            return bronze_klines_frame(
                [], symbol=symbol, interval=interval, source=dump.provenance, ingested_at=ingested_at
            )
        return bronze_klines_frame_from_text(
            fields, symbol=symbol, interval=interval, source=dump.provenance, ingested_at=ingested_at
        )
    except (KlineFormatError, pl.exceptions.PolarsError) as exc:
        if isinstance(exc, ArchiveFormatError):
            raise
        raise ArchiveFormatError(f"{dump.name}: {exc}") from exc


def _month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _next_month(day: dt.date) -> dt.date:
    return dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _at(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def merge_ranges(ranges: list[Range]) -> list[Range]:
    merged: list[Range] = []
    for start, end in sorted(ranges):
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


class BinanceArchiveClient(HTTPSourceResource):
    """Checksum-verified Binance spot kline dumps (monthly, and daily for the current month)."""

    source_label = "Binance archive"
    simulated_base_url = "https://simulated.data.binance.local"

    base_url: str = Field(
        default=DEFAULT_BASE_URL, description="Archive root (mirror/proxy), see CRYPTOLAKE_ARCHIVE_URL"
    )
    interval: str = Field(default="1h", description=f"Kline interval, one of {', '.join(INTERVAL_MS)}")
    enabled: bool = Field(default=True, description="False: klines come from REST only (CRYPTOLAKE_ARCHIVE=off)")
    use_daily_for_current_month: bool = Field(
        default=True, description="Use daily dumps for the closed days of the current month"
    )
    timeout_seconds: float = Field(default=60.0, gt=0, le=600)
    max_retries: int = Field(default=2, ge=0, le=10, description="Retries after the first attempt")

    @field_validator("interval")
    @classmethod
    def _known_interval(cls, value: str) -> str:
        if value not in INTERVAL_MS:
            raise ValueError(f"unsupported interval {value!r}; supported: {', '.join(INTERVAL_MS)}")
        return value

    @classmethod
    def from_env(cls, **overrides: Any) -> "BinanceArchiveClient":
        """``CRYPTOLAKE_SOURCE`` (simulated → the offline archive), ``CRYPTOLAKE_INTERVAL``, ``CRYPTOLAKE_ARCHIVE_URL``."""
        settings: dict[str, Any] = {"source": "simulated" if configured_source() == "simulated" else "live"}
        if os.environ.get(INTERVAL_ENV_VAR):
            settings["interval"] = os.environ[INTERVAL_ENV_VAR].strip()
        if os.environ.get(BASE_URL_ENV_VAR):
            settings["base_url"] = os.environ[BASE_URL_ENV_VAR].strip().rstrip("/")
        if os.environ.get(ENABLED_ENV_VAR, "").strip().lower() in ("0", "off", "false", "no"):
            settings["enabled"] = False
        return cls(**(settings | overrides))

    def configured_base_url(self) -> str:
        return self.base_url

    def simulated_handler(self) -> Callable[[httpx.Request], httpx.Response]:
        from resources.simulated.archive_server import SimulatedArchiveServer

        return SimulatedArchiveServer(seed=self.simulation_seed, clock=self._clock).handle_request

    # -- files ------------------------------------------------------------------------------
    def dump_path(self, symbol: str, label: str) -> str:
        """``data/spot/monthly/...`` for a YYYY-MM label, ``data/spot/daily/...`` for YYYY-MM-DD."""
        period = "daily" if len(label) == 10 else "monthly"
        symbol = symbol.strip().upper()
        return f"data/spot/{period}/klines/{symbol}/{self.interval}/{symbol}-{self.interval}-{label}.zip"

    def download(self, path: str) -> VerifiedDump | None:
        """The verified dump at ``path``; None when it is not published (404)."""
        zip_name = path.rsplit("/", 1)[-1]
        checksum = self._fetch(path + ".CHECKSUM", what=f"{zip_name}.CHECKSUM")
        if checksum is None:
            return None
        content = self._fetch(path, what=zip_name)
        if content is None:
            return None
        try:
            text = checksum.decode("utf-8")
        except UnicodeDecodeError:
            raise ArchiveChecksumError(f"{zip_name}.CHECKSUM is not text") from None
        return verify_dump(content, text, zip_name)

    def _fetch(self, path: str, *, what: str) -> bytes | None:
        try:
            response = self.get(path, what=what)
        except SourceUnavailableError as exc:
            raise ArchiveUnavailableError(str(exc), status=exc.status, url=exc.url) from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise ArchiveError(
                f"{self.source_label}: GET {response.request.url} returned HTTP {response.status_code}: {snippet(response)}",
                status=response.status_code,
                url=str(response.request.url),
            )
        return response.content

    # -- klines -----------------------------------------------------------------------------
    def plan(self, start: dt.datetime, end: dt.datetime) -> list[tuple[str, Range]]:
        """(label, covered range) of the dumps that can serve ``[start, end)``: whole closed months
        (monthly) and whole closed days of the current month (daily)."""
        today = self.now().astimezone(dt.UTC).date()
        current_month = _month_start(today)
        pieces: list[tuple[str, Range]] = []
        month = _month_start(start.astimezone(dt.UTC).date())
        while _at(month) < end:
            following = _next_month(month)
            if month < current_month:
                if start <= _at(month) and _at(following) <= end:
                    pieces.append((month.strftime("%Y-%m"), (_at(month), _at(following))))
            elif month == current_month and self.use_daily_for_current_month:
                day = month
                while day < today:
                    if start <= _at(day) and _at(day + dt.timedelta(days=1)) <= end:
                        pieces.append((day.isoformat(), (_at(day), _at(day + dt.timedelta(days=1)))))
                    day += dt.timedelta(days=1)
            month = following
        return pieces

    def fetch_klines(self, symbol: str, start: dt.datetime, end: dt.datetime) -> tuple[pl.DataFrame, list[Range]]:
        """(bronze rows from the archive within ``[start, end)``, ranges the archive did not cover)."""
        result = self.fetch(symbol, start, end)
        return result.frame, result.missing

    def fetch(self, symbol: str, start: dt.datetime, end: dt.datetime) -> ArchiveFetch:
        """Like ``fetch_klines`` with the files used and the dumps not (yet) published."""
        symbol = symbol.strip().upper()
        if start >= end:
            return ArchiveFetch(empty_bronze_klines(), [])
        ingested_at = self.now()
        frames = [empty_bronze_klines()]
        covered: list[Range] = []
        result = ArchiveFetch(empty_bronze_klines(), [])
        for label, piece in self.plan(start, end):
            dump = self.download(self.dump_path(symbol, label))
            if dump is None:
                result.not_published.append(f"{symbol}-{self.interval}-{label}.zip")
                continue
            frames.append(dump_frame(dump, symbol=symbol, interval=self.interval, ingested_at=ingested_at))
            covered.append(piece)
            result.files.append(dump.name)
        start_ms, end_ms = datetime_to_ms(start), datetime_to_ms(end)
        result.frame = (
            pl.concat(frames, how="vertical")
            .filter((pl.col("open_time") >= start_ms) & (pl.col("open_time") < end_ms))
            .unique(subset="open_time", keep="last", maintain_order=True)
            .sort("open_time")
        )
        result.missing = _complement(start, end, merge_ranges(covered))
        return result


def _complement(start: dt.datetime, end: dt.datetime, covered: list[Range]) -> list[Range]:
    missing, cursor = [], start
    for piece_start, piece_end in covered:
        if piece_start > cursor:
            missing.append((cursor, piece_start))
        cursor = max(cursor, piece_end)
    if cursor < end:
        missing.append((cursor, end))
    return missing


@dataclass
class HybridFetch:
    """Klines from the archive and REST together, with where each part came from."""

    frame: pl.DataFrame
    archive_files: list[str]
    rest_ranges: list[Range]
    warnings: list[str]


def fetch_klines_archive_first(
    binance: Any,
    archive: BinanceArchiveClient | None,
    symbol: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    warn: Callable[[str], None] | None = None,
) -> HybridFetch:
    """Klines for ``[start, end)``: whole past months (and then the closed days of the current
    month) from the archive, everything else from ``binance.fetch_klines`` (REST). A range without
    a whole past month goes to REST alone (fewer requests than daily dumps). An unreachable archive
    is a warning and the whole range goes to REST; a checksum mismatch raises."""
    warn = warn or log.warning
    if archive is None or not archive.enabled or not any(len(label) == 7 for label, _ in archive.plan(start, end)):
        return HybridFetch(binance.fetch_klines(symbol, start, end), [], [(start, end)], [])
    if archive.interval != binance.interval:
        raise ValueError(f"archive interval {archive.interval!r} differs from the REST interval {binance.interval!r}")
    warnings: list[str] = []
    try:
        fetched = archive.fetch(symbol, start, end)
    except ArchiveUnavailableError as exc:
        message = f"{symbol}: archive unreachable, using REST for the whole range: {exc}"
        warnings.append(message)
        warn(message)
        fetched = ArchiveFetch(empty_bronze_klines(), [(start, end)])
    frames = [fetched.frame]
    for range_start, range_end in fetched.missing:
        frames.append(binance.fetch_klines(symbol, range_start, range_end))
    frame = (
        pl.concat(frames, how="vertical")
        .unique(subset="open_time", keep="first", maintain_order=True)
        .sort("open_time")
    )
    return HybridFetch(frame, fetched.files, fetched.missing, warnings)
