"""Signals the crm domain sends for apps it must not know (DESIGN.md: dependencies point one
way). Receivers run inside the sender's transaction."""

from django.dispatch import Signal

# sender=Customer; kwargs: merged (Customer), survivor (Customer), actor (User | None)
customer_merged = Signal()

# sender=Customer; kwargs: customer (Customer), created (bool). Sent when a customer is
# created or its region, industry, size or value tier changes (its territory may change).
customer_facts_changed = Signal()

# sender=Customer; kwargs: customer_ids (list[int]). Sent after a batch of customers was
# created at once (an import).
customers_created = Signal()
