"""The dispute state machine: one transition function, an explicit table, a named error for
illegal moves, a no-op on no change, a history row in the same transaction."""

from __future__ import annotations

import pytest

from disputes.models import TRANSITIONS, Dispute, DisputeHistory, DisputeState
from disputes.services import IllegalTransition, check_transition, dispute_transition

STATES = list(DisputeState.values)


def test_the_table_is_the_documented_lifecycle() -> None:
    expected = {
        "filed": {"under_review", "withdrawn"},
        "under_review": {"decided", "withdrawn"},
        "decided": {"appealed", "closed"},
        "appealed": {"decided"},
        "closed": set(),
        "withdrawn": set(),
    }
    assert expected == TRANSITIONS


@pytest.mark.parametrize(
    ("from_state", "to_state"), [(a, b) for a in STATES for b in STATES if a != b]
)
def test_every_move_is_allowed_or_refused_by_name(from_state: str, to_state: str) -> None:
    if to_state in TRANSITIONS[from_state]:
        check_transition(from_state, to_state)
    else:
        with pytest.raises(IllegalTransition) as error:
            check_transition(from_state, to_state)
        assert error.value.from_state == from_state and error.value.to_state == to_state
        assert "不能从" in error.value.message


def test_a_transition_writes_one_history_row_and_a_repeat_is_a_no_op(
    first_contact_case: Dispute, committee: list
) -> None:
    member = committee[1]
    case, changed = dispute_transition(
        dispute_id=first_contact_case.pk, to_state="under_review", actor=member, note="受理"
    )
    assert changed and case.state == "under_review"
    again, changed_again = dispute_transition(
        dispute_id=case.pk, to_state="under_review", actor=member
    )
    assert not changed_again and again.state == "under_review"
    rows = list(
        DisputeHistory.objects.filter(dispute=case)
        .order_by("at", "id")
        .values_list("from_state", "to_state", "actor_id", "note")
    )
    assert rows == [
        ("", "filed", case.claimant_id, ""),
        ("filed", "under_review", member.pk, "受理"),
    ]


def test_an_illegal_move_changes_nothing(first_contact_case: Dispute) -> None:
    with pytest.raises(IllegalTransition):
        dispute_transition(dispute_id=first_contact_case.pk, to_state="closed", actor=None)
    first_contact_case.refresh_from_db()
    assert first_contact_case.state == "filed"
    assert DisputeHistory.objects.filter(dispute=first_contact_case).count() == 1


def test_history_is_append_only(first_contact_case: Dispute) -> None:
    from django.db import InternalError, ProgrammingError, transaction

    row = DisputeHistory.objects.get(dispute=first_contact_case)
    with pytest.raises((InternalError, ProgrammingError)), transaction.atomic():
        DisputeHistory.objects.filter(pk=row.pk).update(note="rewritten")
    with pytest.raises((InternalError, ProgrammingError)), transaction.atomic():
        DisputeHistory.objects.filter(pk=row.pk).delete()
