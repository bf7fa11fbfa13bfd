"""{% asset %} and {% link %} answer what {% static %} and {% url %} answer."""

from __future__ import annotations

from django.template import engines
from django.templatetags.static import static
from django.urls import reverse


def _render(source: str) -> str:
    return engines["django"].from_string("{% load guishu %}" + source).render({})


def test_asset_is_the_static_url() -> None:
    assert _render("{% asset 'css/guishu.css' %}") == static("css/guishu.css")
    # asked again: the remembered answer is the same
    assert _render("{% asset 'css/guishu.css' %}") == static("css/guishu.css")


def test_link_is_the_reversed_url() -> None:
    assert _render("{% link 'register' %}") == reverse("register")
    assert _render("{% link 'home' %}") == reverse("home")
