from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import selectors, services
from accounts.access import (
    get_crisis_link_for_admin,
    get_invitation_for_admin,
    get_person_for_admin,
    get_team_for_admin,
    org_admin_required,
)
from accounts.forms import (
    CrisisLinkForm,
    EmailAuthenticationForm,
    InvitationAcceptForm,
    InvitationCsvForm,
    InvitationForm,
    OrganisationForm,
    PersonForm,
    ProfileForm,
    TeamForm,
)
from accounts.models import time_zone_names
from accounts.selectors import InvitationUnavailable
from accounts.services import CsvImportError
from circles import reminders


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = EmailAuthenticationForm
    redirect_authenticated_user = True


def locked_out(request: HttpRequest, credentials=None, *args, **kwargs) -> HttpResponse:
    """django-axes lockout: the same page and message as any failed sign-in, so it reveals nothing."""
    form = EmailAuthenticationForm(request, data=request.POST or None)
    form.is_valid()  # populates the field values for redisplay; the result is not trusted
    form.errors.clear()
    form.add_error(None, EmailAuthenticationForm.error_messages["invalid_login"])
    return render(request, "accounts/login.html", {"form": form}, status=429)


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    form = ProfileForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            form.save()
            # Reminder choices, quiet hours and zone feed the reminder outbox: re-plan it with the change.
            reminders.reminders_replan_user(user=request.user)
        messages.success(request, "Your profile and preferences are saved.")
        return redirect("accounts:profile")
    return render(request, "accounts/profile.html", {"form": form, "time_zones": sorted(time_zone_names())})


# --- Invitations: accepting --------------------------------------------------------------------

PAGE_SIZE = 25
AUDIT_PAGE_SIZE = 50
_PROBLEM_STATUS = {"unknown": 404, "expired": 410, "used": 410, "revoked": 410, "account-exists": 409}


def _no_referrer(response: HttpResponse) -> HttpResponse:
    # The URL carries the secret token: never leak it to another site through the Referer header.
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _invitation_problem(request: HttpRequest, problem: InvitationUnavailable) -> HttpResponse:
    response = render(
        request,
        "accounts/invitation_problem.html",
        {"reason": problem.reason, "invitation": problem.invitation},
        status=_PROBLEM_STATUS[problem.reason],
    )
    return _no_referrer(response)


@require_http_methods(["GET", "POST"])
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    try:
        invitation = selectors.invitation_for_token(token)
    except InvitationUnavailable as problem:
        return _invitation_problem(request, problem)
    form = InvitationAcceptForm(request.POST or None, initial={"display_name": invitation.display_name})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = services.invitation_accept(
                token=token,
                password=data["password"],
                display_name=data["display_name"],
                pronouns=data["pronouns"],
                time_zone=data["time_zone"],
            )
        except InvitationUnavailable as problem:
            return _invitation_problem(request, problem)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            login(request, user, backend="accounts.backends.UserBackend")
            messages.success(request, f"Welcome to Alongside, {user.display_name}. You are signed in.")
            return redirect("home")
    return _no_referrer(
        render(
            request,
            "accounts/invitation_accept.html",
            {"form": form, "invitation": invitation, "time_zones": sorted(time_zone_names())},
        )
    )


# --- People ------------------------------------------------------------------------------------


def _people_page(request: HttpRequest, *, invite_form=None, csv_form=None, csv_errors=None) -> HttpResponse:
    admin = request.user
    search = request.GET.get("q", "").strip()
    people_page = Paginator(selectors.people_for_admin(admin, search=search), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    invitations_page = Paginator(selectors.pending_invitations_for_admin(admin), PAGE_SIZE).get_page(
        request.GET.get("invitations_page")
    )
    context = {
        "search": search,
        "people_page": people_page,
        "invitations_page": invitations_page,
        "invite_form": invite_form or InvitationForm(organisation_id=admin.organisation_id),
        "csv_form": csv_form or InvitationCsvForm(),
        "csv_errors": csv_errors,
    }
    return render(request, "accounts/people.html", context)


@require_GET
@org_admin_required
def people(request: HttpRequest) -> HttpResponse:
    return _people_page(request)


@require_POST
@org_admin_required
def invitation_create(request: HttpRequest) -> HttpResponse:
    form = InvitationForm(request.POST, organisation_id=request.user.organisation_id)
    if form.is_valid():
        try:
            invitation = services.invitation_send(
                organisation=request.user.organisation, invited_by=request.user, **form.cleaned_data
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Invitation sent to {invitation.email}.")
            return redirect("accounts:people")
    return _people_page(request, invite_form=form)


@require_POST
@org_admin_required
def invitation_import(request: HttpRequest) -> HttpResponse:
    form = InvitationCsvForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            invitations = services.invitations_import_csv(
                organisation=request.user.organisation,
                invited_by=request.user,
                file=form.cleaned_data["file"],
            )
        except CsvImportError as error:
            messages.error(request, "Nothing was imported. Fix the rows below and upload the file again.")
            return _people_page(request, csv_form=form, csv_errors=error.errors)
        count = len(invitations)
        messages.success(request, f"Invitations sent to {count} {'person' if count == 1 else 'people'}.")
        return redirect("accounts:people")
    return _people_page(request, csv_form=form)


@require_POST
@login_required
def invitation_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    invitation = get_invitation_for_admin(request.user, pk)
    try:
        services.invitation_revoke(actor=request.user, invitation=invitation)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request, f"The invitation for {invitation.email} is withdrawn; its link no longer works."
        )
    return redirect("accounts:people")


@require_POST
@login_required
def invitation_resend(request: HttpRequest, pk: int) -> HttpResponse:
    invitation = get_invitation_for_admin(request.user, pk)
    try:
        services.invitation_resend(actor=request.user, invitation=invitation)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"A fresh invitation is on its way to {invitation.email}.")
    return redirect("accounts:people")


@require_http_methods(["GET", "POST"])
@login_required
def person(request: HttpRequest, pk: int) -> HttpResponse:
    person = selectors.person_detail_for_admin(get_person_for_admin(request.user, pk))
    form = PersonForm(
        request.POST or None,
        person=person,
        teams=selectors.teams_for_organisation(person.organisation_id),
        colleagues=selectors.colleagues_for_person(person),
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.person_update_capabilities(actor=request.user, person=person, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Saved the changes for {person.display_name}.")
            return redirect("accounts:person", pk=person.pk)
    return render(request, "accounts/person.html", {"person": person, "form": form})


@require_POST
@login_required
def person_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    person = get_person_for_admin(request.user, pk)
    try:
        services.person_deactivate(actor=request.user, person=person)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request, f"{person.display_name} is deactivated: they can't sign in, and what they wrote stays."
        )
    return redirect("accounts:person", pk=person.pk)


@require_POST
@login_required
def person_reactivate(request: HttpRequest, pk: int) -> HttpResponse:
    person = get_person_for_admin(request.user, pk)
    services.person_reactivate(actor=request.user, person=person)
    messages.success(request, f"{person.display_name} can sign in again.")
    return redirect("accounts:person", pk=person.pk)


# --- Organisation ------------------------------------------------------------------------------


def _organisation_page(
    request: HttpRequest, *, settings_form=None, team_form=None, rename=None, crisis_form=None
) -> HttpResponse:
    """`rename` is (team pk, bound form) when a rename failed and must be shown with its error."""
    organisation = request.user.organisation
    teams = list(selectors.teams_with_counts_for_admin(request.user))
    team_rows = [
        (
            team,
            rename[1]
            if rename and rename[0] == team.pk
            else TeamForm(prefix=f"team-{team.pk}", initial={"name": team.name}, renaming=team.name),
        )
        for team in teams
    ]
    if settings_form is None:
        settings_form = OrganisationForm(
            initial={field: getattr(organisation, field) for field in OrganisationForm.base_fields}
        )
    context = {
        "organisation": organisation,
        "settings_form": settings_form,
        "team_form": team_form or TeamForm(prefix="new-team"),
        "team_rows": team_rows,
        "crisis_links": list(organisation.crisis_links.all()),
        "crisis_form": crisis_form or CrisisLinkForm(),
        "time_zones": sorted(time_zone_names()),
    }
    return render(request, "accounts/organisation.html", context)


@require_http_methods(["GET", "POST"])
@org_admin_required
def organisation(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _organisation_page(request)
    form = OrganisationForm(request.POST)
    if form.is_valid():
        try:
            services.organisation_update(
                actor=request.user, organisation=request.user.organisation, **form.cleaned_data
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, "The organisation's settings are saved.")
            return redirect("accounts:organisation")
    return _organisation_page(request, settings_form=form)


@require_POST
@org_admin_required
def team_create(request: HttpRequest) -> HttpResponse:
    form = TeamForm(request.POST, prefix="new-team")
    if form.is_valid():
        try:
            team = services.team_create(
                actor=request.user, organisation=request.user.organisation, name=form.cleaned_data["name"]
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Team “{team.name}” added.")
            return redirect("accounts:organisation")
    return _organisation_page(request, team_form=form)


@require_POST
@login_required
def team_rename(request: HttpRequest, pk: int) -> HttpResponse:
    team = get_team_for_admin(request.user, pk)
    form = TeamForm(request.POST, prefix=f"team-{team.pk}", renaming=team.name)
    if form.is_valid():
        try:
            services.team_rename(actor=request.user, team=team, name=form.cleaned_data["name"])
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Team renamed to “{team.name}”.")
            return redirect("accounts:organisation")
    return _organisation_page(request, rename=(team.pk, form))


@require_POST
@login_required
def team_delete(request: HttpRequest, pk: int) -> HttpResponse:
    team = get_team_for_admin(request.user, pk)
    services.team_delete(actor=request.user, team=team)
    messages.success(request, f"Team “{team.name}” removed. Its people are still here, without a team.")
    return redirect("accounts:organisation")


@require_POST
@org_admin_required
def crisis_link_create(request: HttpRequest) -> HttpResponse:
    form = CrisisLinkForm(request.POST)
    if form.is_valid():
        try:
            link = services.crisis_link_add(
                actor=request.user, organisation=request.user.organisation, **form.cleaned_data
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"“{link.label}” added to the crisis links.")
            return redirect("accounts:organisation")
    return _organisation_page(request, crisis_form=form)


@require_POST
@login_required
def crisis_link_delete(request: HttpRequest, pk: int) -> HttpResponse:
    link = get_crisis_link_for_admin(request.user, pk)
    services.crisis_link_remove(actor=request.user, link=link)
    messages.success(request, f"“{link.label}” removed from the crisis links.")
    return redirect("accounts:organisation")


# --- Audit log ---------------------------------------------------------------------------------


@require_GET
@org_admin_required
def audit_log(request: HttpRequest) -> HttpResponse:
    entries = Paginator(selectors.audit_entries_for_admin(request.user), AUDIT_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "accounts/audit.html", {"entries": entries})
