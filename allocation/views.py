"""Registration (报备) and the public pool (公海): thin views over allocation/ownership services."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from allocation import selectors
from allocation.forms import RegistrationForm as RegistrationPageForm
from allocation.forms import ReleaseForm
from allocation.models import RegistrationOutcome
from allocation.services import SOFT_MATCH, RegistrationForm, registration_submit
from crm.errors import DomainError
from crm.models import Customer, Industry, Role, User
from crm.roles import role_required
from crm.selectors import customer_for_change
from crm.services import CustomerInvalid
from ownership import selectors as ownership_selectors
from ownership import services as ownership


@role_required(Role.REP, admins=False)
def register(request: HttpRequest) -> HttpResponse:
    """The registration page, built for a phone: one form, one answer page per outcome."""
    user: User = request.user  # type: ignore[assignment]
    form = RegistrationPageForm(request.POST or None)
    if request.method != "POST" or not form.is_valid():
        return render(request, "allocation/register.html", {"form": form})
    data = form.cleaned_data
    try:
        result = registration_submit(
            actor=user,
            form=RegistrationForm(
                display_name=data["display_name"],
                credit_code=data["credit_code"],
                address=data["address"],
                phone=data["phone"],
                industry=data["industry"],
                size_band=data["size_band"],
                source=data["source"] or "other",
                first_contact_name=data["first_contact_name"],
                first_contact_phone=data["first_contact_phone"],
                evidence=data["evidence"],
            ),
            confirmed_distinct=form.confirmed_ids(),
        )
    except CustomerInvalid as error:
        form.add_service_errors(error)
        return render(request, "allocation/register.html", {"form": form})
    except DomainError as error:
        messages.error(request, error.message)
        return render(request, "allocation/register.html", {"form": form})
    context: dict[str, Any] = {"result": result, "form": form}
    if result.outcome == RegistrationOutcome.REGISTERED:
        assert result.customer is not None
        messages.success(
            request,
            _("Registered: %(customer)s is yours from now on.") % {"customer": result.customer},
        )
        return redirect("customer_ownership", pk=result.customer.pk)
    if result.outcome == SOFT_MATCH:
        context["candidate_ids"] = ",".join(str(m.customer.pk) for m in result.matches)
        return render(request, "allocation/register_soft_match.html", context)
    if result.outcome in (RegistrationOutcome.COLLISION, RegistrationOutcome.OWN):
        assert result.customer is not None
        context["clock"] = ownership_selectors.clock_for(result.customer)
        return render(request, "allocation/register_collision.html", context, status=200)
    if result.outcome == RegistrationOutcome.IN_POOL:
        return render(request, "allocation/register_in_pool.html", context)
    return render(request, "allocation/register_cap_reached.html", context)


@role_required(Role.REP, Role.MANAGER)
def pool(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    params = {key: request.GET.get(key, "") for key in ("q", "industry", "tier", "region", "sort")}
    queryset = selectors.filter_pool(selectors.pool_for(user), params)
    page = Paginator(queryset, 25).get_page(request.GET.get("page"))
    query = urlencode({k: v for k, v in params.items() if v})
    policy = ownership_selectors.policy_for_owner(user)
    return render(
        request,
        "allocation/pool.html",
        {
            "page": page,
            "query": query,
            "params": params,
            "industries": Industry.objects.all(),
            "policy": policy,
            "claims_today": ownership.claims_today(user, timezone.now()),
            "can_claim": user.is_rep,
        },
    )


@role_required(Role.REP, admins=False)
@require_POST
def claim(request: HttpRequest) -> HttpResponse:
    """Claim one or several pool customers; each refusal gets its own message."""
    user: User = request.user  # type: ignore[assignment]
    ids = [int(value) for value in request.POST.getlist("customer") if value.isdigit()][:50]
    if not ids:
        messages.error(request, _("Choose at least one customer to claim."))
        return redirect("pool")
    customers = list(Customer.objects.filter(pk__in=ids, merged_into__isnull=True))
    if len(customers) != len(set(ids)):
        messages.error(request, _("Some of the chosen customers no longer exist."))
    outcome = ownership.ownership_claim_many(actor=user, customers=customers)
    for customer in outcome.claimed:
        messages.success(request, _("Claimed %(customer)s.") % {"customer": customer})
    for customer, reason in outcome.refused:
        messages.error(request, f"{customer}: {reason}")
    if len(outcome.claimed) == 1 and not outcome.refused:
        return redirect("customer_ownership", pk=outcome.claimed[0].pk)
    return redirect("pool")


@role_required(Role.REP, admins=False)
def release(request: HttpRequest, pk: int) -> HttpResponse:
    """The owner gives a customer back to the pool, with a reason (confirmation page)."""
    user: User = request.user  # type: ignore[assignment]
    customer = customer_for_change(user, pk)
    form = ReleaseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            ownership.ownership_release(
                actor=user, customer=customer, reason=form.cleaned_data["reason"]
            )
        except DomainError as error:
            messages.error(request, error.message)
        else:
            messages.success(
                request, _("%(customer)s is back in the public pool.") % {"customer": customer}
            )
            return redirect("home")
    return render(request, "allocation/release.html", {"form": form, "customer": customer})
