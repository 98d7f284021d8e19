"""Read API under load while the lake is being written (issue 15).

``python benchmarks/api_bench.py [--symbols 20] [--clients 1,8,32] [--seconds 5]``

Publishes a synthetic lake (one year of gold.daily_features and one day of hourly silver.ohlcv per
symbol), starts ``uvicorn`` serving the API in its own process, and starts a writer process that
keeps rewriting partitions of both tables (one atomic Delta commit each, as a backfill does) while
1, 8 and 32 concurrent HTTP clients query a one-year features range and a one-day bar range.
Reports p50/p99 latency, requests/s and errors per (query, clients), plus the writer's commits and
failures (readers must never make it fail or wait).
"""

import argparse
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from resources.lake import publish, table_uri  # noqa: E402

YEAR_END = dt.date(2025, 12, 31)
YEAR_START = YEAR_END - dt.timedelta(days=364)

WRITER = """
import datetime as dt, sys, time, json
import polars as pl
sys.path.insert(0, sys.argv[3])
from benchmarks.api_bench import features_frame, bars_frame
from resources.lake import publish, table_uri
root, stop = sys.argv[1], sys.argv[2]
symbols = json.loads(sys.argv[4])
commits = failures = 0
i = 0
import os
while not os.path.exists(stop):
    symbol = symbols[i % len(symbols)]
    day = dt.date(2025, 1, 1) + dt.timedelta(days=i % 365)
    try:
        publish(table_uri(root, "gold", "daily_features"), features_frame([symbol], day, day, bump=i),
                predicate=f"date = '{day}' AND symbol = '{symbol}'", vacuum_every_commits=0)
        publish(table_uri(root, "silver", "ohlcv"), bars_frame([symbol], dt.date(2025, 12, 31), bump=i),
                predicate=f"date = '2025-12-31' AND symbol = '{symbol}'", vacuum_every_commits=0)
        commits += 2
    except Exception as exc:
        failures += 1
        print(exc, file=sys.stderr)
    i += 1
print(json.dumps({"commits": commits, "failures": failures}))
"""


def features_frame(symbols: list[str], first: dt.date, last: dt.date, bump: int = 0) -> pl.DataFrame:
    days = pl.date_range(first, last, "1d", eager=True)
    frames = []
    for k, symbol in enumerate(symbols):
        n = len(days)
        close = 100.0 * (k + 1) + np.arange(n) * 0.1 + bump * 1e-6
        frames.append(
            pl.DataFrame(
                {
                    "date": days,
                    "symbol": [symbol] * n,
                    "open": close,
                    "high": close * 1.01,
                    "low": close * 0.99,
                    "close": close,
                    "volume": np.full(n, 1000.0),
                    "quote_volume": close * 1000.0,
                    "trades": np.full(n, 500),
                    "bars": np.full(n, 24),
                    "missing_bars": np.zeros(n, dtype=np.int64),
                    "vwap": close,
                    "return_1d": np.full(n, 0.001),
                    "log_return_1d": np.full(n, 0.001),
                    "sma_7": close,
                    "sma_30": close,
                    "volatility_30d": np.full(n, 0.5),
                    "rsi_14": np.full(n, 55.0),
                    "drawdown_30d": np.zeros(n),
                }
            )
        )
    return pl.concat(frames)


def bars_frame(symbols: list[str], day: dt.date, bump: int = 0) -> pl.DataFrame:
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    times = [start + dt.timedelta(hours=h) for h in range(24)]
    return pl.concat(
        [
            pl.DataFrame(
                {
                    "date": [day] * 24,
                    "symbol": [s] * 24,
                    "interval": ["1h"] * 24,
                    "open_time": times,
                    "open": [100.0 + h for h in range(24)],
                    "high": [101.0 + h for h in range(24)],
                    "low": [99.0 + h for h in range(24)],
                    "close": [100.5 + h + bump * 1e-6 for h in range(24)],
                    "volume": [10.0] * 24,
                    "trades": [5] * 24,
                }
            )
            for s in symbols
        ]
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _load(url: str, params: list[dict], clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(index: int) -> None:
        mine, bad = [], 0
        with httpx.Client(base_url=url, timeout=10) as http:
            i = index
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    ok = (
                        http.get(params[i % len(params)]["path"], params=params[i % len(params)]["query"]).status_code
                        == 200
                    )
                except httpx.HTTPError:
                    ok = False
                mine.append(time.perf_counter() - started)
                bad += not ok
                i += 1
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {
        "clients": clients,
        "requests": len(latencies),
        "errors": errors[0],
        "p50_ms": round(float(np.percentile(ms, 50)), 2) if len(ms) else None,
        "p99_ms": round(float(np.percentile(ms, 99)), 2) if len(ms) else None,
        "requests_per_s": round(len(latencies) / elapsed, 1),
    }


def run(symbols: int = 20, clients: tuple[int, ...] = (1, 8, 32), seconds: float = 5.0) -> dict:
    names = [f"SYM{i:02d}USDT" for i in range(symbols)]
    with tempfile.TemporaryDirectory() as tmp:
        root = str(Path(tmp) / "lake")
        publish(table_uri(root, "gold", "daily_features"), features_frame(names, YEAR_START, YEAR_END), predicate=None)
        publish(table_uri(root, "silver", "ohlcv"), bars_frame(names, YEAR_END), predicate=None)
        port = _free_port()
        env = {**os.environ, "CRYPTOLAKE_LAKE": root, "PYTHONPATH": str(REPO)}
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "cryptolake_assets.api.server:app_from_env",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
        )
        url = f"http://127.0.0.1:{port}"
        stop = Path(tmp) / "stop"
        writer = None
        try:
            for _ in range(200):
                try:
                    httpx.get(f"{url}/v1/health", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            writer = subprocess.Popen(
                [sys.executable, "-c", WRITER, root, str(stop), str(REPO), json.dumps(names)],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            queries = {
                "features_one_year": [
                    {"path": "/v1/features", "query": {"symbol": s, "start": str(YEAR_START), "end": str(YEAR_END)}}
                    for s in names
                ],
                "bars_one_day": [
                    {"path": "/v1/bars", "query": {"symbol": s, "start": str(YEAR_END), "end": str(YEAR_END)}}
                    for s in names
                ],
            }
            results: dict = {"symbols": symbols, "seconds_per_cell": seconds, "queries": {}}
            for name, params in queries.items():
                results["queries"][name] = [_load(url, params, n, seconds) for n in clients]
        finally:
            stop.touch()
            if writer is not None:
                out, _ = writer.communicate(timeout=60)
                results["writer"] = json.loads(out.strip().splitlines()[-1]) if out.strip() else {"failed": True}
            server.terminate()
            server.wait(timeout=10)
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=5.0, help="load duration per (query, clients) cell")
    args = parser.parse_args(argv)
    results = run(args.symbols, tuple(int(c) for c in args.clients.split(",")), args.seconds)
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
