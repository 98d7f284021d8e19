"""Checks a backfill or demo request before any Dagster run is created.

Everything here is answerable from the settings and the universe file alone, so a bad request
ends with one line naming the value (and the setting to change) instead of a traceback from inside
a run, a retried step, or rows already written for the part of the request that was valid.
"""

import datetime as dt
import os
from dataclasses import dataclass, field


class RunRequestError(ValueError):
    """A request that cannot run as given; the message is one line a user can act on."""


@dataclass(frozen=True)
class ValidatedRequest:
    first_day: dt.date
    last_day: dt.date
    symbols: list[str]
    notices: list[str] = field(default_factory=list)


def _setting_errors() -> None:
    from partitions.daily_symbol import START_DATE_ENV_VAR, start_date
    from resources.binance import INTERVAL_ENV_VAR
    from resources.kline_format import INTERVAL_MS
    from resources.settings import SOURCE_ENV_VAR, SOURCES

    source = (os.environ.get(SOURCE_ENV_VAR) or "binance").strip().lower()
    if source not in SOURCES:
        raise RunRequestError(
            f"{SOURCE_ENV_VAR}={os.environ.get(SOURCE_ENV_VAR)!r} is not a source: use one of {', '.join(SOURCES)}"
        )
    interval = (os.environ.get(INTERVAL_ENV_VAR) or "1h").strip()
    if interval not in INTERVAL_MS:
        raise RunRequestError(
            f"interval {interval!r} ({INTERVAL_ENV_VAR} or --interval) is not a Binance kline interval: "
            f"use one of {', '.join(INTERVAL_MS)}"
        )
    try:
        dt.date.fromisoformat(start_date())
    except ValueError:
        raise RunRequestError(f"{START_DATE_ENV_VAR}={start_date()!r} is not a date (YYYY-MM-DD)") from None


def validate_request(
    first_day: dt.date, last_day: dt.date, symbols: list[str] | None, today: dt.date | None = None
) -> ValidatedRequest:
    """The request as it will run, or :class:`RunRequestError` with the reason.

    Days before a symbol's listing (or after its delisting) are legitimate empty partitions, so a
    range that only partly misses a listing runs with a notice; a request in which no chosen symbol
    traded on any chosen day is refused, since it could only record empty partitions.
    """
    from partitions.daily_symbol import START_DATE_ENV_VAR, start_date
    from partitions.universe import load_universe

    _setting_errors()
    today = today or dt.datetime.now(dt.UTC).date()
    first_partition = dt.date.fromisoformat(start_date())
    if last_day < first_day:
        raise RunRequestError(f"--end {last_day} is before --start {first_day}")
    if first_day < first_partition:
        raise RunRequestError(
            f"--start {first_day} is before the first partition {first_partition}: "
            f"set {START_DATE_ENV_VAR}={first_day} (or later) to include it"
        )
    if last_day > today:
        raise RunRequestError(
            f"--end {last_day} is in the future (today is {today} UTC): the last day is at most today"
        )
    universe = {info.symbol: info for info in load_universe()}
    chosen = list(dict.fromkeys(symbols)) if symbols else list(universe)
    unknown = [s for s in chosen if s not in universe]
    if unknown:
        raise RunRequestError(
            f"unknown symbol(s) {', '.join(unknown)}: not in the universe file "
            "(add a line to partitions/universe.csv or your CRYPTOLAKE_UNIVERSE)"
        )
    notices, listed_any = [], False
    for symbol in chosen:
        info = universe[symbol]
        last_listed = info.delisted_on or today
        if info.listed_on > last_day or last_listed < first_day:
            window = f"listed {info.listed_on}" + (f" to {info.delisted_on}" if info.delisted_on else "")
            notices.append(f"{symbol} is {window}: nothing to fetch for {first_day}..{last_day}")
            continue
        listed_any = True
        if info.listed_on > first_day:
            notices.append(
                f"{symbol} is listed from {info.listed_on}: {first_day}..{info.listed_on - dt.timedelta(days=1)} stay empty"
            )
        if info.delisted_on and info.delisted_on < last_day:
            notices.append(f"{symbol} is delisted after {info.delisted_on}: later days stay empty")
    if not listed_any:
        raise RunRequestError("; ".join(notices))
    if not symbols and notices:
        # The whole universe: one line, not one per symbol outside its listing window.
        outside = list(dict.fromkeys(notice.split(" ", 1)[0] for notice in notices))  # listed late and delisted: once
        notices = [
            f"{len(outside)} symbol(s) not listed on every day of {first_day}..{last_day} ({', '.join(outside)}): those partitions stay empty"
        ]
    return ValidatedRequest(first_day, last_day, chosen if symbols else [], notices)
