"""Tags for what every page shows: static files and argument-free links, each looked up
once per process.

The base layout alone asks for five static files and six links; Django's own tags find them
again on every page (and in production the static names go through the manifest). Neither
answer changes while the process runs: the manifest is read at start, and the links depend
only on the URLconf and the script prefix.
"""

from __future__ import annotations

from functools import lru_cache

from django import template
from django.templatetags.static import static

from crm.context_processors import reverse

register = template.Library()


@lru_cache(maxsize=512)
def _static(path: str) -> str:
    return static(path)


@register.simple_tag
def asset(path: str) -> str:
    """``{% static path %}``."""
    return _static(path)


@register.simple_tag
def link(name: str) -> str:
    """``{% url name %}`` for a URL that takes no arguments."""
    return reverse(name)
