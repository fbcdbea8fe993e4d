"""A process that must run exactly once per deployment (Celery beat) holds a Redis lock.

The lock expires `ttl` seconds after its last refresh, so a holder that crashed frees it on its
own; a second process waits (a hot standby) and takes over then. A holder that finds it lost the
lock (Redis restarted, the process was frozen past the ttl) stops at once rather than run next to
the new holder.
"""

import logging
import os
import socket
import threading
import time
from collections.abc import Callable

import redis
from redis.exceptions import LockError, RedisError

log = logging.getLogger(__name__)


class SingletonLock:
    def __init__(self, client: redis.Redis, name: str, ttl: float = 60.0):
        self.name = name
        self.ttl = ttl
        # Not thread-local: the refresher thread must see the token the main thread acquired.
        self._lock = client.lock(name, timeout=ttl, thread_local=False)
        self._stop = threading.Event()

    @property
    def holder(self) -> str:
        return f"{socket.gethostname()}:{os.getpid()}"

    def acquire(self, *, wait: bool = True, poll: float = 1.0, on_wait: Callable[[], None] | None = None) -> bool:
        """Take the lock; with `wait`, block (calling `on_wait` once) until it is free."""
        told = False
        while not self._lock.acquire(blocking=False):
            if not wait:
                return False
            if on_wait and not told:
                on_wait()
                told = True
            time.sleep(poll)
        return True

    def keep(self, on_lost: Callable[[], None]) -> threading.Thread:
        """Refresh the lock in a daemon thread every ttl/4 seconds; call `on_lost` if it was lost."""

        def refresh() -> None:
            while not self._stop.wait(self.ttl / 4):
                try:
                    self._lock.reacquire()
                except (LockError, RedisError) as error:
                    log.error("Lost the %s lock: %s", self.name, error)
                    on_lost()
                    return

        thread = threading.Thread(target=refresh, name=f"{self.name}-refresh", daemon=True)
        thread.start()
        return thread

    def release(self) -> None:
        self._stop.set()
        try:
            self._lock.release()
        except (LockError, RedisError):
            pass
