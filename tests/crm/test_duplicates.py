"""The duplicate check (查重) against the database: hard keys block, look-alikes warn, and
other regions or branches are never taken for the same company."""

from __future__ import annotations

import pytest

from crm import services
from crm.duplicates import find_duplicates, probe_keys
from crm.models import Customer, User
from tests.factories import CustomerFactory, credit_code_for

pytestmark = pytest.mark.django_db

BYTEDANCE = "北京字节跳动科技有限公司"


@pytest.fixture
def bytedance(rep: User) -> Customer:
    return CustomerFactory.create(
        display_name=BYTEDANCE,
        credit_code=credit_code_for(1),
        phone="138 0013 8000",
        owner=rep,
    )


def _tiers(name: str = "", credit_code: str = "", phone: str = "") -> dict[int, str]:
    keys = probe_keys(name=name, credit_code=credit_code, phones=[phone] if phone else [])
    return {match.customer.pk: match.tier for match in find_duplicates(keys)}


def test_same_credit_code_is_hard_whatever_the_name(bytedance: Customer) -> None:
    assert _tiers("完全不同的名字贸易公司", credit_code=credit_code_for(1)) == {
        bytedance.pk: "hard"
    }


def test_credit_code_is_compared_normalised(bytedance: Customer) -> None:
    typed = " ".join(credit_code_for(1).lower())
    assert _tiers(credit_code=typed)[bytedance.pk] == "hard"


def test_same_mobile_is_hard(bytedance: Customer) -> None:
    assert _tiers("某某贸易", phone="+86 13800138000") == {bytedance.pk: "hard"}


@pytest.mark.parametrize(
    "variant",
    [
        "字节跳动科技(北京)有限公司",  # bracketed region
        "字节跳动（北京）科技有限公司",  # full-width brackets, region inside
        "字节跳动科技有限公司",  # region dropped
        "字节跳动科技",  # region and legal form dropped
        "字節跳動科技有限公司",  # traditional characters
        "北京 字节跳动 科技 有限公司",  # stray spaces
    ],
)
def test_name_variants_are_hard(bytedance: Customer, variant: str) -> None:
    assert _tiers(variant)[bytedance.pk] == "hard"


def test_full_width_latin_is_the_same_name(rep: User) -> None:
    abc = CustomerFactory.create(display_name="ABC科技有限公司", owner=rep)
    assert _tiers("ＡＢＣ科技有限公司")[abc.pk] == "hard"


@pytest.mark.parametrize("typo", ["字节跳劲科技有限公司", "字节跳东科技有限公司"])
def test_a_typo_is_soft(bytedance: Customer, typo: str) -> None:
    assert _tiers(typo)[bytedance.pk] == "soft"


@pytest.mark.parametrize(
    "other",
    [
        "上海字节跳动科技有限公司",  # another region
        "北京字节跳动科技有限公司上海分公司",  # a branch is not its head office
        "字节跳动传媒有限公司",  # another industry
    ],
)
def test_other_region_branch_or_industry_is_never_hard(bytedance: Customer, other: str) -> None:
    assert _tiers(other).get(bytedance.pk) in (None, "soft")


def test_unrelated_names_sharing_only_common_words_do_not_match(bytedance: Customer) -> None:
    assert _tiers("北京星河数据科技有限公司") == {}


def test_exclude_leaves_the_record_itself_out(bytedance: Customer) -> None:
    keys = probe_keys(name=BYTEDANCE)
    assert find_duplicates(keys, exclude=[bytedance.pk]) == []


def test_merged_records_are_not_matched(bytedance: Customer, rep: User) -> None:
    survivor = CustomerFactory.create(display_name="另一家公司", owner=rep)
    Customer.objects.filter(pk=bytedance.pk).update(merged_into=survivor)
    assert bytedance.pk not in _tiers(BYTEDANCE)


# --- the same rules through customer_create ----------------------------------------------


@pytest.mark.parametrize("variant", ["字节跳动科技(北京)有限公司", "字節跳動科技"])
def test_registration_of_a_variant_collides(bytedance: Customer, second_rep: User, variant: str):
    with pytest.raises(services.DuplicateCustomer) as caught:
        services.customer_create(actor=second_rep, display_name=variant)
    assert [m.customer.pk for m in caught.value.matches] == [bytedance.pk]
    assert Customer.objects.count() == 1


def test_other_region_can_be_registered_after_confirming(
    bytedance: Customer, second_rep: User
) -> None:
    with pytest.raises(services.PossibleDuplicate):
        services.customer_create(actor=second_rep, display_name="上海字节跳动科技有限公司")
    created = services.customer_create(
        actor=second_rep,
        display_name="上海字节跳动科技有限公司",
        confirmed_distinct=[bytedance.pk],
    )
    assert created.pk != bytedance.pk
