"""Small allocation figures for pages of other apps (the home pages' link blocks)."""

from __future__ import annotations

from typing import Any

from django import template

from allocation.selectors import registration_queue

register = template.Library()


@register.simple_tag
def registrations_to_decide(user: Any) -> int:
    """Pending out-of-territory registrations waiting for `user`'s decision (one query)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return 0
    return registration_queue(user).count()
