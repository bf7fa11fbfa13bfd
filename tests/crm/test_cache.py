"""The Redis cache keeps one client per connection pool instead of one per call."""

from __future__ import annotations

from django.core.cache import caches

from crm.cache import RedisCache


def test_the_cache_is_crm_redis_cache_and_reuses_its_client() -> None:
    cache = caches["default"]
    assert isinstance(cache, RedisCache)
    cache.set("crm-cache-test", {"名称": "归属"}, 30)
    assert cache.get("crm-cache-test") == {"名称": "归属"}
    client = cache._cache.get_client()
    assert cache._cache.get_client("another key") is client
    assert cache._cache.get_client(write=True) is client  # one server: one pool
    cache.delete("crm-cache-test")
    assert cache.get("crm-cache-test") is None
