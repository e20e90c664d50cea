"""Circle pages, the member home, schedules, the rota, templates and calendars.

Each view resolves access first (circles.access: outsiders 404, missing capability 403), then
validates a form, makes one service call and responds (POST, redirect, GET).
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import time_zone_names
from circles import access, calendar, selectors, services
from circles.forms import (
    AwayForm,
    CircleForm,
    CoverRequestForm,
    MemberAddForm,
    RotaForm,
    RoundFormSet,
    SessionChangeForm,
    TemplateForm,
)
from circles.models import CalendarFeed, Circle

PAGE_SIZE = 20


def _add_errors(form: Form, error: ValidationError) -> None:
    """Hand a service's ValidationError back to the form, field by field where it can."""
    if hasattr(error, "error_dict"):
        for field, errors in error.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


# --- Member home -----------------------------------------------------------------------------


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    context = {"viewer_zone": request.user.zone, "now": now}
    if _is_htmx(request):
        # The upcoming list refreshes itself each minute so a join button opens on time.
        context["upcoming"] = selectors.upcoming_sessions_for_user(request.user, now=now)
        return render(request, "circles/_upcoming_sessions.html", context)
    context["upcoming"], context["past"] = selectors.home_sessions_for_user(request.user, now=now)
    return render(request, "circles/home.html", context)


@login_required
@require_GET
def past_sessions(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    page = Paginator(selectors.past_sessions_for_user(request.user, now=now), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "circles/past_sessions.html", {"page": page, "viewer_zone": request.user.zone})


# --- Circles ---------------------------------------------------------------------------------


@login_required
@require_GET
def circle_list(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    page = Paginator(selectors.circles_for_user(request.user, now=now), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "circles/circle_list.html", {"page": page, "viewer_zone": request.user.zone})


def _circle_form_page(request, form, circle=None, status=200):
    return render(
        request,
        "circles/circle_form.html",
        {"form": form, "circle": circle, "time_zones": sorted(time_zone_names())},
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def circle_create(request: HttpRequest) -> HttpResponse:
    access.require_facilitator(request.user)
    templates = selectors.templates_for_user(request.user)
    initial = {"time_zone": request.user.zone.key, "frequency": Circle.Frequency.WEEKLY}
    form = CircleForm(request.POST or None, templates=templates, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            circle = services.circle_create(
                actor=request.user, template=form.cleaned_data["template"], **form.details()
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, f"“{circle.name}” is ready. Add its members next.")
            return redirect("circles:circle-detail", circle.pk)
    return _circle_form_page(request, form)


@login_required
@require_GET
def circle_detail(request: HttpRequest, pk: int) -> HttpResponse:
    circle = access.get_circle_for_user(request.user, pk)
    now = timezone.now()
    page = selectors.circle_page(circle, viewer=request.user, now=now)
    membership = circle.viewer_membership
    context = {
        "circle": circle,
        "page": page,
        "membership": membership,
        "can_manage": membership.is_circle_facilitator,
        "rota_form": RotaForm(initial={"rota_opt_in": membership.rota_opt_in}),
        "viewer_zone": request.user.zone,
        "now": now,
    }
    if membership.is_circle_facilitator and not circle.is_archived:
        context["member_form"] = MemberAddForm(
            organisation_id=circle.organisation_id, candidates=selectors.people_who_can_join(circle)
        )
    return render(request, "circles/circle_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def circle_edit(request: HttpRequest, pk: int) -> HttpResponse:
    circle = access.get_circle_for_user(request.user, pk, write=True)
    templates = selectors.templates_for_user(request.user)
    form = CircleForm(request.POST or None, templates=templates, initial=CircleForm.initial_from(circle))
    if request.method == "POST" and form.is_valid():
        try:
            services.circle_update(
                actor=request.user, circle=circle, template=form.cleaned_data["template"], **form.details()
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(
                request, "Saved. Coming sessions follow the new plan; past ones stay as they were."
            )
            return redirect("circles:circle-detail", circle.pk)
    return _circle_form_page(request, form, circle)


@login_required
@require_POST
def circle_archive(request: HttpRequest, pk: int) -> HttpResponse:
    circle = access.get_circle_for_user(request.user, pk, write=True)
    services.circle_archive(actor=request.user, circle=circle)
    messages.success(request, f"“{circle.name}” is closed. Its coming sessions are cancelled.")
    return redirect("circles:circle-detail", circle.pk)


# --- Membership ------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def member_add(request: HttpRequest, pk: int) -> HttpResponse:
    circle = access.get_circle_for_user(request.user, pk, write=True)
    form = MemberAddForm(
        request.POST or None,
        organisation_id=circle.organisation_id,
        candidates=selectors.people_who_can_join(circle),
    )
    if request.method == "POST" and form.is_valid():
        try:
            membership = services.membership_add(
                actor=request.user,
                circle=circle,
                person=form.cleaned_data["person"],
                role=form.cleaned_data["role"],
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, f"{membership.user.display_name} is now in “{circle.name}”.")
            return redirect("circles:circle-detail", circle.pk)
    return render(request, "circles/member_add.html", {"circle": circle, "form": form})


@login_required
@require_POST
def member_remove(request: HttpRequest, pk: int, membership_pk: int) -> HttpResponse:
    circle = access.get_circle_for_user(request.user, pk, write=True)
    membership = access.get_membership_for_user(request.user, circle, membership_pk)
    try:
        services.membership_end(actor=request.user, membership=membership)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"{membership.user.display_name} has left “{circle.name}”.")
    return redirect("circles:circle-detail", circle.pk)


@login_required
@require_POST
def circle_leave(request: HttpRequest, pk: int) -> HttpResponse:
    circle = access.get_circle_for_user(request.user, pk)
    try:
        services.membership_end(actor=request.user, membership=circle.viewer_membership)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("circles:circle-detail", circle.pk)
    messages.success(request, f"You have left “{circle.name}”. Thank you for the time you spent in it.")
    return redirect("home")


@login_required
@require_POST
def rota_opt(request: HttpRequest, pk: int) -> HttpResponse:
    circle = access.get_circle_for_user(request.user, pk)
    form = RotaForm(request.POST)
    form.is_valid()  # a single checkbox: absent means "no", so it is always valid
    services.rota_opt_set(membership=circle.viewer_membership, opt_in=form.cleaned_data["rota_opt_in"])
    if form.cleaned_data["rota_opt_in"]:
        messages.success(
            request, "Thank you: you're on the facilitation rota. Your turns show on the circle page."
        )
    else:
        messages.success(request, "You're off the facilitation rota. Your coming turns pass to others.")
    return redirect("circles:circle-detail", circle.pk)


# --- Sessions --------------------------------------------------------------------------------


@login_required
@require_GET
def session_detail(request: HttpRequest, pk: int) -> HttpResponse:
    session = access.get_session_for_user(request.user, pk)
    now = timezone.now()
    session.join_opens_at = selectors.join_opens_at(session)
    session.can_join = selectors.can_join(session, now)
    context = {
        "session": session,
        "circle": session.circle,
        "can_manage": session.circle.viewer_membership.is_circle_facilitator,
        "open_cover": selectors.open_cover_for_session(session),
        "cover_form": CoverRequestForm(),
        "viewer_zone": request.user.zone,
        "now": now,
    }
    return render(request, "circles/session_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def session_change(request: HttpRequest, pk: int) -> HttpResponse:
    session = access.get_session_for_user(request.user, pk, write=True)
    form = SessionChangeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.session_change(actor=request.user, session=session, **form.cleaned_data)
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, "Done. Members see the change and your reason with the session.")
            return redirect("circles:session-detail", session.pk)
    zone = session.circle.time_zone
    return render(
        request, "circles/session_change.html", {"session": session, "form": form, "circle_zone": zone}
    )


@login_required
@require_POST
def cover_request(request: HttpRequest, pk: int) -> HttpResponse:
    session = access.get_session_for_user(request.user, pk)
    form = CoverRequestForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    try:
        services.cover_request(user=request.user, session=session, note=note)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "Your request for cover is on the circle page for the others on the rota.")
    return redirect("circles:session-detail", session.pk)


@login_required
@require_POST
def cover_accept(request: HttpRequest, pk: int) -> HttpResponse:
    cover = access.get_cover_for_user(request.user, pk)
    try:
        services.cover_accept(user=request.user, cover=cover)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "Thank you for covering. The session now shows you as its facilitator.")
    return redirect("circles:circle-detail", cover.session.circle_id)


@login_required
@require_GET
def session_ics(request: HttpRequest, pk: int) -> HttpResponse:
    session = access.get_session_for_user(request.user, pk)
    body = calendar.calendar_for([session], name=session.circle.name)
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="alongside-session-{session.pk}.ics"'
    return response


# --- Away dates ------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def away(request: HttpRequest) -> HttpResponse:
    form = AwayForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.away_add(user=request.user, **form.cleaned_data)
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, "Saved. You won't be given a turn to facilitate on those dates.")
            return redirect("circles:away")
    today = timezone.now().astimezone(request.user.zone).date()
    periods = selectors.away_periods_for_user(request.user, today=today)
    return render(request, "circles/away.html", {"form": form, "periods": periods})


@login_required
@require_POST
def away_delete(request: HttpRequest, pk: int) -> HttpResponse:
    period = access.get_away_for_user(request.user, pk)
    services.away_remove(user=request.user, away=period)
    messages.success(request, "Those away dates are removed.")
    return redirect("circles:away")


# --- Calendar feed ---------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def calendar_settings(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        if request.POST.get("action") == "revoke":
            services.calendar_feed_revoke(user=request.user)
            messages.success(
                request, "Your calendar address no longer works. Make a new one whenever you like."
            )
        else:
            services.calendar_feed_regenerate(user=request.user)
            messages.success(request, "Here is your new calendar address. Any older one has stopped working.")
        return redirect("circles:calendar")
    feed = CalendarFeed.objects.filter(user=request.user).first()
    return render(request, "circles/calendar.html", {"feed": feed})


@require_GET
def calendar_feed(request: HttpRequest, token: str) -> HttpResponse:
    """The secret address is the only key: no sign-in, so calendar apps can fetch it."""
    feed = CalendarFeed.objects.select_related("user").filter(token=token).first()
    if feed is None or not feed.user.is_active:
        raise Http404("No such calendar.")
    body = calendar.calendar_for(selectors.feed_sessions_for_user(feed.user), name="Alongside circles")
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Cache-Control"] = "private, max-age=300"
    return response


# --- Session templates -----------------------------------------------------------------------


@login_required
@require_GET
def template_list(request: HttpRequest) -> HttpResponse:
    access.require_facilitator(request.user)
    page = Paginator(selectors.templates_for_user(request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "circles/template_list.html", {"page": page})


@login_required
@require_GET
def template_detail(request: HttpRequest, pk: int) -> HttpResponse:
    template = access.get_template_for_user(request.user, pk)
    return render(
        request, "circles/template_detail.html", {"template": template, "rounds": template.rounds.all()}
    )


def _template_form_page(request, form, formset, template=None):
    return render(
        request, "circles/template_form.html", {"form": form, "formset": formset, "template": template}
    )


@login_required
@require_http_methods(["GET", "POST"])
def template_create(request: HttpRequest) -> HttpResponse:
    access.require_facilitator(request.user)
    form = TemplateForm(request.POST or None)
    formset = RoundFormSet(request.POST or None, prefix="rounds")
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        try:
            template = services.template_create(
                actor=request.user, **form.cleaned_data, rounds=formset.specs()
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, f"“{template.name}” is saved. Choose it when you set up a circle.")
            return redirect("circles:template-detail", template.pk)
    return _template_form_page(request, form, formset)


@login_required
@require_http_methods(["GET", "POST"])
def template_edit(request: HttpRequest, pk: int) -> HttpResponse:
    template = access.get_template_for_user(request.user, pk, write=True)
    initial_rounds = [
        {"kind": r.kind, "title": r.title, "prompt": r.prompt, "minutes_per_speaker": r.minutes_per_speaker}
        for r in template.rounds.all()
    ]
    form = TemplateForm(
        request.POST or None, initial={"name": template.name, "description": template.description}
    )
    formset = RoundFormSet(request.POST or None, prefix="rounds", initial=initial_rounds)
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        try:
            services.template_update(
                actor=request.user, template=template, **form.cleaned_data, rounds=formset.specs()
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, "Saved. Circles using this template follow it from their next session.")
            return redirect("circles:template-detail", template.pk)
    return _template_form_page(request, form, formset, template)


@login_required
@require_POST
def template_copy(request: HttpRequest, pk: int) -> HttpResponse:
    template = access.get_template_for_user(request.user, pk)
    copy = services.template_copy(actor=request.user, template=template)
    messages.success(request, "Here is your copy. Change whatever you like.")
    return redirect("circles:template-edit", copy.pk)
