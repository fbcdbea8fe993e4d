"""A token bucket: at most `rate` operations per second on average, bursts up to `capacity`.

`RedisTokenBucket` is shared by every process that uses the same Redis key (all web and worker
processes of a deployment), so the limit holds for the whole deployment, not per worker as
Celery's own `rate_limit` does. The bucket lives in one Redis hash and is updated by a Lua script,
atomically, with Redis's clock, so workers on different machines agree on the time.
`LocalTokenBucket` is the same bucket for one process (development without Redis).
"""

import random
import threading
import time
from collections.abc import Callable

import redis

# KEYS[1] the bucket; ARGV: rate per second, capacity. Returns 0 when a token was taken, else the
# milliseconds to wait before one will be there.
_TAKE = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil then
  tokens = capacity
  at = now
end
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) / rate * 1000)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return wait
"""


class RedisTokenBucket:
    """A token bucket in Redis, shared by every process that uses the same key."""

    def __init__(self, client: redis.Redis, key: str, rate: float, capacity: float | None = None):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.key = key
        self.rate = rate
        self.capacity = capacity if capacity is not None else max(1.0, rate)
        self._take = client.register_script(_TAKE)

    def try_take(self) -> float:
        """Take a token if there is one: 0.0, else the seconds to wait before trying again."""
        return int(self._take(keys=[self.key], args=[self.rate, self.capacity])) / 1000

    def take(self, sleep: Callable[[float], None] = time.sleep) -> float:
        """Wait until a token is taken; returns the seconds waited."""
        waited = 0.0
        while (wait := self.try_take()) > 0:
            # A little jitter, so that processes woken together do not all ask again at once.
            pause = wait * (1 + random.random() / 4)
            sleep(pause)
            waited += pause
        return waited


class LocalTokenBucket:
    """The same bucket for one process only (thread-safe)."""

    def __init__(self, rate: float, capacity: float | None = None, clock: Callable[[], float] = time.monotonic):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = capacity if capacity is not None else max(1.0, rate)
        self._clock = clock
        self._tokens = self.capacity
        self._at = clock()
        self._lock = threading.Lock()

    def try_take(self) -> float:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + max(0.0, now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate

    def take(self, sleep: Callable[[float], None] = time.sleep) -> float:
        waited = 0.0
        while (wait := self.try_take()) > 0:
            sleep(wait)
            waited += wait
        return waited
