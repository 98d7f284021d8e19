"""The cross-process Binance weight budget (resources/weight_budget.py) against a real redis-server.

Two real processes spend against one budget and never exceed it in a minute window; the
exchange-reported ``X-MBX-USED-WEIGHT-1M`` wins when higher; unset, pacing stays in-process.
Run as a script, this file is one of the spending processes (see ``_spend_main``).
"""

import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

from resources.binance import BinanceClient
from resources.weight_budget import WEIGHT_BUDGET_URL_ENV_VAR, WINDOW_TTL_SECONDS, SharedWeightBudget

# weight_limit_per_minute=50 with the default safety fraction 0.9: 45 weight per minute window.
LIMIT, SAFE_BUDGET = 50, 45


def _ping_transport(reported_weight, log: list[int] | None = None, clock=None) -> httpx.MockTransport:
    """A fake exchange answering ``/api/v3/ping`` (weight 1) with ``X-MBX-USED-WEIGHT-1M: reported_weight()``."""

    def handle(request: httpx.Request) -> httpx.Response:
        if log is not None:
            log.append(int(clock().timestamp() * 1000))
        return httpx.Response(200, json={}, headers={"X-MBX-USED-WEIGHT-1M": str(reported_weight())})

    return httpx.MockTransport(handle)


class FakeTime:
    """A clock and a sleep that advances it (one shared timeline for clients in this process)."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def clock(self) -> dt.datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def redis_server():
    from redis_server import started_redis_server

    yield from started_redis_server()


@pytest.fixture
def budget(redis_server):
    shared = SharedWeightBudget(redis_server.url(), prefix=f"test:{uuid.uuid4().hex}")
    yield shared
    shared.close()


def test_spend_refuses_past_the_limit_and_expires_windows(budget):
    assert budget.try_spend(1000, 30, 45) is True
    assert budget.try_spend(1000, 15, 45) is True
    assert budget.try_spend(1000, 1, 45) is False  # 46 > 45: refused, nothing added
    assert budget.used(1000) == 45
    assert budget.try_spend(1001, 45, 45) is True  # the next minute is a fresh window
    assert 0 < budget._redis.ttl(budget._key(1000)) <= WINDOW_TTL_SECONDS


def test_observe_keeps_the_higher_of_counter_and_exchange(budget):
    assert budget.try_spend(7, 10, 45) is True
    assert budget.observe(7, 4) == 10  # lower report: the counter stands
    assert budget.observe(7, 40) == 40  # higher report: the exchange wins
    assert budget.used(7) == 40
    assert budget.try_spend(7, 6, 45) is False
    assert budget.try_spend(7, 5, 45) is True


def test_exchange_reported_weight_wins_across_clients(budget):
    """Client A's response reports 40 used (other traffic on the IP): client B, sharing the budget,
    gets 5 more requests in that minute and sends its other 5 after sleeping to the next one."""
    fake = FakeTime(dt.datetime(2026, 12, 7, 12, 0, 10, tzinfo=dt.UTC))
    a = BinanceClient(weight_limit_per_minute=LIMIT).with_transport(
        _ping_transport(lambda: 40), clock=fake.clock, sleep=fake.sleep
    )
    sent: list[int] = []
    b = BinanceClient(weight_limit_per_minute=LIMIT).with_transport(
        _ping_transport(lambda: 1, sent, fake.clock), clock=fake.clock, sleep=fake.sleep
    )
    a.with_weight_budget(budget)
    b.with_weight_budget(budget)
    a.ping()
    for _ in range(10):
        b.ping()
    minutes = Counter(ms // 60_000 for ms in sent)
    first = int(dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC).timestamp()) // 60
    assert minutes == {first: 5, first + 1: 5}
    assert b.stats()["pacing_sleeps"] == 1
    assert budget.used(first) == 45 and budget.used(first + 1) == 5


def test_unset_budget_paces_in_process(monkeypatch):
    monkeypatch.delenv(WEIGHT_BUDGET_URL_ENV_VAR, raising=False)
    fake = FakeTime(dt.datetime(2026, 12, 7, 12, 0, 10, tzinfo=dt.UTC))
    used = iter(range(1, 100))
    client = BinanceClient(weight_limit_per_minute=LIMIT).with_transport(
        _ping_transport(lambda: next(used)), clock=fake.clock, sleep=fake.sleep
    )
    for _ in range(46):
        client.ping()
    assert client._shared_budget() is None
    assert client.stats()["pacing_sleeps"] == 1  # the 46th request waited for the next minute


# -- two real processes -------------------------------------------------------------------------


def _spend_main(log_path: str, requests: int) -> None:
    """One spending process: read ``go <start epoch s> <clock offset s>`` on stdin, wait for the
    start, then send ``requests`` pings through a BinanceClient on $CRYPTOLAKE_WEIGHT_BUDGET_URL,
    logging each request's time on the shifted clock; last line: the client's stats."""
    print("ready", flush=True)
    _, start, offset = sys.stdin.readline().split()
    shift = dt.timedelta(seconds=float(offset))

    def clock() -> dt.datetime:
        return dt.datetime.now(dt.UTC) + shift

    sent: list[int] = []
    client = BinanceClient(weight_limit_per_minute=LIMIT).with_transport(
        _ping_transport(lambda: 1, sent, clock), clock=clock
    )
    time.sleep(max(0.0, float(start) - time.time()))
    for _ in range(requests):
        client.ping()
    Path(log_path).write_text(json.dumps({"sent_ms": sent, "stats": client.stats()}))


@pytest.mark.slow
def test_two_processes_never_exceed_one_budget(redis_server, tmp_path):
    """Two processes of 30 weight-1 requests each (60 > 45) start 3 s before a minute boundary:
    every minute window holds at most 45 of their weight, and all 60 requests go out."""
    env = {**os.environ, WEIGHT_BUDGET_URL_ENV_VAR: redis_server.url(db=1)}
    logs = [tmp_path / f"spender{n}.json" for n in range(2)]
    processes = [
        subprocess.Popen(
            [sys.executable, __file__, str(log), "30"],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for log in logs
    ]
    try:
        for process in processes:
            assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        start = time.time() + 0.5
        # The shifted clock reads 3 s before a minute boundary at the start.
        offset = (60 - (start % 60)) - 3
        for process in processes:
            assert process.stdin is not None
            process.stdin.write(f"go {start} {offset}\n")
            process.stdin.flush()
        for process in processes:
            assert process.wait(timeout=120) == 0
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    results = [json.loads(log.read_text()) for log in logs]
    per_minute = Counter(ms // 60_000 for result in results for ms in result["sent_ms"])
    assert sum(per_minute.values()) == 60
    assert max(per_minute.values()) <= SAFE_BUDGET
    assert len(per_minute) == 2  # 60 weight does not fit one window: some requests waited
    assert sum(result["stats"]["pacing_sleeps"] for result in results) >= 1


if __name__ == "__main__":
    _spend_main(sys.argv[1], int(sys.argv[2]))
