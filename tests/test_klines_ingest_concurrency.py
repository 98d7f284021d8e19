"""Downloads of bronze/klines do not wait for the ``duckdb`` pool; its DuckDB writes do (issue 17).

Two runs (one per symbol, separate processes, as a backfill launches them) share an instance whose
``duckdb`` pool has ONE slot. The fake exchange on 127.0.0.1 holds every klines request at a
barrier until requests from both runs are in flight: it answers only if both downloads run at the
same time, and otherwise gives up after BARRIER_TIMEOUT_S and the test fails. (With the download
inside the pooled step, the second run cannot send its request while the first holds the slot.)
The write steps, which hold the slot, must not overlap; the rows and per-partition metadata are the
simulated market's, exactly.
"""

import datetime as dt
import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import duckdb
import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance

from resources.simulated.market import SimulatedMarket

pytestmark = pytest.mark.slow  # two Dagster processes start (~10 s)

REPO_ROOT = Path(__file__).resolve().parents[1]
DAY = dt.date(2024, 3, 1)
SYMBOLS = ("BTCUSDT", "ETHUSDT")
SEED = 11
BARRIER_TIMEOUT_S = 45
RUN_TIMEOUT_S = 240
DOWNLOAD_STEP = "bronze__klines.download_klines"
WRITE_STEP = "bronze__klines.write_klines"


def _ms(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC).timestamp() * 1000)


class BarrierExchange:
    """Binance's klines endpoint, answering from the simulated market once two requests are in flight."""

    def __init__(self, parties: int):
        self.market = SimulatedMarket(seed=SEED)
        self.barrier = threading.Barrier(parties, timeout=BARRIER_TIMEOUT_S)
        self.lock = threading.Lock()
        self.requests: list[str] = []
        self.in_flight: set[str] = set()
        self.peak: set[str] = set()  # the largest set of symbols in flight at once
        self.gave_up: list[str] = []

    def serve(self) -> ThreadingHTTPServer:
        exchange = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                url = urlparse(self.path)
                if url.path != "/api/v3/klines":
                    self.send_error(404)
                    return
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                symbol = query["symbol"]
                with exchange.lock:
                    exchange.requests.append(symbol)
                    exchange.in_flight.add(symbol)
                    if len(exchange.in_flight) > len(exchange.peak):
                        exchange.peak = set(exchange.in_flight)
                try:
                    exchange.barrier.wait()
                except threading.BrokenBarrierError:
                    exchange.gave_up.append(symbol)
                rows = exchange.market.klines(
                    symbol, query["interval"], int(query["startTime"]), int(query["endTime"]) + 1
                )
                body = json.dumps(rows).encode()
                with exchange.lock:
                    exchange.in_flight.discard(symbol)
                self.send_response(200)
                self.send_header("Content-Type", "application/json;charset=UTF-8")
                self.send_header("X-MBX-USED-WEIGHT-1M", str(2 * len(exchange.requests)))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


@pytest.fixture
def two_runs(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    config = (REPO_ROOT / "dagster.yaml").read_text()
    one_slot, count = re.subn(r"(?m)^(\s+default_limit:) 2$", r"\1 1", config)
    assert count == 1, "dagster.yaml no longer sets pools.default_limit: 2"
    (home / "dagster.yaml").write_text(one_slot)
    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)  # the project's event log storage finds its files through it
    try:
        # Opening the instance first creates its SQLite storages: two processes creating them at
        # once race on the schema migration.
        with DagsterInstance.from_config(str(home)) as instance:
            exchange, run_ids = _run_both(home, tmp_path)
            yield exchange, instance, run_ids, tmp_path
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous


def _run_both(home: Path, tmp_path: Path) -> tuple[BarrierExchange, list[str]]:
    exchange = BarrierExchange(parties=len(SYMBOLS))
    server = exchange.serve()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRYPTOLAKE_", "DAGSTER_"))} | {
        "DAGSTER_HOME": str(home),
        "CRYPTOLAKE_DUCKDB": str(tmp_path / "lake.duckdb"),
        "CRYPTOLAKE_STAGING": str(tmp_path / "staging"),
        "CRYPTOLAKE_BINANCE_URL": f"http://127.0.0.1:{server.server_address[1]}",
    }
    processes = [
        subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "tests" / "klines_ingest_run.py"), DAY.isoformat(), symbol],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for symbol in SYMBOLS
    ]
    try:
        outputs = [p.communicate(timeout=RUN_TIMEOUT_S)[0] for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
        server.shutdown()
        server.server_close()
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-3000:]
    return exchange, [output.strip().splitlines()[-1] for output in outputs]


ATTEMPT_STARTS = {DagsterEventType.STEP_START, DagsterEventType.STEP_RESTARTED}
ATTEMPT_ENDS = {DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_UP_FOR_RETRY, DagsterEventType.STEP_FAILURE}


def _slot_holding_attempts(instance, run_id: str, step_key: str) -> list[tuple[float, float]]:
    """(start, end) of each attempt of the step: Dagster frees its pool slot when an attempt ends,
    success, failure or up for retry, and claims it again before the restart."""
    events = [e for e in instance.all_logs(run_id) if e.step_key == step_key]
    starts = [e.timestamp for e in events if e.dagster_event_type in ATTEMPT_STARTS]
    ends = [e.timestamp for e in events if e.dagster_event_type in ATTEMPT_ENDS]
    assert len(starts) == len(ends) >= 1, [e.dagster_event_type for e in events]
    return list(zip(starts, ends, strict=True))


def _step_window(instance, run_id: str, step_key: str) -> tuple[float, float]:
    events = [e for e in instance.all_logs(run_id) if e.step_key == step_key]
    start = [e.timestamp for e in events if e.dagster_event_type == DagsterEventType.STEP_START]
    end = [e.timestamp for e in events if e.dagster_event_type == DagsterEventType.STEP_SUCCESS]
    assert len(start) == 1 and len(end) == 1, [e.dagster_event_type for e in events]
    return start[0], end[0]


def test_downloads_overlap_with_one_duckdb_slot_and_writes_take_turns(two_runs):
    exchange, instance, run_ids, tmp_path = two_runs

    # Both runs' requests were in flight at once: one page per symbol, nobody gave up waiting.
    assert sorted(exchange.requests) == list(SYMBOLS)
    assert exchange.peak == set(SYMBOLS)
    assert exchange.gave_up == []
    downloads = [_step_window(instance, run_id, DOWNLOAD_STEP) for run_id in run_ids]
    assert downloads[0][0] < downloads[1][1] and downloads[1][0] < downloads[0][1]

    # The pool had one slot, and the two write steps' attempts (each holds it from its start to its
    # end; a retry gives it back while waiting) never overlapped.
    assert instance.event_log_storage.get_concurrency_info("duckdb").slot_count == 1
    attempts = sorted(a for run_id in run_ids for a in _slot_holding_attempts(instance, run_id, WRITE_STEP))
    assert len(attempts) >= 2
    assert all(earlier[1] <= later[0] for earlier, later in zip(attempts, attempts[1:])), attempts
    assert instance.event_log_storage.get_concurrency_info("duckdb").claimed_slots == []

    # The table holds exactly the simulated market's bars, 24 per symbol.
    market = SimulatedMarket(seed=SEED)
    with duckdb.connect(str(tmp_path / "lake.duckdb"), read_only=True) as connection:
        for symbol in SYMBOLS:
            stored = connection.execute(
                "select open_time, open, close from bronze.klines where symbol = ? order by open_time", [symbol]
            ).fetchall()
            expected = market.klines(symbol, "1h", _ms(DAY), _ms(DAY + dt.timedelta(days=1)))
            assert len(expected) == 24
            assert stored == [(row[0], row[1], row[4]) for row in expected]

    # Each run's materialization carries its own partition's figures.
    for run_id, symbol in zip(run_ids, SYMBOLS, strict=True):
        [event] = instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
        materialization = event.asset_materialization
        assert materialization.asset_key == AssetKey(["bronze", "klines"])
        assert materialization.partition == f"{DAY}|{symbol}"
        assert materialization.metadata["rows"].value == 24
        assert materialization.metadata["dagster/partition_row_count"].value == 24
        assert materialization.metadata["http_requests"].value == 1
        assert materialization.metadata["empty_partitions"].value == 0
