"""`{% rep_funnel_card %}`: the signed-in rep's funnel next to the team median (home page).

A tag rather than home-view context, so that the home view stays unaware of the report."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.translation import gettext as _

from crm.funnel import rep_card
from crm.funnel_charts import funnel_chart

register = template.Library()


@register.inclusion_tag("crm/funnel/_rep_card.html", takes_context=True)
def rep_funnel_card(context: dict[str, Any]) -> dict[str, Any]:
    user = context["user"]
    card = rep_card(user)
    chart = None
    if card is not None:
        chart = funnel_chart(
            card.funnel,
            chart_id="my-funnel",
            title=_("My funnel next to the team median"),
            median=card.median,
        )
    return {"card": card, "chart": chart}
