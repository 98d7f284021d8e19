"""Section (3): REST ingestion against the simulated exchange served on 127.0.0.1 in its own
process, enforcing 6,000 request weight per minute with HTTP 429 + Retry-After (Binance's rule).

The project's ``BinanceClient`` fetches ``ingest_symbols`` × ``ingest_months`` of 1-minute klines in
a fresh process. The exchange logs every request; from that log come the 429 count and the weight
used per wall-clock minute. The headline budget share counts only the minutes the ingestion spanned
completely (the exchange resets the budget at each wall-clock minute, so the first and last minutes
are partial); ``budget_share_overall`` = all weight / (6,000 × elapsed minutes) can exceed 1 because
a partial first minute still has its whole budget.
"""

import datetime as dt
import tempfile
from pathlib import Path

from benchmarks.fake_exchange import FakeExchangeProcess, RequestLog
from benchmarks.measure import run_step

WEIGHT_LIMIT = 6000


def ingest_symbols(count: int, first_day: dt.date, last_day: dt.date) -> list[str]:
    """The first ``count`` universe symbols trading on every day of the range."""
    from partitions.universe import DEFAULT_UNIVERSE_PATH, read_universe

    symbols = [
        info.symbol
        for info in read_universe(DEFAULT_UNIVERSE_PATH)
        if info.is_listed_on(first_day) and info.is_listed_on(last_day)
    ]
    return symbols[:count]


def run(scale, log=print) -> dict:
    last_day = scale.ingest_end - dt.timedelta(days=1)
    symbols = ingest_symbols(scale.ingest_symbols, scale.ingest_start, last_day)
    with tempfile.TemporaryDirectory(prefix="cryptolake-rest-") as tmp:
        request_log = Path(tmp) / "requests.log"
        log(
            f"(3) REST ingestion: {len(symbols)} symbols × {scale.ingest_months} month(s) of 1m klines against the rate-limited fake ..."
        )
        with FakeExchangeProcess(request_log, WEIGHT_LIMIT, kind="exchange") as exchange:
            result = run_step(
                "rest_ingest",
                {
                    "base_url": exchange.base_url,
                    "symbols": symbols,
                    "start": str(scale.ingest_start),
                    "end": str(scale.ingest_end),
                },
            )
        requests = RequestLog.read(request_log)
    by_minute = requests.weight_by_minute()
    minutes = sorted(by_minute)
    full_minutes = minutes[1:-1]
    total_weight = sum(by_minute.values())
    elapsed = requests.times[-1] - requests.times[0] if requests.times else 0.0
    share = total_weight / (WEIGHT_LIMIT * elapsed / 60) if elapsed >= 60 else None
    share_full = sum(by_minute[m] for m in full_minutes) / (WEIGHT_LIMIT * len(full_minutes)) if full_minutes else None
    too_many = sum(status == 429 for status in requests.statuses)
    outcome = {
        "symbols": symbols,
        "first_day": str(scale.ingest_start),
        "last_day": str(last_day),
        "interval": "1m",
        "weight_limit_per_minute": WEIGHT_LIMIT,
        "seconds": round(result["seconds"], 2),
        "rows": result["rows_in"],
        "rows_per_second": round(result["rows_in"] / result["seconds"]),
        "peak_rss_mb": result["peak_rss_mb"],
        "requests_seen_by_exchange": len(requests.times),
        "http_429": too_many,
        "http_status_counts": {str(s): requests.statuses.count(s) for s in sorted(set(requests.statuses))},
        "total_weight": total_weight,
        "weight_by_minute": [by_minute[m] for m in minutes],
        "budget_share_overall": None if share is None else round(share, 3),
        "budget_share_full_minutes": None if share_full is None else round(share_full, 3),
        "client": result["client"],
    }
    log(
        f"    {outcome['seconds']}s, {outcome['requests_seen_by_exchange']} requests, {too_many} × 429, budget share {outcome['budget_share_overall']}"
    )
    verdict = (
        "n/a (no full minute)" if share_full is None else ("met" if share_full >= 0.8 and too_many == 0 else "MISSED")
    )
    outcome["table_rows"] = [
        [
            f"(3) REST {len(symbols)} sym × {scale.ingest_months} mo 1m",
            "BinanceClient → fake exchange (HTTP, 6000 w/min)",
            f"{outcome['rows']:,}",
            f"{outcome['seconds']:.1f}",
            f"{outcome['rows_per_second']:,}",
            f"{outcome['peak_rss_mb']:,.0f}",
        ],
        [
            "",
            f"  weight budget used in full minutes {outcome['budget_share_full_minutes']} (overall {outcome['budget_share_overall']}); "
            f"{too_many} × 429 (target ≥0.8 and 0: {verdict})",
            "",
            "",
            "",
            "",
        ],
    ]
    return outcome
