"""Demo data of the disputes workflow (called by `manage.py seed_demo` after the
registration demo): a chair for the committee, one filed case (a collision: "I contacted
them first") and one decided case (two records of one company, merged by majority vote).

Everything goes through the services, so the ledger, history and notifications are real.
Idempotent: a case that exists is left alone."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from crm import services as crm_services
from crm.models import Customer, Role, Source, User
from disputes import services
from disputes.models import AwardTo, CommitteeMembership, Dispute, DisputeKind, RulingOutcome
from ownership import services as ownership

FILED_STATEMENT = (
    "我在 2026 年工博会上就与云帆的周立交换了名片，并于两周前电话沟通了报价需求，"
    "报备时系统提示已被他人报备。请委员会核实先后。"
)
DECIDED_STATEMENT = (
    "“杭州青禾生物技术有限公司”与我负责的“杭州青禾生物科技有限公司”是同一家公司"
    "（同一地址、同一采购联系人），只是录入时行业写法不同。我的报备在先，请合并两条记录。"
)
DUPLICATE_NAME = "杭州青禾生物技术有限公司"


@transaction.atomic
def seed() -> str:
    users = {
        user.username: user for user in User.objects.filter(role__in=[Role.REP, Role.COMMITTEE])
    }
    chair = users.get("committee_sun")
    if chair is not None:
        CommitteeMembership.objects.get_or_create(user=chair, defaults={"is_chair": True})
    for username in ("committee_zhou", "committee_wu"):
        if username in users:
            CommitteeMembership.objects.get_or_create(user=users[username])
    created = [_filed_case(users), _decided_case(users)]
    return f"{sum(created)} demo disputes"


def _filed_case(users: dict[str, User]) -> int:
    """rep_liu ran into rep_wang's 上海云帆 when registering (allocation's demo) and files."""
    claimant = users.get("rep_liu")
    customer = Customer.objects.filter(external_ref="DEMO-001").first()
    if claimant is None or customer is None or customer.owner_id is None:
        return 0
    if Dispute.objects.filter(claimant=claimant, customer=customer).exists():
        return 0
    services.dispute_file(
        actor=claimant,
        customer=customer,
        kind=DisputeKind.FIRST_CONTACT,
        statement=FILED_STATEMENT,
    )
    return 1


def _decided_case(users: dict[str, User]) -> int:
    """rep_chen entered 杭州青禾 a second time under another industry word; rep_wang, whose
    record came first, files "same company"; two members vote to merge, award to rep_wang."""
    claimant, second = users.get("rep_wang"), users.get("rep_chen")
    voters = [users.get("committee_zhou"), users.get("committee_wu")]
    original = Customer.objects.filter(external_ref="DEMO-002").first()
    if claimant is None or second is None or None in voters or original is None:
        return 0
    if original.owner_id != claimant.pk or Dispute.objects.filter(customer=original).exists():
        return 0
    duplicate = Customer.objects.filter(external_ref="DEMO-DISPUTE-DUP").first()
    if duplicate is None:
        duplicate = crm_services.customer_create(
            actor=second,
            display_name=DUPLICATE_NAME,
            address="浙江省杭州市西湖区文三路12号",
            source=Source.EXHIBITION,
            external_ref="DEMO-DISPUTE-DUP",
            allow_possible_duplicates=True,
        )
        ownership.ownership_register(
            actor=second,
            customer=duplicate,
            evidence="医疗器械展会上认识采购负责人",
            at=timezone.now() - timedelta(days=2),
        )
    dispute = services.dispute_file(
        actor=claimant,
        customer=original,
        kind=DisputeKind.SAME_COMPANY,
        other_customer=duplicate,
        statement=DECIDED_STATEMENT,
    )
    for member, rationale in zip(
        voters,
        [
            "两条记录地址、联系人一致，仅行业用词不同，属同一公司；王小明报备在先。",
            "查重说明为字号相同；台账显示原记录先录入。合并并归原负责人。",
        ],
        strict=True,
    ):
        assert member is not None
        services.dispute_vote(
            actor=member,
            dispute=dispute,
            outcome=RulingOutcome.MERGE,
            award_to=AwardTo.CLAIMANT,
            rationale=rationale,
        )
    return 1
