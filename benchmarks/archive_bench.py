"""Section (4): archive backfill vs REST backfill of the same range (``ingest_symbols`` × whole
months of 1-minute klines): the project's ``BinanceArchiveClient`` downloading checksum-verified
monthly dumps from the simulated data.binance.vision served on 127.0.0.1, against the REST
ingestion of section (3) (rate-limited fake exchange). Both produce bronze frames; rows must match.

The fake archive builds a zip the first time it is asked for it; data.binance.vision serves
prebuilt files from a CDN, so every dump is requested once before the timed run (``warm_up_seconds``
in the JSON) and the timed run measures the client: download, SHA-256 check, unzip and parse.
"""

import datetime as dt
import tempfile
from pathlib import Path

from benchmarks.fake_exchange import FakeExchangeProcess
from benchmarks.measure import run_step


def _warm_up(base_url: str, symbols: list[str], scale) -> float:
    """Have the fake build every monthly dump once (not timed as part of the client's run)."""
    import time

    import httpx

    started, month = time.perf_counter(), scale.ingest_start
    labels = []
    while month < scale.ingest_end:
        labels.append(month.strftime("%Y-%m"))
        month = dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)
    with httpx.Client(base_url=base_url, timeout=600) as client:
        for symbol in symbols:
            for label in labels:
                client.get(f"/data/spot/monthly/klines/{symbol}/1m/{symbol}-1m-{label}.zip.CHECKSUM").raise_for_status()
    return time.perf_counter() - started


def run(scale, rest: dict | None = None, log=print) -> dict:
    if rest is None:
        from benchmarks import rest_bench

        rest = rest_bench.run(scale, log)
    symbols = rest["symbols"]
    with tempfile.TemporaryDirectory(prefix="cryptolake-archive-") as tmp:
        log(f"(4) archive backfill: {len(symbols)} symbols × {scale.ingest_months} month(s) of 1m dumps ...")
        with FakeExchangeProcess(Path(tmp) / "requests.log", kind="archive") as archive:
            warm_up = _warm_up(archive.base_url, symbols, scale)
            result = run_step(
                "archive_ingest",
                {
                    "base_url": archive.base_url,
                    "symbols": symbols,
                    "start": str(scale.ingest_start),
                    "end": str(scale.ingest_end),
                },
            )
    speedup = rest["seconds"] / result["seconds"]
    log(f"    {result['seconds']:.1f}s, {result['files']} files, {speedup:.1f}× faster than REST")
    label = f"(4) archive vs REST {len(symbols)} sym × {scale.ingest_months} mo 1m"
    outcome = {
        "symbols": symbols,
        "first_day": str(scale.ingest_start),
        "last_day": str(scale.ingest_end - dt.timedelta(days=1)),
        "archive": {**result, "rows_per_second": round(result["rows_in"] / result["seconds"])},
        "warm_up_seconds": round(warm_up, 1),
        "rest_seconds": rest["seconds"],
        "rest_rows": rest["rows"],
        "rows_match": result["rows_in"] == rest["rows"],
        "archive_speedup_vs_rest": round(speedup, 2),
    }
    outcome["table_rows"] = [
        [
            label,
            "BinanceArchiveClient → fake archive (monthly zips)",
            f"{result['rows_in']:,}",
            f"{result['seconds']:.1f}",
            f"{outcome['archive']['rows_per_second']:,}",
            f"{result['peak_rss_mb']:,.0f}",
        ],
        [
            label,
            "BinanceClient REST (from (3))",
            f"{rest['rows']:,}",
            f"{rest['seconds']:.1f}",
            f"{rest['rows_per_second']:,}",
            f"{rest['peak_rss_mb']:,.0f}",
        ],
        [
            "",
            f"  archive {outcome['archive_speedup_vs_rest']}× faster (≥5: {'met' if speedup >= 5 else 'MISSED'}); "
            f"rows {'match' if outcome['rows_match'] else 'DIFFER'}",
            "",
            "",
            "",
            "",
        ],
    ]
    return outcome
