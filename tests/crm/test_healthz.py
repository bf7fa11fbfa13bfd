"""/healthz reports database and Redis reachability, without login."""

from __future__ import annotations

import pytest
from django.core.cache import caches
from django.test import Client, override_settings


@pytest.mark.django_db
def test_healthy_system_answers_200_json(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


@pytest.mark.django_db
def test_broken_redis_answers_503_naming_redis(client: Client) -> None:
    broken = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            # Port 1 on loopback: nothing listens there, the connection is refused at once.
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    # override_settings resets the cache handler both ways through the setting_changed signal.
    with override_settings(CACHES=broken):
        response = client.get("/healthz")
    caches["default"].set("after", 1)
    assert caches["default"].get("after") == 1
    assert response.status_code == 503
    payload = response.json()
    assert payload["status"] == "error"
    assert payload["checks"]["database"] == "ok"
    assert payload["checks"]["redis"].startswith("error")
