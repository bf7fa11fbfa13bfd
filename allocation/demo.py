"""Demo data of the registration and pool workflows (called by `manage.py seed_demo`).

Every owner comes from a ledger event, as in real use: registrations (some backdated, so
the clocks differ), a release, a claim from the pool, a collision and a soft-match
confirmation kept as evidence; registrations outside the rep's territory (one waiting for
华北's approval, one routed to 华东's pool); then reassignment requests in every
interesting state (an applied offer, a rejected one, a pending one in 华东's queue, a
cross-team ask waiting for both managers) and a balanced allocation from the pool.
Idempotent: what exists is left alone.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from allocation import services as allocation_services
from allocation.models import ReassignmentRequest, Registration
from allocation.selectors import team_pool
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
    requests = _requests_and_allocation(users)
    if created:
        # After the allocation, so that the routed customer stays in 华东's pool.
        _out_of_territory(users)
    return f"{created} demo customers, {requests} reassignment requests"


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


def _out_of_territory(users: dict[str, User]) -> None:
    """Under the demo rule set: 华东's rep_wang registers a 海淀 company, which waits in
    华北's queue for manager_north; 华北's rep_liu registers a 合肥 company, which 安徽省
    routes to 华东's pool. The rule set is seeded here first (its own seed, which runs after
    the workflow apps', then finds it there)."""
    from ownership.demo import seed_territories

    seed_territories()
    registration_submit(
        actor=users["rep_wang"],
        form=RegistrationForm(
            display_name="北京星河智能装备有限公司",
            address="北京市海淀区中关村大街1号",
            first_contact_name="周总",
            first_contact_phone="13911223344",
            evidence="2026 年工博会上对方主动咨询，希望上海团队对接",
        ),
    )
    registration_submit(
        actor=users["rep_liu"],
        form=RegistrationForm(
            display_name="合肥江淮精密制造有限公司",
            address="安徽省合肥市蜀山区长江西路1号",
            evidence="朋友介绍",
        ),
    )


def _demo_customer(ref: str) -> Customer:
    return Customer.objects.get(external_ref=ref)


def _requests_and_allocation(users: dict[str, User]) -> int:
    """Transfer requests and an allocation, through the same services as the pages."""
    if ReassignmentRequest.objects.exists():
        return 0
    manager = users["manager_east"]
    # Applied: rep_wang offers 南京智联物流 to rep_zhang; the manager approves.
    offer = allocation_services.request_offer(
        actor=users["rep_wang"],
        customer=_demo_customer("DEMO-004"),
        to_rep=users["rep_zhang"],
        reason="张伟负责江宁片区的物流客户，跟进更方便。",
    )
    allocation_services.request_approve(actor=manager, request=offer, comment="同意，按片区调整。")
    # Rejected: rep_li offers 无锡绿源环保 to rep_zhang.
    rejected = allocation_services.request_offer(
        actor=users["rep_li"],
        customer=_demo_customer("DEMO-007"),
        to_rep=users["rep_zhang"],
        reason="最近客户太多，跟进不过来。",
    )
    allocation_services.request_reject(
        actor=manager, request=rejected, comment="客户刚到 25%，请先约到决策人再说。"
    )
    # Pending in 华东's queue: rep_zhang offers 上海明德教育 to rep_li.
    allocation_services.request_offer(
        actor=users["rep_zhang"],
        customer=_demo_customer("DEMO-008"),
        to_rep=users["rep_li"],
        reason="李娜有教育行业的成交经验。",
    )
    # Pending across teams: rep_liu (华北) asks for 杭州青禾生物 (rep_wang, 华东).
    allocation_services.request_ask(
        actor=users["rep_liu"],
        customer=_demo_customer("DEMO-002"),
        reason="客户总部迁往北京，北京的采购负责人指定由我对接。",
        evidence="2026 年 11 月 10 日在北京拜访沈佳，对方邮件确认由华北团队服务。",
    )
    # A balanced allocation of a few pool customers to 华东's reps.
    team = manager.managed_teams.order_by("pk").first()
    pool = list(team_pool(team).order_by("pk")[:3]) if team is not None else []
    if team is not None and pool:
        reps = [users["rep_wang"], users["rep_li"], users["rep_zhang"]]
        allocation_services.allocate_bulk(actor=manager, team=team, customers=pool, reps=reps)
    return ReassignmentRequest.objects.count()
