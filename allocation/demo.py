"""Demo data of the registration and pool workflows (called by `manage.py seed_demo`).

Every owner comes from a ledger event, as in real use: registrations (some backdated, so
the clocks differ), a release, a claim from the pool, a collision and a soft-match
confirmation kept as evidence. Idempotent: what exists is left alone.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from allocation.models import Registration
from allocation.services import SOFT_MATCH, RegistrationForm, registration_submit
from crm import services as crm_services
from crm.demo import DEMO_CUSTOMERS
from crm.models import Customer, FollowUpKind, Industry, Source, User
from ownership import services as ownership

EVIDENCE = ["2026 年工博会展位交换名片", "老客户介绍", "官网留言后电话回访", "电话陌拜"]


@transaction.atomic
def seed() -> str:
    now = timezone.now()
    created = 0
    users = {user.username: user for user in User.objects.all()}
    for index, demo in enumerate(DEMO_CUSTOMERS):
        ref = f"DEMO-{index + 1:03d}"
        if Customer.objects.filter(external_ref=ref).exists():
            continue
        customer = crm_services.customer_create(
            actor=users.get(demo.owner or "admin"),
            display_name=demo.name,
            address=demo.address,
            phone=demo.phone,
            industry=Industry.objects.filter(name=demo.industry).first(),
            value_tier=demo.tier,
            source=Source.IMPORT,
            external_ref=ref,
        )
        created += 1
        owner = users[demo.owner] if demo.owner else None
        # Registered 3 to 45 days ago, so that clocks and warnings differ across the demo.
        registered_at = now - timedelta(days=3 + (index * 7) % 43)
        if owner is not None:
            ownership.ownership_register(
                actor=owner,
                customer=customer,
                evidence=EVIDENCE[index % len(EVIDENCE)],
                at=registered_at,
            )
        actor = owner or users["admin"]
        crm_services.contact_add(
            actor=actor,
            customer=customer,
            name=demo.contact,
            title="采购经理",
            mobile=f"139{index + 1:08d}",
        )
        stages = [stage for stage in (25, 50, 75, 100) if stage <= demo.stage]
        for step, stage in enumerate(stages):
            crm_services.follow_up_log(
                actor=actor,
                customer=customer,
                kind=FollowUpKind.CALL if step % 2 == 0 else FollowUpKind.VISIT,
                happened_at=registered_at + timedelta(days=1 + step),
                summary=f"与{demo.contact}沟通需求，进展到 {stage}%。",
                next_step="发送方案并约下次拜访",
                stage_after=stage,
            )
    if created:
        _pool_history(users)
        _collision_and_soft_match(users)
    return f"{created} demo customers"


def _pool_history(users: dict[str, User]) -> None:
    """A customer released by one rep and claimed from the pool by another."""
    customer = Customer.objects.get(external_ref="DEMO-020")
    ownership.ownership_register(
        actor=users["rep_zhang"],
        customer=customer,
        evidence="电话陌拜",
        at=timezone.now() - timedelta(days=20),
    )
    ownership.ownership_release(
        actor=users["rep_zhang"], customer=customer, reason="客户今年没有采购预算"
    )
    ownership.ownership_claim(actor=users["rep_chen"], customer=customer)


def _collision_and_soft_match(users: dict[str, User]) -> None:
    # A collision: the second rep's attempt is kept as evidence.
    registration_submit(
        actor=users["rep_liu"],
        form=RegistrationForm(display_name="云帆信息技术（上海）有限公司", evidence="朋友介绍"),
    )
    # A look-alike confirmed as a different company.
    form = RegistrationForm(display_name="宁波海川国际物流有限公司", evidence="物流展")
    result = registration_submit(actor=users["rep_yang"], form=form)
    if result.outcome == SOFT_MATCH:
        registration_submit(
            actor=users["rep_yang"],
            form=form,
            confirmed_distinct=[match.customer.pk for match in result.matches],
        )
    assert Registration.objects.exists()
