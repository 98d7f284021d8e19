"""Parse closed landing files into bronze trades, quotes, a quarantine (with reasons) and open gaps.

Pure: files in, frames out. A trade belongs to the UTC day of its trade time (a trade of 23:59:59.9
received after midnight sits in the next day's first file, which is read too); a quote to the day
it was received (spot bookTicker has no event time). Trades are de-duplicated on trade id (an
overlap of connections, a REST fill of ids that arrived after all), quotes on update id. Nothing is
dropped silently: a line or message that cannot be a trade or quote goes to the quarantine with
the file, line number and reason.
"""

import datetime as dt
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from resources.landing import LandedFile, closed_files, read_lines

TRADES_SCHEMA = pl.Schema(
    {
        "date": pl.Date,
        "symbol": pl.String,
        "trade_id": pl.Int64,
        "price": pl.String,
        "qty": pl.String,
        "trade_time": pl.Int64,
        "event_time": pl.Int64,
        "is_buyer_maker": pl.Boolean,
        "is_best_match": pl.Boolean,
        "recv_ms": pl.Int64,
        "source": pl.String,
    }
)
QUOTES_SCHEMA = pl.Schema(
    {
        "date": pl.Date,
        "symbol": pl.String,
        "update_id": pl.Int64,
        "bid": pl.String,
        "bid_qty": pl.String,
        "ask": pl.String,
        "ask_qty": pl.String,
        "recv_ms": pl.Int64,
    }
)
QUARANTINE_SCHEMA = pl.Schema(
    {
        "date": pl.Date,
        "symbol": pl.String,
        "file": pl.String,
        "line": pl.Int64,
        "recv_ms": pl.Int64,
        "reason": pl.String,
        "raw": pl.String,
    }
)
GAPS_SCHEMA = pl.Schema({"symbol": pl.String, "from_id": pl.Int64, "to_id": pl.Int64, "reason": pl.String})
NEXT_DAY_MINUTES = 2  # trades of day D received in the first minutes of D+1
_RAW_MAX = 2000


@dataclass(frozen=True)
class ParsedLanding:
    trades: pl.DataFrame
    quotes: pl.DataFrame
    quarantine: pl.DataFrame
    gaps: pl.DataFrame
    files: int
    lines: int
    duplicates: int


def files_for(root: Path, day: dt.date, symbol: str) -> list[LandedFile]:
    """Closed files of the day plus the next day's first minutes (late trades of the day)."""
    nxt = day + dt.timedelta(days=1)
    limit = dt.datetime.combine(nxt, dt.time(), dt.UTC) + dt.timedelta(minutes=NEXT_DAY_MINUTES)
    return closed_files(root, symbol, day) + [f for f in closed_files(root, symbol, nxt) if f.window_start < limit]


def _number(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _day_of(ms: int) -> dt.date:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).date()


def _trade_problem(data: dict, symbol: str) -> str | None:
    if data.get("e") != "trade":
        return f"event type {data.get('e')!r} is not 'trade'"
    if data.get("s") != symbol:
        return f"symbol {data.get('s')!r} in a {symbol} file"
    for name in ("t", "T"):
        if not isinstance(data.get(name), int) or isinstance(data.get(name), bool):
            return f"field {name!r} is not an integer: {data.get(name)!r}"
    for name in ("p", "q"):
        number = _number(data.get(name))
        if number is None or number <= 0:
            return f"field {name!r} is not a positive number: {data.get(name)!r}"
    if not isinstance(data.get("m"), bool):
        return f"field 'm' is not a boolean: {data.get('m')!r}"
    return None


def _rest_problem(item: dict) -> str | None:
    for name in ("id", "time"):
        if not isinstance(item.get(name), int) or isinstance(item.get(name), bool):
            return f"REST field {name!r} is not an integer: {item.get(name)!r}"
    for name in ("price", "qty"):
        number = _number(item.get(name))
        if number is None or number <= 0:
            return f"REST field {name!r} is not a positive number: {item.get(name)!r}"
    if not isinstance(item.get("isBuyerMaker"), bool):
        return "REST field 'isBuyerMaker' is not a boolean"
    return None


def _quote_problem(data: dict, symbol: str) -> str | None:
    if data.get("s") != symbol:
        return f"symbol {data.get('s')!r} in a {symbol} file"
    if not isinstance(data.get("u"), int) or isinstance(data.get("u"), bool):
        return f"field 'u' is not an integer: {data.get('u')!r}"
    values = {}
    for name in ("b", "B", "a", "A"):
        number = _number(data.get(name))
        if number is None or number < 0:
            return f"field {name!r} is not a non-negative number: {data.get(name)!r}"
        values[name] = number
    if values["b"] <= 0 or values["a"] <= 0:
        return "bid or ask price not positive"
    if values["b"] > values["a"]:
        return f"crossed quote: bid {data['b']} > ask {data['a']}"
    return None


def parse_lines(lines: Iterable[tuple[str, int, str]], symbol: str, day: dt.date) -> ParsedLanding:
    """(file name, line number, text) triples of one symbol into the day's frames."""
    trades: list[tuple] = []
    quotes: list[tuple] = []
    quarantine: list[tuple] = []
    gaps: list[tuple] = []
    files: set[str] = set()
    count = 0

    def hold(file: str, number: int, recv_ms: int | None, reason: str, raw: str) -> None:
        if recv_ms is None or _day_of(recv_ms) == day:
            quarantine.append((day, symbol, file, number, recv_ms, reason, raw[:_RAW_MAX]))

    for file, number, text in lines:
        files.add(file)
        count += 1
        try:
            record = json.loads(text)
            recv_ms = record["recv_ms"]
            if not isinstance(recv_ms, int):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            hold(file, number, None, "landing line is not a {recv_ms, ...} JSON object (torn write?)", text)
            continue
        if "msg" in record or "raw" in record:
            message = record.get("msg")
            if message is None:
                try:
                    message = json.loads(record["raw"])
                except (ValueError, TypeError):
                    hold(file, number, recv_ms, "message is not JSON", str(record["raw"]))
                    continue
            try:
                stream, data = message["stream"], message["data"]
                kind = stream.partition("@")[2]
                if not isinstance(data, dict):
                    raise TypeError
            except (KeyError, TypeError, AttributeError):
                hold(file, number, recv_ms, "message has no stream/data", json.dumps(message))
                continue
            if kind == "trade":
                problem = _trade_problem(data, symbol)
                if problem:
                    hold(file, number, recv_ms, problem, json.dumps(message))
                elif _day_of(data["T"]) == day:
                    trades.append(
                        (
                            day,
                            symbol,
                            data["t"],
                            data["p"],
                            data["q"],
                            data["T"],
                            data.get("E") if isinstance(data.get("E"), int) else None,
                            data["m"],
                            data.get("M") if isinstance(data.get("M"), bool) else None,
                            recv_ms,
                            "ws",
                        )
                    )
            elif kind == "bookTicker":
                problem = _quote_problem(data, symbol)
                if problem:
                    hold(file, number, recv_ms, problem, json.dumps(message))
                elif _day_of(recv_ms) == day:
                    quotes.append((day, symbol, data["u"], data["b"], data["B"], data["a"], data["A"], recv_ms))
            else:
                hold(file, number, recv_ms, f"unexpected stream {stream!r}", json.dumps(message))
        elif "rest" in record:
            item = record["rest"]
            problem = _rest_problem(item) if isinstance(item, dict) else "REST item is not an object"
            if problem:
                hold(file, number, recv_ms, problem, json.dumps(item))
            elif _day_of(item["time"]) == day:
                trades.append(
                    (
                        day,
                        symbol,
                        item["id"],
                        item["price"],
                        item["qty"],
                        item["time"],
                        None,
                        item["isBuyerMaker"],
                        item.get("isBestMatch") if isinstance(item.get("isBestMatch"), bool) else None,
                        recv_ms,
                        "rest",
                    )
                )
        elif "gap" in record and isinstance(record["gap"], dict):
            gap = record["gap"]
            gaps.append((symbol, gap.get("from_id"), gap.get("to_id"), str(gap.get("reason", ""))))
        else:
            hold(file, number, recv_ms, "unknown landing record", text)

    trades_frame = pl.DataFrame(trades, schema=TRADES_SCHEMA, orient="row")
    unique_trades = trades_frame.unique(subset="trade_id", keep="first", maintain_order=True).sort("trade_id")
    quotes_frame = (
        pl.DataFrame(quotes, schema=QUOTES_SCHEMA, orient="row")
        .unique(subset="update_id", keep="first", maintain_order=True)
        .sort("recv_ms", "update_id")
    )
    return ParsedLanding(
        trades=unique_trades,
        quotes=quotes_frame,
        quarantine=pl.DataFrame(quarantine, schema=QUARANTINE_SCHEMA, orient="row"),
        gaps=pl.DataFrame(gaps, schema=GAPS_SCHEMA, orient="row"),
        files=len(files),
        lines=count,
        duplicates=len(trades_frame) - len(unique_trades),
    )


def parse_landing(root: Path, day: dt.date, symbol: str) -> ParsedLanding:
    """The bronze frames of one (day, symbol) partition from its closed landing files."""
    chosen = files_for(root, day, symbol)

    def lines():
        for landed in chosen:
            for number, text in read_lines(landed.path):
                yield landed.path.name, number, text

    return parse_lines(lines(), symbol, day)


def id_gaps(trades: pl.DataFrame) -> pl.DataFrame:
    """Rows of trades right after a jump in trade ids (per symbol), with ``missing_ids`` before them."""
    if trades.is_empty():
        return trades.with_columns(missing_ids=pl.lit(0, pl.Int64))
    return (
        trades.sort("symbol", "trade_id")
        .with_columns(missing_ids=(pl.col("trade_id") - pl.col("trade_id").shift(1).over("symbol") - 1).fill_null(0))
        .filter(pl.col("missing_ids") > 0)
    )
