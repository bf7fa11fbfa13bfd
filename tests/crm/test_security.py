"""Brute-force login protection: 5 failures per (username, address) → 429, finite tiers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from crm.models import User
from crm.security import login_cool_off
from tests.factories import TEST_PASSWORD


def _fail(client: Client, username: str, address: str = "10.0.0.1") -> int:
    response = client.post(
        reverse("login"), {"username": username, "password": "wrong"}, REMOTE_ADDR=address
    )
    return response.status_code


def test_correct_password_signs_in(client: Client, rep: User) -> None:
    response = client.post(reverse("login"), {"username": rep.username, "password": TEST_PASSWORD})
    assert response.status_code == 302


def test_fifth_failure_locks_out_with_a_chinese_429(client: Client, rep: User) -> None:
    statuses = [_fail(client, rep.username) for _ in range(4)]
    assert statuses == [200] * 4
    assert _fail(client, rep.username) == 429
    # Even the right password is refused during the cool-off, with a clear message.
    response = client.post(
        reverse("login"),
        {"username": rep.username, "password": TEST_PASSWORD},
        REMOTE_ADDR="10.0.0.1",
    )
    assert response.status_code == 429
    body = response.content.decode()
    assert "登录已暂时锁定" in body
    assert "15 分钟" in body


def test_lockout_is_per_username_and_address(client: Client, rep: User) -> None:
    for _ in range(5):
        _fail(client, rep.username, "10.0.0.1")
    # Another address may still sign in as the same user.
    response = client.post(
        reverse("login"),
        {"username": rep.username, "password": TEST_PASSWORD},
        REMOTE_ADDR="10.0.0.2",
    )
    assert response.status_code == 302


def test_forwarded_for_header_is_ignored_without_a_trusted_proxy(client: Client, rep: User) -> None:
    for index in range(5):
        client.post(
            reverse("login"),
            {"username": rep.username, "password": "wrong"},
            REMOTE_ADDR="10.0.0.1",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{index}",
        )
    # Rotating a spoofed header did not spread the failures over five addresses.
    assert _fail(client, rep.username, "10.0.0.1") == 429


def test_cool_off_is_finite_and_escalates(rep: User) -> None:
    from axes.models import AccessAttempt
    from django.test import RequestFactory

    request = RequestFactory().post("/", {"username": rep.username})
    request.axes_ip_address = "10.0.0.9"  # type: ignore[attr-defined]
    assert login_cool_off(request) == timedelta(minutes=15)
    attempt = AccessAttempt.objects.create(
        username=rep.username,
        ip_address="10.0.0.9",
        user_agent="test",
        failures_since_start=10,
    )
    assert login_cool_off(request) == timedelta(hours=1)
    attempt.failures_since_start = 40
    attempt.save()
    assert login_cool_off(request) == timedelta(hours=24)


def test_security_headers_forbid_inline_script_and_framing(client: Client, rep: User) -> None:
    from tests.conftest import login

    login(client, rep)
    response = client.get("/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("style-src")[0]
    assert "frame-ancestors 'none'" in policy
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_pages_have_no_inline_script(client: Client, rep: User) -> None:
    import re

    from tests.conftest import login

    login(client, rep)
    for url in ["/", reverse("customer_list"), reverse("register"), reverse("pool")]:
        body = client.get(url).content.decode()
        for tag in re.findall(r"<script[^>]*>", body):
            assert "src=" in tag, f"{url}: inline {tag}"


def test_refused_authorisations_are_logged(
    client: Client, rep: User, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.conftest import login

    login(client, rep)
    with caplog.at_level("WARNING", logger="guishu.security"):
        assert client.get(reverse("team")).status_code == 403
    assert any("refused 403 GET /team/ user=rep" in r.getMessage() for r in caplog.records)
