"""Signals the crm domain sends for apps it must not know (DESIGN.md: dependencies point one
way). Receivers run inside the sender's transaction."""

from django.dispatch import Signal

# sender=Customer; kwargs: merged (Customer), survivor (Customer), actor (User | None)
customer_merged = Signal()
