"""The symbol universe: which Binance USDT pairs CryptoLake tracks, their categories and listing windows.

The universe lives in one CSV file (``partitions/universe.csv``); ``CRYPTOLAKE_UNIVERSE`` points at a
replacement file with the same columns so users can bring their own.
"""

import csv
import datetime as dt
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DEFAULT_UNIVERSE_PATH = Path(__file__).with_name("universe.csv")
UNIVERSE_ENV_VAR = "CRYPTOLAKE_UNIVERSE"
REQUIRED_COLUMNS = (
    "symbol",
    "base_asset",
    "name",
    "category",
    "coingecko_id",
    "listed_on",
    "delisted_on",
    "stablecoin",
)


class UniverseError(ValueError):
    """The universe file is missing, malformed, or names a symbol that is not in it."""


@dataclass(frozen=True)
class SymbolInfo:
    symbol: str
    base_asset: str
    name: str
    category: str
    coingecko_id: str
    listed_on: dt.date
    delisted_on: dt.date | None
    stablecoin: bool
    notes: str = ""

    def is_listed_on(self, day: dt.date) -> bool:
        """True when the pair traded on Binance spot on ``day`` (UTC)."""
        return self.listed_on <= day and (self.delisted_on is None or day <= self.delisted_on)


def universe_path() -> Path:
    return Path(os.environ.get(UNIVERSE_ENV_VAR) or DEFAULT_UNIVERSE_PATH)


def _parse_date(value: str, field: str, line: int, path: Path) -> dt.date | None:
    value = value.strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise UniverseError(f"{path}:{line}: {field}={value!r} is not a YYYY-MM-DD date") from exc


def read_universe(path: Path | str) -> tuple[SymbolInfo, ...]:
    """Parse a universe CSV (``#`` lines are comments) into ``SymbolInfo`` records, validating it."""
    path = Path(path)
    if not path.exists():
        raise UniverseError(f"universe file {path} does not exist (set {UNIVERSE_ENV_VAR})")
    lines = [
        (number, text)
        for number, text in enumerate(path.read_text().splitlines(), start=1)
        if text.strip() and not text.lstrip().startswith("#")
    ]
    if not lines:
        raise UniverseError(f"universe file {path} has no header line")
    reader = csv.DictReader([text for _, text in lines])
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise UniverseError(f"universe file {path} lacks columns {missing}")
    symbols: list[SymbolInfo] = []
    seen: set[str] = set()
    for (line, _), row in zip(lines[1:], reader):
        symbol = row["symbol"].strip().upper()
        if not symbol.isalnum():
            raise UniverseError(f"{path}:{line}: symbol {symbol!r} is not an alphanumeric pair")
        if symbol in seen:
            raise UniverseError(f"{path}:{line}: symbol {symbol} is listed twice")
        seen.add(symbol)
        listed_on = _parse_date(row["listed_on"], "listed_on", line, path)
        if listed_on is None:
            raise UniverseError(f"{path}:{line}: {symbol} needs a listed_on date")
        delisted_on = _parse_date(row["delisted_on"], "delisted_on", line, path)
        if delisted_on is not None and delisted_on < listed_on:
            raise UniverseError(f"{path}:{line}: {symbol} is delisted before it is listed")
        symbols.append(
            SymbolInfo(
                symbol=symbol,
                base_asset=row["base_asset"].strip(),
                name=row["name"].strip(),
                category=row["category"].strip(),
                coingecko_id=row["coingecko_id"].strip(),
                listed_on=listed_on,
                delisted_on=delisted_on,
                stablecoin=row["stablecoin"].strip().lower() in ("true", "1", "yes"),
                notes=(row.get("notes") or "").strip(),
            )
        )
    if not symbols:
        raise UniverseError(f"universe file {path} lists no symbols")
    return tuple(symbols)


@lru_cache(maxsize=8)
def _load_cached(path: str) -> tuple[SymbolInfo, ...]:
    return read_universe(path)


@lru_cache(maxsize=8)
def _by_symbol(path: str) -> dict[str, SymbolInfo]:
    return {info.symbol: info for info in _load_cached(path)}


def load_universe() -> tuple[SymbolInfo, ...]:
    """The active universe (``CRYPTOLAKE_UNIVERSE`` or the bundled file), in file order.

    Read once per process and path: the universe defines the partitions, so a changed file takes
    effect when the code location reloads (as the partitions do).
    """
    return _load_cached(str(universe_path()))


def symbol_info(symbol: str) -> SymbolInfo:
    """Look up one symbol; an unknown symbol is a clear error naming the universe file."""
    info = _by_symbol(str(universe_path())).get(symbol.strip().upper())
    if info is not None:
        return info
    raise UniverseError(
        f"unknown symbol {symbol!r}: it is not in the universe file {universe_path()} "
        f"(known: {', '.join(i.symbol for i in load_universe())})"
    )


def universe_symbols() -> list[str]:
    return [info.symbol for info in load_universe()]


def categories() -> list[str]:
    """Categories in first-seen order."""
    return list(dict.fromkeys(info.category for info in load_universe()))
