"""Demo data of the departure handover (called by `manage.py seed_demo`).

张伟 (rep_zhang, 华东销售部) is leaving in ten days: his customers are planned by funnel
stage and the tasks are in several states — moved at once (0%), proposed, accepted, done by
the leaver, confirmed (moved), and one refused, waiting for the manager to reassign it.
Everything goes through the services, as in real use. Idempotent: once the departure
exists, nothing more is done.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from crm import services as crm_services
from crm.models import Customer, EmploymentState, FollowUpKind, Source, User
from handover import services
from handover.models import Departure, HandoverTask
from ownership import services as ownership

# (external ref, name, address, phone, stage, contact, next step)
EXTRA_CUSTOMERS = [
    ("DEMO-H01", "扬州博远软件有限公司", "江苏省扬州市邗江区文昌西路56号", "13951410001", 50,
     "孙磊", "下周演示报价方案"),
    ("DEMO-H02", "镇江嘉禾医药有限公司", "江苏省镇江市京口区学府路8号", "13951410002", 100,
     "吴敏", "续签年度服务合同"),
    ("DEMO-H03", "泰州天工机械有限公司", "江苏省泰州市海陵区凤凰路99号", "13951410003", 25,
     "郑强", "约采购负责人见面"),
    ("DEMO-H04", "南通青松物流有限公司", "江苏省南通市崇川区工农路17号", "13951410004", 75,
     "冯洁", "提交试点合同"),
]  # fmt: skip


@transaction.atomic
def seed() -> str:
    users = {user.username: user for user in User.objects.all()}
    leaver = users.get("rep_zhang")
    manager = users.get("manager_east")
    wang, li = users.get("rep_wang"), users.get("rep_li")
    if leaver is None or manager is None or wang is None or li is None:
        return "skipped (demo people missing)"
    if Departure.objects.filter(leaver=leaver).exists():
        return "departure already there"
    if leaver.state != EmploymentState.ACTIVE:
        return "skipped (rep_zhang is not active)"
    now = timezone.now()
    _extra_customers(leaver, now)
    customers = list(Customer.objects.filter(owner=leaver, merged_into__isnull=True))
    by_name = {customer.display_name: customer for customer in customers}
    # 李娜 takes the won account and one visit; 王小明 (stronger, more room) the rest.
    to_li = {"镇江嘉禾医药有限公司", "温州瑞丰食品有限公司"}
    departure = services.departure_record(
        actor=manager,
        leaver=leaver,
        last_day=timezone.localdate(now) + timedelta(days=10),
        reason="个人原因（家庭搬迁）",
        per_customer={c.pk: (li if c.display_name in to_li else wang) for c in customers},
        now=now,
    )
    tasks = {
        task.customer.display_name: task
        for task in HandoverTask.objects.filter(departure=departure).select_related(
            "customer", "departure", "successor"
        )
    }

    def task(name: str) -> HandoverTask | None:
        found = tasks.get(name)
        if found is not None:
            found.refresh_from_db()
        return found

    today = timezone.localdate(now)
    # Confirmed: call made, successor confirmed, customer moved.
    name = "常州新纪元新材料有限公司"
    if (t := task(name)) is not None:
        services.tasks_accept(actor=t.successor, task_ids=[t.pk])
        services.task_mark_done(
            actor=leaver, task=task(name) or t, note="已电话介绍王小明，客户同意后续由他跟进。"
        )
        services.task_confirm(
            actor=t.successor,
            task=task(name) or t,
            happened_on=today,
            note="三方通话，客户确认新的对接人。",
        )
    # Done by the leaver, waiting for the successor's confirmation.
    name = "温州瑞丰食品有限公司"
    if (t := task(name)) is not None:
        services.tasks_accept(actor=t.successor, task_ids=[t.pk])
        services.task_mark_done(actor=leaver, task=task(name) or t, note="已带李娜拜访采购总监。")
    # Accepted, the visit or call still to do.
    if (t := task("扬州博远软件有限公司")) is not None:
        services.tasks_accept(actor=t.successor, task_ids=[t.pk])
    # Refused: back to the manager to choose another successor.
    if (t := task("镇江嘉禾医药有限公司")) is not None:
        services.task_refuse(actor=t.successor, task=t, reason="医药行业不熟悉，建议交给王小明。")
    return f"departure of {leaver} with {len(by_name)} customers"


def _extra_customers(leaver: User, now: datetime) -> None:
    for index, (ref, name, address, phone, stage, contact, next_step) in enumerate(EXTRA_CUSTOMERS):
        if Customer.objects.filter(external_ref=ref).exists():
            continue
        customer = crm_services.customer_create(
            actor=leaver,
            display_name=name,
            address=address,
            phone=phone,
            source=Source.REFERRAL,
            external_ref=ref,
            allow_possible_duplicates=True,
        )
        registered_at = now - timedelta(days=20 + index * 5)
        ownership.ownership_register(actor=leaver, customer=customer, at=registered_at)
        crm_services.contact_add(
            actor=leaver, customer=customer, name=contact, title="总经理", mobile=phone
        )
        for step, reached in enumerate(s for s in (25, 50, 75, 100) if s <= stage):
            crm_services.follow_up_log(
                actor=leaver,
                customer=customer,
                kind=FollowUpKind.VISIT if step % 2 else FollowUpKind.CALL,
                happened_at=registered_at + timedelta(days=2 + step * 3),
                summary=f"与{contact}沟通，进展到 {reached}%。",
                next_step=next_step,
                stage_after=reached,
            )
