"""Customer pages: list, detail, edit, contacts, follow-ups and the live duplicate check (查重).

Thin views: authorise through crm.selectors, bind a form from crm.forms, call one service
in crm.services and turn its domain errors into form errors or messages.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib import messages
from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from crm import selectors, services
from crm.duplicates import DuplicateMatch, find_duplicates, probe_keys
from crm.errors import DomainError
from crm.forms import ContactForm, CustomerForm, FollowUpForm
from crm.models import User

PAGE_SIZE = 25
# The live check runs a few indexed queries per keystroke pause; this bounds one user's load.
CHECK_RATE_LIMIT = 60
CHECK_RATE_WINDOW_SECONDS = 60
# Below this many name characters (and with no code or phone) a check would match anything.
CHECK_MIN_NAME_LENGTH = 2
CHECK_MAX_INPUT_LENGTH = 200
CREDIT_CODE_LENGTH = 18


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def describe_match(match: DuplicateMatch) -> str:
    """The existing customer in the words invariant 4 allows: name, owner, team, since."""
    customer = match.customer
    owner = customer.owner
    if owner is None:
        return _("“%(name)s” already exists and is in the public pool.") % {
            "name": customer.display_name
        }
    since = (
        formats.date_format(timezone.localtime(customer.owned_since), "Y-m-d")
        if customer.owned_since
        else "—"
    )
    return _("“%(name)s” already exists, owned by %(owner)s (%(team)s) since %(since)s.") % {
        "name": customer.display_name,
        "owner": owner,
        "team": owner.team or _("no team"),
        "since": since,
    }


# --- List and detail ---------------------------------------------------------------------


@require_GET
def customer_list(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    filterset, queryset, sort = selectors.customer_list(user, request.GET)
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    filters = request.GET.copy()
    filters.pop("page", None)
    without_sort = filters.copy()
    without_sort.pop("sort", None)
    return render(
        request,
        "crm/customers/list.html",
        {
            "filter": filterset,
            "page": page,
            "query": filters.urlencode(),
            "sort_query": without_sort.urlencode(),
            "sort": sort,
            "columns": _sort_columns(sort),
            "show_owner_filters": "owner" in filterset.filters,
        },
    )


def _sort_columns(current: str) -> dict[str, dict[str, Any]]:
    """Header links by sort key: clicking the sorted column flips its direction."""
    labels = {
        "name": _("Customer name"),
        "stage": _("funnel stage"),
        "tier": _("value tier"),
        "last_follow_up": _("last follow-up"),
        "created": _("created at"),
    }
    descending = current.startswith("-")
    columns: dict[str, dict[str, Any]] = {}
    for key, label in labels.items():
        active = current.removeprefix("-") == key
        columns[key] = {
            "label": label,
            "sort": (key if descending else f"-{key}") if active else key,
            "active": active,
            "descending": descending,
            "aria_sort": ("descending" if descending else "ascending") if active else "none",
        }
    return columns


@require_GET
def customer_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    customer = selectors.customer_for(user, pk)
    pairs = selectors.customer_open_duplicates(customer)
    others = [
        pair.candidate if pair.customer_id == customer.pk else pair.customer for pair in pairs
    ]
    visible = selectors.visible_customer_ids(user, (other.pk for other in others))
    # A page that combines: the ownership clock is read through the ownership selectors.
    from ownership.selectors import clock_for

    clock = clock_for(customer)
    now = timezone.now()
    duplicates = [
        {"pair": pair, "other": other, "visible": other.pk in visible}
        for pair, other in zip(pairs, others, strict=True)
    ]
    return render(
        request,
        "crm/customers/detail.html",
        {
            "customer": customer,
            "contacts": selectors.customer_contacts(customer),
            "follow_ups": selectors.customer_timeline(customer),
            "duplicates": duplicates,
            "can_change": selectors.can_change_customer(user, customer),
            "clock": clock,
            "clock_warning": clock.in_warning_window(now) or clock.is_due(now),
            "is_owner": customer.owner_id == user.pk,
        },
    )


# --- Changes -----------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def customer_edit(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    customer = selectors.customer_for_change(user, pk)
    check_url = f"{reverse('customer_duplicate_check')}?exclude={customer.pk}"
    form = CustomerForm(request.POST or None, instance=customer, check_url=check_url)
    if request.method == "POST" and form.is_valid():
        changes = form.changes()
        if not changes:
            messages.info(request, _("Nothing was changed."))
            return redirect("customer_detail", pk=customer.pk)
        try:
            services.customer_update(actor=user, customer=customer, **changes)
        except services.CustomerInvalid as error:
            form.add_service_errors(error)
        except services.DuplicateCustomer as error:
            for match in error.matches:
                form.add_error(None, describe_match(match))
            if not error.matches:
                form.add_error(None, error.message)
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, _("The customer was saved."))
            return redirect("customer_detail", pk=customer.pk)
    return render(request, "crm/customers/edit.html", {"customer": customer, "form": form})


@require_http_methods(["GET", "POST"])
def contact_add(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    customer = selectors.customer_for_change(user, pk)
    form = ContactForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.contact_add(actor=user, customer=customer, **form.cleaned_data)
        except services.CustomerInvalid as error:
            form.add_service_errors(error)
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, _("The contact was added."))
            return redirect("customer_detail", pk=customer.pk)
    return render(request, "crm/customers/contact_form.html", {"customer": customer, "form": form})


@require_http_methods(["GET", "POST"])
def follow_up_add(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    customer = selectors.customer_for_change(user, pk)
    form = FollowUpForm(request.POST or None, customer=customer)
    if request.method == "POST" and form.is_valid():
        try:
            services.follow_up_log(actor=user, customer=customer, **form.cleaned_data)
        except services.CustomerInvalid as error:
            form.add_service_errors(error)
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, _("The follow-up was logged."))
            return redirect("customer_detail", pk=customer.pk)
    return render(
        request, "crm/customers/follow_up_form.html", {"customer": customer, "form": form}
    )


# --- Live duplicate check ----------------------------------------------------------------


def rate_limit_key(user: User) -> str:
    return f"duplicate-check:{user.pk}"


def _over_rate_limit(user: User) -> bool:
    """Count this user's checks in a window that starts with the first one (Redis INCR keeps
    the key's expiry, so the count resets CHECK_RATE_WINDOW_SECONDS after it began)."""
    key = rate_limit_key(user)
    cache.add(key, 0, timeout=CHECK_RATE_WINDOW_SECONDS)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr: a new window
        cache.set(key, 1, timeout=CHECK_RATE_WINDOW_SECONDS)
        count = 1
    return count > CHECK_RATE_LIMIT


def _int_list(params: QueryDict, name: str) -> list[int]:
    return [int(value) for value in params.getlist(name) if value.isdigit()][:5]


@require_GET
def customer_duplicate_check(request: HttpRequest) -> HttpResponse:
    """The htmx partial that answers "does this customer exist already?" while one types.

    Someone else's customer is described only as invariant 4 allows: name, owner, team,
    owned since (or "in the pool"). The template never reads anything else from it.
    """
    user = _user(request)
    name = " ".join(request.GET.get("display_name", "").split())[:CHECK_MAX_INPUT_LENGTH]
    credit_code = request.GET.get("credit_code", "").strip()[:40]
    phone = request.GET.get("phone", "").strip()[:32]
    template = "crm/customers/_duplicate_check.html"
    if len(name) < CHECK_MIN_NAME_LENGTH and not credit_code and not phone:
        return render(request, template, {"empty": True})
    if _over_rate_limit(user):
        return render(request, template, {"rate_limited": True}, status=429)
    code_error = ""
    if len(re.sub(r"[\s\-]", "", credit_code)) >= CREDIT_CODE_LENGTH:
        # A complete but invalid code is worth saying now; a half-typed one is not.
        try:
            services.clean_credit_code(credit_code)
        except services.CustomerInvalid as error:
            code_error = error.errors.get("credit_code", error.message)
    name_usable = len(name) >= CHECK_MIN_NAME_LENGTH
    keys = probe_keys(
        name=name if name_usable else "",
        credit_code=credit_code,
        phones=[phone] if phone else [],
    )
    if not (name_usable or keys.credit_code or keys.phones):
        # Half a code or a partial phone number: nothing to look up yet.
        return render(request, template, {"code_error": code_error})
    matches = find_duplicates(keys, exclude=_int_list(request.GET, "exclude"))
    visible = selectors.visible_customer_ids(user, (m.customer.pk for m in matches))
    rows = [{"match": m, "visible": m.customer.pk in visible} for m in matches]
    return render(
        request,
        template,
        {
            "rows": rows,
            "checked": True,
            "has_hard": any(m.is_hard for m in matches),
            "code_error": code_error,
        },
    )
