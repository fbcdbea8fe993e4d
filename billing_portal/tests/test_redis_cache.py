"""The Redis cache backend (billing_portal/lib/redis_cache.py): one redis-py client per pool."""

import uuid

from django.conf import settings
from django.core.cache import caches

from billing_portal.lib.redis_cache import RedisCache
from conftest import need


def test_the_cache_keeps_one_client_and_still_stores_reads_and_expires():
    need(bool(settings.REDIS_URL), "Redis (REDIS_URL)")
    cache = caches["default"]
    assert isinstance(cache, RedisCache)
    assert cache._cache.get_client() is cache._cache.get_client()  # not a new redis.Redis per call
    key = f"test-{uuid.uuid4()}"
    cache.set(key, {"amount_minor": 1900}, 30)
    assert cache.get(key) == {"amount_minor": 1900}
    assert cache.add(key, "other", 30) is False
    cache.delete(key)
    assert cache.get(key) is None
    assert cache.get_many([key]) == {}
