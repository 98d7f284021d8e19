"""The project's offline fakes as real HTTP servers on 127.0.0.1, each in its own process (so the
server's CPU does not share the client's GIL): the Binance REST exchange enforcing the weight limit
with 429 + Retry-After (``exchange``), or the data.binance.vision dump archive (``archive``).

``python -m benchmarks.fake_exchange KIND LOG_PATH [WEIGHT_LIMIT]`` prints ``PORT <n>`` once listening
and appends one line per request to LOG_PATH: ``<unix time> <HTTP status> <X-MBX-USED-WEIGHT-1M>``.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.http_bridge import HandlerServer


def serve(kind: str, log_path: Path, weight_limit: int) -> None:
    if kind == "archive":
        from resources.simulated.archive_server import SimulatedArchiveServer

        exchange = SimulatedArchiveServer()
    else:
        from resources.simulated.binance_exchange import SimulatedBinanceExchange

        exchange = SimulatedBinanceExchange(enforce_limit=True, weight_limit_per_minute=weight_limit)
    lock = threading.Lock()
    with log_path.open("a", buffering=1) as log:

        def handle(request):
            response = exchange.handle_request(request)
            with lock:
                log.write(
                    f"{time.time():.4f} {response.status_code} {response.headers.get('X-MBX-USED-WEIGHT-1M', '0')}\n"
                )
            return response

        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with HandlerServer(handle) as server:
            print(f"PORT {server.base_url.rsplit(':', 1)[1]}", flush=True)
            stop.wait()


@dataclass
class RequestLog:
    times: list[float]
    statuses: list[int]
    used: list[int]

    @classmethod
    def read(cls, path: Path) -> "RequestLog":
        times, statuses, used = [], [], []
        for line in path.read_text().splitlines():
            t, status, weight = line.split()
            times.append(float(t))
            statuses.append(int(status))
            used.append(int(weight))
        return cls(times, statuses, used)

    def weight_by_minute(self) -> dict[int, int]:
        """Weight charged per wall-clock minute: each request's increment of the used-weight header
        (a drop means the exchange's window reset), assigned to the minute the request was logged."""
        out: dict[int, int] = {}
        previous = 0
        for t, used in zip(self.times, self.used):
            increment = used - previous if used >= previous else used
            previous = used
            minute = int(t // 60)
            out[minute] = out.get(minute, 0) + increment
        return out


class FakeExchangeProcess:
    """Start/stop ``serve`` in a child process; ``base_url`` once it listens."""

    def __init__(self, log_path: Path, weight_limit: int = 6000, kind: str = "exchange"):
        self.log_path, self.weight_limit, self.kind = log_path, weight_limit, kind
        self.process: subprocess.Popen | None = None
        self.base_url = ""

    def __enter__(self) -> "FakeExchangeProcess":
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.fake_exchange", self.kind, str(self.log_path), str(self.weight_limit)],
            cwd=Path(__file__).resolve().parents[1],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "CRYPTOLAKE_UNIVERSE": ""},
        )
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            self.process.kill()
            raise RuntimeError(f"fake exchange did not start: {line!r}")
        self.base_url = f"http://127.0.0.1:{int(line.split()[1])}"
        return self

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


if __name__ == "__main__":
    serve(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 6000)
