"""One Binance request-weight budget shared by every process (Celery workers, CLI workers, hosts).

Binance counts request weight per IP and per clock minute (``X-MBX-USED-WEIGHT-1M``). Each
``BinanceClient`` paces itself on that header, which is enough for one process; several processes
behind one IP each see the header only after their own requests, so together they can overshoot.
With ``CRYPTOLAKE_WEIGHT_BUDGET_URL=redis://HOST:PORT/DB`` every client spends from one fixed-window
counter in Redis instead: key ``<prefix>:<minute>`` (the minute since the epoch, from the client's
clock; hosts keep NTP time as Binance's signed requests already need), expiring after two minutes.

* ``try_spend(minute, weight, limit)`` adds ``weight`` only if the window stays within ``limit``
  (atomic, one Lua script): a refused caller sleeps to the next minute, so the window's total never
  passes the limit, whatever the number of processes.
* ``observe(minute, used)`` raises the window to the exchange-reported weight when that is higher
  (requests from outside CryptoLake share the IP's budget too): the exchange's figure wins.

Why redis-py and two small scripts rather than the ``limits`` package: its fixed-window limiter
(``hit(item, cost)``) cannot raise a window to an externally reported value, which the header
needs (an atomic max), and the two operations here are five lines each. Unset, the budget stays
in-process (``BinanceClient``'s own header pacing), as before.
"""

import os
from typing import Any

WEIGHT_BUDGET_URL_ENV_VAR = "CRYPTOLAKE_WEIGHT_BUDGET_URL"
DEFAULT_PREFIX = "cryptolake:binance:weight-1m"
WINDOW_TTL_SECONDS = 120

# KEYS[1] the window; ARGV weight, limit, ttl. Returns {1 spent | 0 refused, window total}.
_SPEND = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local weight, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
if used + weight > limit then return {0, used} end
used = redis.call('INCRBY', KEYS[1], weight)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return {1, used}
"""

# KEYS[1] the window; ARGV reported weight, ttl. Returns the window total after the max.
_OBSERVE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local reported = tonumber(ARGV[1])
if reported > used then
  redis.call('SET', KEYS[1], reported, 'EX', tonumber(ARGV[2]))
  return reported
end
return used
"""


class SharedWeightBudget:
    """A per-minute weight counter in Redis, shared by every process that uses the same URL and prefix."""

    def __init__(self, url: str, prefix: str = DEFAULT_PREFIX) -> None:
        import redis  # imported here: the default (in-process) budget does not need the package

        self.url = url
        self.prefix = prefix
        self._redis: Any = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=10)
        self._spend = self._redis.register_script(_SPEND)
        self._observe = self._redis.register_script(_OBSERVE)

    @classmethod
    def from_env(cls) -> "SharedWeightBudget | None":
        """The budget at ``$CRYPTOLAKE_WEIGHT_BUDGET_URL``, or None when it is unset (in-process pacing)."""
        url = (os.environ.get(WEIGHT_BUDGET_URL_ENV_VAR) or "").strip()
        return cls(url) if url else None

    def _key(self, minute: int) -> str:
        return f"{self.prefix}:{minute}"

    def try_spend(self, minute: int, weight: int, limit: float) -> bool:
        """Add ``weight`` to ``minute``'s window if its total stays ≤ ``limit``; False (nothing added) otherwise."""
        spent, _ = self._spend(keys=[self._key(minute)], args=[int(weight), int(limit), WINDOW_TTL_SECONDS])
        return bool(spent)

    def observe(self, minute: int, used: int) -> int:
        """Raise ``minute``'s window to the exchange-reported ``used`` weight if higher; the window's total."""
        return int(self._observe(keys=[self._key(minute)], args=[int(used), WINDOW_TTL_SECONDS]))

    def used(self, minute: int) -> int:
        """Weight spent (or reported) in ``minute``'s window so far."""
        return int(self._redis.get(self._key(minute)) or 0)

    def close(self) -> None:
        self._redis.close()
