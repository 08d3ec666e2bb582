"""Count events per key in fixed windows: in this process, or shared through Redis.

Used for chat messages, uploads and connections and for form posts. Without
Redis each web process counts on its own, so N processes admit up to N times a
limit (documented in ``config/example.env``); with ``CONTACTCENTER_REDIS_URL``
every process shares one counter per key and window (``INCR`` + ``EXPIRE``,
atomic, so a parallel burst cannot overshoot).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

MAX_KEYS = 100_000


@dataclass(frozen=True)
class Verdict:
    """Whether an event is allowed, and when to try again if not (seconds)."""

    allowed: bool
    retry_after: int = 0


class RateLimiter(Protocol):
    """Count one event against ``limit`` per ``window`` seconds for a key."""

    def hit(self, key: str, limit: int, window: int) -> Verdict: ...

    def release(self, key: str, window: int) -> None: ...


class MemoryRateLimiter:
    """Fixed-window counters in a dict (one process); old windows are dropped as they pass."""

    def __init__(self, clock: Any = time.time) -> None:
        self._counts: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def hit(self, key: str, limit: int, window: int) -> Verdict:
        """Count one event; refuse it once the window's count passes the limit."""
        if limit <= 0:
            return Verdict(True)
        now = self._clock()
        slot = int(now // window)
        with self._lock:
            if len(self._counts) > MAX_KEYS:
                self._counts = {k: v for k, v in self._counts.items() if k[1] >= slot - 1}
            count = self._counts.get((key, slot), 0) + 1
            self._counts[(key, slot)] = count
        if count > limit:
            return Verdict(False, max(1, math.ceil((slot + 1) * window - now)))
        return Verdict(True)

    def release(self, key: str, window: int) -> None:
        """Give one event back (a connection that closed)."""
        slot = int(self._clock() // window)
        with self._lock:
            if self._counts.get((key, slot), 0) > 0:
                self._counts[(key, slot)] -= 1


class RedisRateLimiter:
    """Fixed-window counters in Redis, shared by every process."""

    def __init__(self, url: str) -> None:
        from redis import Redis

        self.redis = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def hit(self, key: str, limit: int, window: int) -> Verdict:
        """Count one event; on a Redis error let it through (the limits are a shield, not a gate)."""
        from redis.exceptions import RedisError

        if limit <= 0:
            return Verdict(True)
        now = time.time()
        slot = int(now // window)
        name = f"contactcenter:rl:{key}:{window}:{slot}"
        try:
            pipe = self.redis.pipeline()
            pipe.incr(name)
            pipe.expire(name, window + 1)
            count = int(pipe.execute()[0])
        except RedisError:
            return Verdict(True)
        if count > limit:
            return Verdict(False, max(1, math.ceil((slot + 1) * window - now)))
        return Verdict(True)

    def release(self, key: str, window: int) -> None:
        """Give one event back."""
        from redis.exceptions import RedisError

        name = f"contactcenter:rl:{key}:{window}:{int(time.time() // window)}"
        try:
            self.redis.decr(name)
        except RedisError:
            pass


_limiters: dict[str, RateLimiter] = {}
_limiters_lock = threading.Lock()


def rate_limiter(redis_url: str) -> RateLimiter:
    """Return this process's limiter for a Redis URL ("" for the in-process one)."""
    with _limiters_lock:
        limiter = _limiters.get(redis_url)
        if limiter is None:
            limiter = RedisRateLimiter(redis_url) if redis_url else MemoryRateLimiter()
            _limiters[redis_url] = limiter
        return limiter


def reset_memory_limiters() -> None:
    """Forget the in-process counters (tests)."""
    with _limiters_lock:
        _limiters.pop("", None)
