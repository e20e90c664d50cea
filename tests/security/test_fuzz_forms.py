"""Hypothesis against every form: 500 examples per form-handling view, as the persona allowed to use it.

An example is either a random form (any of the view's fields missing or holding anything: text,
numbers far out of range, NUL bytes, unicode, 100 kB strings, several values for one name, unknown
extra fields, a raw body that is not valid UTF-8) or a valid form with a few fields spoiled, so
the service behind the form is reached too. The server may refuse (a 200 with errors, a redirect,
a 400, 403 or 404) but never answers 5xx and never raises. Each example runs in a savepoint that
is rolled back, so every one starts from the same world.

Views that take no fields (deletions, toggles, sign-out) are listed in FIELDLESS: their body is
ignored and the authorisation matrix covers them. A new POST route must be put in one or the other.
"""

from datetime import date, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from hypothesis import given
from hypothesis import strategies as st

from accounts.forms import (
    CrisisLinkForm,
    EmailAuthenticationForm,
    InvitationAcceptForm,
    InvitationForm,
    OrganisationForm,
    PersonForm,
    ProfileForm,
)
from circles.cohort_forms import CohortForm, KeepApartForm, UnavailableForm
from circles.forms import AwayForm, CircleForm, MemberAddForm, SessionChangeForm, TemplateForm
from reflections.forms import (
    ConcernForm,
    EraseForm,
    IntentionForm,
    PromptForm,
    ReachedForm,
    ResolveForm,
    StepForm,
    ThreadForm,
)
from tests.security.expected_access import EXPECTED, GET
from tests.security.fuzzing import fuzz_settings
from tests.security.routes import address, all_routes
from tests.security.world import (
    ANONYMOUS,
    CIRCLE_FACILITATOR,
    FACILITATOR_OF_DAY,
    MEMBER,
    ORG_ADMIN,
    build_world,
)

pytestmark = pytest.mark.django_db

EXAMPLES = 500

FIELDLESS = {
    "accounts:logout",
    "accounts:person-deactivate",
    "accounts:person-reactivate",
    "accounts:invitation-revoke",
    "accounts:invitation-resend",
    "accounts:team-delete",
    "accounts:crisis-link-delete",
    "circles:circle-archive",
    "circles:member-remove",
    "circles:circle-leave",
    "circles:cover-accept",
    "circles:away-delete",
    "circles:template-copy",
    "circles:cohort-plan",
    "circles:cohort-publish",
    "circles:cohort-keep-apart-delete",
    "circles:cohort-unavailable-delete",
    "reflections:thread-delete",
    "reflections:thread-affirm",
    "reflections:reply-delete",
    "reflections:reply-affirm",
    "reflections:journal-delete",
    "reflections:prompt-remove",
    "reflections:intention-delete",
    "notifications:read-all",
    "notifications:unsubscribe",
}


def fields(form, prefix: str = "") -> list[str]:
    return [f"{prefix}{name}" for name in form.base_fields]


ROUNDS = ["rounds-TOTAL_FORMS", "rounds-INITIAL_FORMS", "rounds-MIN_NUM_FORMS", "rounds-MAX_NUM_FORMS"] + [
    f"rounds-{i}-{name}" for i in (0, 1) for name in ("kind", "title", "prompt", "minutes_per_speaker")
]
TODAY = date.today()
SOON = f"{TODAY + timedelta(days=20):%Y-%m-%d}"


def _template_form(w):
    return {
        "name": "Fuzzed template",
        "description": "",
        "rounds-TOTAL_FORMS": "1",
        "rounds-INITIAL_FORMS": "0",
        "rounds-0-kind": "check_in",
        "rounds-0-title": "Arriving",
        "rounds-0-minutes_per_speaker": "3",
    }


def _circle_form(w):
    return {
        "name": "Fuzzed circle",
        "time_zone": "Europe/London",
        "frequency": "weekly",
        "interval_weeks": "2",
        "start_date": SOON,
        "start_time": "14:00",
        "duration_minutes": "60",
        "capacity": "8",
        "template": str(w.template.pk),
        "agreements": "Be kind.",
    }


def _cohort_form(w):
    members = [str(w.people[p].pk) for p in (MEMBER, FACILITATOR_OF_DAY, CIRCLE_FACILITATOR)]
    return {
        "name": "Fuzzed cohort",
        "members": members,
        "circle_size": "3",
        "cycles": "2",
        "cycle_weeks": "4",
        "start_date": SOON,
        "start_time": "10:00",
        "time_zone": "Europe/London",
        "duration_minutes": "60",
        "template": str(w.template.pk),
    }


# route -> (persona allowed to use it, the names the view reads, a valid form for it)
FORMS = {
    "accounts:login": (
        ANONYMOUS,
        fields(EmailAuthenticationForm),
        lambda w: {"username": w.people[MEMBER].email, "password": "wrong"},
    ),
    "accounts:profile": (
        MEMBER,
        fields(ProfileForm),
        lambda w: {"display_name": "Alice", "time_zone": "Europe/London", "notify_by_email": "on"},
    ),
    "accounts:invitation-accept": (
        ANONYMOUS,
        fields(InvitationAcceptForm),
        lambda w: {
            "display_name": "New Person",
            "time_zone": "Europe/London",
            "password": "a long enough passphrase 42",
            "password_again": "a long enough passphrase 42",
        },
    ),
    "accounts:person": (ORG_ADMIN, fields(PersonForm), lambda w: {"is_member": "on", "team": str(w.team.pk)}),
    "accounts:invitation-create": (
        ORG_ADMIN,
        fields(InvitationForm),
        lambda w: {"email": "someone.new@example.org", "display_name": "Someone", "team": str(w.team.pk)},
    ),
    "accounts:invitation-import": (ORG_ADMIN, ["file"], lambda w: {}),
    "accounts:organisation": (
        ORG_ADMIN,
        fields(OrganisationForm),
        lambda w: {
            "name": "Riverside Trust",
            "time_zone": "Europe/London",
            "anonymity_threshold": "5",
            "chat_retention_days": "0",
            "reflection_retention_days": "365",
            "crisis_text": "Call us.",
        },
    ),
    "accounts:team-create": (ORG_ADMIN, ["new-team-name"], lambda w: {"new-team-name": "Night team"}),
    "accounts:team-rename": (
        ORG_ADMIN,
        ["team-{team}-name"],
        lambda w: {f"team-{w.team.pk}-name": "Day team"},
    ),
    "accounts:crisis-link-create": (
        ORG_ADMIN,
        fields(CrisisLinkForm),
        lambda w: {"label": "Helpline", "url": "https://example.org", "phone": "111"},
    ),
    "accounts:password_change": (
        MEMBER,
        ["old_password", "new_password1", "new_password2"],
        lambda w: {
            "old_password": "x",
            "new_password1": "a new long passphrase 7",
            "new_password2": "a new long passphrase 7",
        },
    ),
    "accounts:password_reset": (ANONYMOUS, ["email"], lambda w: {"email": w.people[MEMBER].email}),
    "accounts:password_reset_confirm": (
        ANONYMOUS,
        ["new_password1", "new_password2"],
        lambda w: {"new_password1": "a new long passphrase 7", "new_password2": "a new long passphrase 7"},
    ),
    "circles:circle-create": (CIRCLE_FACILITATOR, fields(CircleForm), _circle_form),
    "circles:circle-edit": (CIRCLE_FACILITATOR, fields(CircleForm), _circle_form),
    "circles:member-add": (
        CIRCLE_FACILITATOR,
        fields(MemberAddForm),
        lambda w: {"person": str(w.people["other_circle"].pk), "role": "member"},
    ),
    "circles:rota-opt": (MEMBER, ["rota_opt_in"], lambda w: {"rota_opt_in": "on"}),
    "circles:session-change": (
        CIRCLE_FACILITATOR,
        fields(SessionChangeForm),
        lambda w: {"action": "move", "reason": "Room booked", "new_date": SOON, "new_time": "15:00"},
    ),
    "circles:cover-request": (FACILITATOR_OF_DAY, ["note"], lambda w: {"note": "Away"}),
    "circles:away": (
        MEMBER,
        fields(AwayForm),
        lambda w: {"starts_on": SOON, "ends_on": SOON, "note": "Leave"},
    ),
    "circles:calendar": (MEMBER, ["action"], lambda w: {"action": "revoke"}),
    "circles:template-create": (CIRCLE_FACILITATOR, fields(TemplateForm) + ROUNDS, _template_form),
    "circles:template-edit": (CIRCLE_FACILITATOR, fields(TemplateForm) + ROUNDS, _template_form),
    "circles:cohort-create": (CIRCLE_FACILITATOR, fields(CohortForm), _cohort_form),
    "circles:cohort-edit": (CIRCLE_FACILITATOR, fields(CohortForm), _cohort_form),
    "circles:cohort-keep-apart": (
        CIRCLE_FACILITATOR,
        fields(KeepApartForm),
        lambda w: {"first": str(w.people[MEMBER].pk), "second": str(w.people[FACILITATOR_OF_DAY].pk)},
    ),
    "circles:cohort-unavailable": (
        CIRCLE_FACILITATOR,
        fields(UnavailableForm),
        lambda w: {"person": str(w.people[MEMBER].pk), "cycle": "2"},
    ),
    "reflections:thread-new": (
        MEMBER,
        fields(ThreadForm),
        lambda w: {"kind": "reflection", "title": "A thought", "body": "More", "prompt": str(w.prompt.pk)},
    ),
    "reflections:thread-edit": (MEMBER, ["title", "body"], lambda w: {"title": "Edited", "body": "Now"}),
    "reflections:thread-takeaway": (MEMBER, ["takeaway"], lambda w: {"takeaway": "What I take away"}),
    "reflections:reply-create": (MEMBER, ["body"], lambda w: {"body": "A perspective"}),
    "reflections:reply-edit": (MEMBER, ["body"], lambda w: {"body": "Edited perspective"}),
    "reflections:concern-new": (
        MEMBER,
        fields(ConcernForm),
        lambda w: {"moment": "Today", "reason": "Worried"},
    ),
    "reflections:concern-resolve": (CIRCLE_FACILITATOR, fields(ResolveForm), lambda w: {"note": "Talked"}),
    "reflections:prompts": (
        CIRCLE_FACILITATOR,
        fields(PromptForm),
        lambda w: {"task": "connection", "text": "What connects us?"},
    ),
    "reflections:journal": (MEMBER, ["body"], lambda w: {"body": "Dear journal"}),
    "reflections:journal-edit": (MEMBER, ["body"], lambda w: {"body": "Edited entry"}),
    "reflections:intentions": (
        MEMBER,
        fields(IntentionForm),
        lambda w: {"text": "Rest more", "circle": str(w.circle.pk), "nudge_after_days": "7"},
    ),
    "reflections:intention": (
        MEMBER,
        fields(IntentionForm),
        lambda w: {"text": "Rest more", "circle": "", "nudge_after_days": "14"},
    ),
    "reflections:intention-step": (MEMBER, fields(StepForm), lambda w: {"text": "Took a walk"}),
    "reflections:intention-reached": (MEMBER, fields(ReachedForm), lambda w: {"note": "Done"}),
    "reflections:my-data-erase": (MEMBER, fields(EraseForm), lambda w: {"posts": "keep", "confirm": "wrong"}),
    "notifications:read": (MEMBER, ["next"], lambda w: {"next": "/notifications/"}),
    "notifications:digest": (MEMBER, ["weekly_digest"], lambda w: {"weekly_digest": "on"}),
}

HUGE = ["x" * 100_000, "é" * 30_000, "9" * 5_000, "\x00" * 1_000, "<b>" * 20_000]
ODD = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "0",
    "-1",
    "1",
    "2",
    "-2147483649",
    "2147483648",
    "32768",
    "65536",
    "9223372036854775808",
    "1e309",
    "NaN",
    "inf",
    "-0",
    "0x10",
    "1.5",
    "true",
    "on",
    "off",
    "null",
    "[]",
    "{}",
    "2025-02-30",
    "0000-00-00",
    "9999-12-31",
    "10000-01-01",
    "0001-01-01",
    "25:61",
    "24:00",
    "23:59:60",
    "Europe/London",
    "Mars/Olympus_Mons",
    "UTC",
    "../../etc/passwd",
    "%00",
    "\u202e",
    "\U0001f469\U0001f3fd\u200d\u2695\ufe0f",
    "\ufeff",
    "\r\n",
    "'; DROP TABLE accounts_user;--",
    "https://evil.example/",
    "javascript:alert(1)",
    "//evil.example",
    "mailto:a@b",
    "a@b",
    "x" * 301,
]
text = st.text(st.characters(codec="utf-8"), max_size=40)
value = st.one_of(
    st.sampled_from(ODD),
    text,
    st.integers().map(str),
    st.sampled_from(HUGE),
)
values = st.one_of(value, st.lists(value, min_size=2, max_size=3))


def form_data(names: list[str], valid: dict):
    random_form = st.fixed_dictionaries({}, optional={name: values for name in names})
    spoiled = st.fixed_dictionaries(
        {}, optional={name: st.one_of(values, st.just(None)) for name in names}
    ).map(lambda changes: {k: v for k, v in {**valid, **changes}.items() if v is not None})
    extra = st.dictionaries(text, values, max_size=2)
    return st.tuples(st.one_of(random_form, spoiled), extra).map(lambda pair: {**pair[1], **pair[0]})


raw_body = st.binary(max_size=200)


@pytest.fixture
def world(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return build_world()


def test_every_post_route_is_fuzzed_or_takes_no_fields():
    post_routes = {key for key, entry in EXPECTED.items() if entry.method != GET}
    assert post_routes == set(FORMS) | FIELDLESS


def _url(world, client, route_key):
    route = next(route for route in all_routes() if route.key == route_key)
    url = address(world, route)
    if route_key == "accounts:password_reset_confirm":
        # The emailed link puts the token in the session and forwards to the form's own address.
        url = client.get(url)["Location"]
    return url


@pytest.mark.parametrize("route_key", sorted(FORMS))
def test_form_never_answers_with_a_server_error(client, world, route_key):
    persona, names, valid = FORMS[route_key]
    names = [name.format(team=world.team.pk) for name in names]
    user = world.people[persona]

    def sign_in():
        if user is not None:
            client.force_login(user, backend="accounts.backends.UserBackend")

    sign_in()
    url = _url(world, client, route_key)
    data_strategy = form_data(names, valid(world))
    if route_key == "accounts:invitation-import":
        data_strategy = st.builds(
            lambda content, extra: {**extra, "file": SimpleUploadedFile("people.csv", content)},
            st.one_of(
                st.binary(max_size=400), text.map(str.encode), st.sampled_from([h.encode() for h in HUGE])
            ),
            st.dictionaries(text, values, max_size=2),
        )

    @fuzz_settings(EXAMPLES)
    @given(data=data_strategy, raw=st.one_of(st.none(), raw_body), odd_body=st.integers(0, 19))
    def post(data, raw, odd_body):
        with transaction.atomic():
            if odd_body == 0 and raw is not None:
                # One example in twenty: a body the browser would never send.
                response = client.post(url, raw, content_type="application/x-www-form-urlencoded")
            else:
                response = client.post(url, data)
            transaction.set_rollback(True)
        assert response.status_code < 500, response.status_code
        if "sessionid" in response.cookies:
            # Signing in, signing out and erasing an account change the session: start again signed in.
            sign_in()

    post()
