"""Django's Redis cache backend, keeping one redis-py client per connection pool.

Django's `RedisCacheClient` builds a new `redis.Redis` for every cache call, and redis-py 8 fills
a table of some 170 response callbacks each time it does: on a page served from the cache (the
billing page, subscriptions/page_cache.py) that was the largest single cost, more than the
Redis round trips themselves (bench/pages.py, docs/benchmarks.md). A `redis.Redis` may be
shared: it takes a connection from its pool for each command, so keeping one changes nothing
else.
"""

from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(pool)
        if client is None:
            client = self._clients[pool] = self._client(connection_pool=pool)
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = RedisCacheClient
