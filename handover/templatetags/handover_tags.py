"""Small handover figures for pages of other apps (the home pages' link blocks)."""

from __future__ import annotations

from typing import Any

from django import template

from handover.selectors import counts_for_home

register = template.Library()


@register.simple_tag
def handover_counts(user: Any) -> dict[str, int]:
    if user is None or not getattr(user, "is_authenticated", False):
        return {}
    return counts_for_home(user)
