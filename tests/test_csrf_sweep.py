"""Every state-changing request needs the CSRF token: a POST without it to any URL is 403."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

from crm.models import User
from tests.test_permission_matrix import MATRIX

ARGS = {
    "customer": [1],
    "review_run": [1],
    "request": [1],
    "registration": [1],
    "held_registration": [1],
    "dispute": [1],
    "dispute_attachment": [1],
    "departure": [1],
    "task": [1],
    "import_job": [1],
}


def test_posts_without_a_csrf_token_are_refused_everywhere(crm_admin: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(crm_admin)
    checked = 0
    for name, kind in MATRIX.items():
        if kind == "skip":
            continue
        url = reverse(name, args=ARGS.get(kind, []))
        response = client.post(url, {"anything": "1"})
        assert response.status_code == 403, f"POST {url} without CSRF token: {response.status_code}"
        checked += 1
    assert checked >= 40
