"""Cohort pages for facilitators and organisation admins: set up a cohort, say who to keep apart and
who sits a cycle out, preview the plan cycle by cycle, and publish it as circles.

Each view resolves access first (circles.access: another organisation's cohort 404, no facilitator
or admin capability 403), then validates a form, calls one service in circles.cohorts, and
redirects. The planner runs inside the plan request with a short budget (cohorts.PLAN_SECONDS):
the facilitator is waiting to see the preview, and a Celery task would only make them poll for it.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import time_zone_names
from circles import access, cohort_selectors, cohorts, selectors
from circles.cohort_forms import CohortForm, KeepApartForm, UnavailableForm
from circles.models import Cohort
from circles.views import _add_errors


@login_required
@require_GET
def cohort_list(request: HttpRequest) -> HttpResponse:
    access.require_cohort_planner(request.user)
    return render(
        request, "circles/cohort_list.html", {"cohorts": cohort_selectors.cohorts_for_user(request.user)}
    )


def _cohort_form(request: HttpRequest, cohort: Cohort | None, initial: dict) -> CohortForm:
    return CohortForm(
        request.POST or None,
        organisation_id=request.user.organisation_id,
        candidates=cohort_selectors.cohort_candidates(request.user.organisation_id, cohort),
        templates=selectors.templates_for_user(request.user),
        initial=initial,
    )


def _cohort_form_page(request: HttpRequest, form: CohortForm, cohort: Cohort | None) -> HttpResponse:
    return render(
        request,
        "circles/cohort_form.html",
        {"form": form, "cohort": cohort, "time_zones": sorted(time_zone_names())},
    )


@login_required
@require_http_methods(["GET", "POST"])
def cohort_create(request: HttpRequest) -> HttpResponse:
    access.require_cohort_planner(request.user)
    shipped = selectors.templates_for_user(request.user).filter(organisation=None).first()
    initial = {"time_zone": request.user.zone.key, "template": shipped.pk if shipped else None}
    form = _cohort_form(request, None, initial)
    if request.method == "POST" and form.is_valid():
        try:
            cohort = cohorts.cohort_create(
                actor=request.user,
                template=form.cleaned_data["template"],
                members=list(form.cleaned_data["members"]),
                **form.details(),
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, f"“{cohort.name}” is set up. Say who to keep apart, then make a plan.")
            return redirect("circles:cohort-detail", cohort.pk)
    return _cohort_form_page(request, form, None)


@login_required
@require_http_methods(["GET", "POST"])
def cohort_edit(request: HttpRequest, pk: int) -> HttpResponse:
    cohort = access.get_cohort_for_user(request.user, pk)
    form = _cohort_form(request, cohort, CohortForm.initial_from(cohort))
    if request.method == "POST" and form.is_valid():
        try:
            cohorts.cohort_update(
                actor=request.user,
                cohort=cohort,
                template=form.cleaned_data["template"],
                members=list(form.cleaned_data["members"]),
                **form.details(),
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(
                request, "Saved. Cycles still to come follow the change; started ones stay as they were."
            )
            return redirect("circles:cohort-detail", cohort.pk)
    return _cohort_form_page(request, form, cohort)


def _cycle_choices(cohort: Cohort) -> list[tuple[int, str]]:
    started = cohorts.started_cycles(cohort, timezone.now())
    return [
        (cycle, f"Cycle {cycle + 1}, from {cohorts.cycle_start(cohort, cycle):%d %b %Y}")
        for cycle in range(started, cohort.cycles)
    ]


def _detail_page(
    request: HttpRequest,
    cohort: Cohort,
    *,
    keep_apart_form: KeepApartForm | None = None,
    unavailable_form: UnavailableForm | None = None,
) -> HttpResponse:
    people = cohort_selectors.cohort_people(cohort)
    context = {
        "cohort": cohort,
        "preview": cohort_selectors.cohort_preview(cohort, now=timezone.now()),
        "keep_apart": cohort.keep_apart.select_related("first", "second"),
        "unavailable": cohort.unavailability.select_related("user"),
        "keep_apart_form": keep_apart_form or KeepApartForm(people=people),
        "unavailable_form": unavailable_form or UnavailableForm(people=people, cycles=_cycle_choices(cohort)),
        "people_count": len(people),
    }
    return render(request, "circles/cohort_detail.html", context)


@login_required
@require_GET
def cohort_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_page(request, access.get_cohort_for_user(request.user, pk))


def _act(request: HttpRequest, cohort: Cohort, call, describe) -> HttpResponse:
    """Run a button's service; say what happened, or why not, on the cohort page."""
    try:
        result = call()
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    else:
        messages.success(request, describe(result))
    return redirect("circles:cohort-detail", cohort.pk)


def _planned(repeats: int) -> str:
    if repeats == 0:
        return "Planned. Nobody meets anyone twice."
    return (
        f"Planned, with {repeats} repeated pair{'s' if repeats != 1 else ''} "
        "(fewer was not possible in the time given: plan again to try once more)."
    )


def _published(result: cohorts.PublishResult) -> str:
    return (
        f"Published: {result.created} new circles, {result.changed} changed, {result.closed} closed. "
        f"{result.notified} people were told about their new circles."
    )


@login_required
@require_POST
def cohort_plan(request: HttpRequest, pk: int) -> HttpResponse:
    cohort = access.get_cohort_for_user(request.user, pk)
    return _act(request, cohort, lambda: cohorts.cohort_plan(actor=request.user, cohort=cohort), _planned)


@login_required
@require_POST
def cohort_publish(request: HttpRequest, pk: int) -> HttpResponse:
    cohort = access.get_cohort_for_user(request.user, pk)
    return _act(
        request, cohort, lambda: cohorts.cohort_publish(actor=request.user, cohort=cohort), _published
    )


def _add_row(request: HttpRequest, cohort: Cohort, form, service, done: str, form_name: str) -> HttpResponse:
    """Validate one of the detail page's add forms, call its service, and redirect; or show its errors."""
    if form.is_valid():
        try:
            service(actor=request.user, cohort=cohort, **form.cleaned_data)
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, done)
            return redirect("circles:cohort-detail", cohort.pk)
    return _detail_page(request, cohort, **{form_name: form})


@login_required
@require_POST
def keep_apart_add(request: HttpRequest, pk: int) -> HttpResponse:
    cohort = access.get_cohort_for_user(request.user, pk)
    form = KeepApartForm(request.POST, people=cohort_selectors.cohort_people(cohort))
    done = "They will not share a circle in any cycle still to come."
    return _add_row(request, cohort, form, cohorts.keep_apart_add, done, "keep_apart_form")


@login_required
@require_POST
def keep_apart_delete(request: HttpRequest, pk: int, pair_pk: int) -> HttpResponse:
    cohort = access.get_cohort_for_user(request.user, pk)
    cohorts.keep_apart_remove(actor=request.user, cohort=cohort, pair_id=pair_pk)
    messages.success(request, "They may share a circle in a future plan.")
    return redirect("circles:cohort-detail", cohort.pk)


@login_required
@require_POST
def unavailable_add(request: HttpRequest, pk: int) -> HttpResponse:
    cohort = access.get_cohort_for_user(request.user, pk)
    form = UnavailableForm(
        request.POST, people=cohort_selectors.cohort_people(cohort), cycles=_cycle_choices(cohort)
    )
    done = "Noted: they sit that cycle out."
    return _add_row(request, cohort, form, cohorts.unavailability_add, done, "unavailable_form")


@login_required
@require_POST
def unavailable_delete(request: HttpRequest, pk: int, row_pk: int) -> HttpResponse:
    cohort = access.get_cohort_for_user(request.user, pk)
    return _act(
        request,
        cohort,
        lambda: cohorts.unavailability_remove(actor=request.user, cohort=cohort, row_id=row_pk),
        lambda _: "They take part in that cycle after all.",
    )
