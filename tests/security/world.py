"""One small organisation with one of everything, and the eight personas of the authorisation matrix.

Every object a URL can name exists here, so each route is asked about a real object: a circle with
a session (its room open now), a cover request, a thread with a perspective, a concern, a prompt,
a cohort with a keep-apart pair, and the member's own private things (journal, intention, away
dates, calendar feed, a notification). The member owns the private things, so everyone else must
get 404 for them.
"""

import secrets
from datetime import date, time, timedelta
from types import SimpleNamespace

from django.contrib.auth.tokens import default_token_generator
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.models import CrisisLink, Invitation
from accounts.selectors import token_hash
from circles import reminders
from circles.models import (
    AwayPeriod,
    CalendarFeed,
    Cohort,
    CohortKeepApart,
    CohortMember,
    CohortUnavailability,
    CoverRequest,
    Membership,
    Notification,
    SessionTemplate,
    TemplateRound,
)
from insights.models import TeamMonthRollup
from insights.privacy import group_key_for_team
from insights.selectors import months_shown
from reflections.models import ConcernReport, Intention, JournalEntry, Prompt, Reply, Thread
from tests.circles.live_support import make_session
from tests.factories import make_circle, make_org, make_person, make_team

# The personas, in the order the expected table lists them.
ANONYMOUS = "anonymous"
OTHER_ORG = "other_org"
OTHER_CIRCLE = "other_circle"
MEMBER = "member"
FACILITATOR_OF_DAY = "facilitator_of_day"
CIRCLE_FACILITATOR = "circle_facilitator"
MANAGER = "manager"
ORG_ADMIN = "org_admin"
PERSONAS = (
    ANONYMOUS,
    OTHER_ORG,
    OTHER_CIRCLE,
    MEMBER,
    FACILITATOR_OF_DAY,
    CIRCLE_FACILITATOR,
    MANAGER,
    ORG_ADMIN,
)


def build_world() -> SimpleNamespace:
    org = make_org("Riverside Trust")
    crisis_team = make_team(org, "Crisis team")
    community_team = make_team(org, "Community team")
    elsewhere = make_org("Elsewhere Health")

    # Someone from another organisation holds every capability there: it must buy nothing here.
    outsider = make_person(elsewhere, "Otto Outsider", is_org_admin=True, is_facilitator=True)
    make_circle(outsider, "Elsewhere circle")
    fran = make_person(org, "Fran Facilitator", team=crisis_team, is_facilitator=True)
    alice = make_person(org, "Alice Member", team=crisis_team)
    dana = make_person(org, "Dana Daysfacilitator", team=crisis_team)
    mia = make_person(org, "Mia Othercircle", team=crisis_team)
    finn = make_person(org, "Finn Otherfacilitator", team=community_team, is_facilitator=True)
    manager = make_person(
        org, "Mo Manager", team=community_team, is_member=False, managed_teams=[crisis_team]
    )
    admin = make_person(org, "Ada Admin", team=community_team, is_org_admin=True)
    # The password-reset link belongs to someone who never signs in here: signing in changes the
    # person's last_login, which invalidates their reset token.
    rita = make_person(org, "Rita Reset", team=community_team)

    circle = make_circle(fran, "Tuesday circle", members=[alice, dana])
    Membership.objects.filter(circle=circle, user=dana).update(rota_opt_in=True)
    make_circle(finn, "Thursday circle", members=[mia])
    membership = Membership.objects.get(circle=circle, user=alice)

    # The room opens ten minutes before the start: starting in five minutes, it is open now.
    session = make_session(circle, starts_in=timedelta(minutes=5), facilitator=dana)
    cover = CoverRequest.objects.create(session=session, requested_by=dana, note="Away that day")

    template = SessionTemplate.objects.create(organisation=org, name="Our circle", created_by=fran)
    TemplateRound.objects.create(
        template=template, position=0, kind="check_in", title="Arriving", minutes_per_speaker=2
    )

    prompt = Prompt.objects.create(
        organisation=org, task="connection", text="What helped you feel connected?", created_by=fran
    )
    thread = Thread.objects.create(
        circle=circle, author=alice, kind="situation", title="A hard shift", body="…"
    )
    reply = Reply.objects.create(thread=thread, author=alice, body="Adding what happened next.")
    concern = ConcernReport.objects.create(circle=circle, reporter=alice, thread=thread, reason="Worried.")
    journal_entry = JournalEntry.objects.create(author=alice, body="Only for me.")
    intention = Intention.objects.create(owner=alice, text="Asking for help sooner")
    away = AwayPeriod.objects.create(
        user=alice, starts_on=date.today() + timedelta(days=30), ends_on=date.today() + timedelta(days=37)
    )
    feed = CalendarFeed.objects.create(user=alice, token=secrets.token_urlsafe(32))
    notification = Notification.objects.create(user=alice, title="Your circle meets tomorrow", url="/")

    invitation_token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        organisation=org,
        email="new.person@example.org",
        team=crisis_team,
        token_hash=token_hash(invitation_token),
        invited_by=admin,
        expires_at=timezone.now() + timedelta(days=7),
    )
    crisis_link = CrisisLink.objects.create(
        organisation=org, label="Staff support line", phone="0800 000 000"
    )

    cohort = Cohort.objects.create(
        organisation=org,
        name="Spring cohort",
        circle_size=4,
        cycles=3,
        cycle_weeks=4,
        start_date=date.today() + timedelta(days=60),
        time_zone="Europe/London",
        start_time=time(14, 0),
        duration_minutes=60,
        template=template,
        created_by=fran,
    )
    CohortMember.objects.bulk_create(CohortMember(cohort=cohort, user=p) for p in (alice, dana, mia, finn))
    keep_apart = CohortKeepApart.objects.create(cohort=cohort, first=alice, second=dana)
    unavailability = CohortUnavailability.objects.create(cohort=cohort, user=mia, cycle=1)

    # Insights show a team only once a refresh has counted at least k (5) staff in it.
    months = months_shown(org)
    for team in (crisis_team, community_team):
        TeamMonthRollup.objects.create(organisation=org, team=team, month=months[0], staff=6)

    people = {
        ANONYMOUS: None,
        OTHER_ORG: outsider,
        OTHER_CIRCLE: mia,
        MEMBER: alice,
        FACILITATOR_OF_DAY: dana,
        CIRCLE_FACILITATOR: fran,
        MANAGER: manager,
        ORG_ADMIN: admin,
    }
    return SimpleNamespace(
        org=org,
        people=people,
        team=crisis_team,
        circle=circle,
        membership=membership,
        session=session,
        cover=cover,
        template=template,
        prompt=prompt,
        thread=thread,
        reply=reply,
        concern=concern,
        journal_entry=journal_entry,
        intention=intention,
        away=away,
        feed=feed,
        notification=notification,
        invitation=invitation,
        invitation_token=invitation_token,
        crisis_link=crisis_link,
        cohort=cohort,
        keep_apart=keep_apart,
        unavailability=unavailability,
        month=f"{months[1]:%Y-%m}",
        group_key=group_key_for_team(crisis_team.pk),
        unsubscribe_token=reminders.unsubscribe_token(alice),
        reset_uid=urlsafe_base64_encode(force_bytes(rita.pk)),
        reset_token=default_token_generator.make_token(rita),
    )


# URL kwargs by name where the name alone says which object it is.
KWARG_OBJECTS = {
    "circle_pk": "circle",
    "membership_pk": "membership",
    "pair_pk": "keep_apart",
    "row_pk": "unavailability",
    "month": "month",
    "key": "group_key",
    "uidb64": "reset_uid",
}

# `pk` and `token` mean a different object on each route: the route's own word for it.
ROUTE_OBJECTS = {
    "accounts:invitation-accept": {"token": "invitation_token"},
    "accounts:person": {"pk": "people.member"},
    "accounts:person-deactivate": {"pk": "people.member"},
    "accounts:person-reactivate": {"pk": "people.member"},
    "accounts:invitation-revoke": {"pk": "invitation"},
    "accounts:invitation-resend": {"pk": "invitation"},
    "accounts:team-rename": {"pk": "team"},
    "accounts:team-delete": {"pk": "team"},
    "accounts:crisis-link-delete": {"pk": "crisis_link"},
    "accounts:password_reset_confirm": {"token": "reset_token"},
    "circles:circle-detail": {"pk": "circle"},
    "circles:circle-edit": {"pk": "circle"},
    "circles:circle-archive": {"pk": "circle"},
    "circles:member-add": {"pk": "circle"},
    "circles:member-remove": {"pk": "circle"},
    "circles:circle-leave": {"pk": "circle"},
    "circles:rota-opt": {"pk": "circle"},
    "circles:session-detail": {"pk": "session"},
    "circles:session-change": {"pk": "session"},
    "circles:session-room": {"pk": "session"},
    "circles:cover-request": {"pk": "session"},
    "circles:session-ics": {"pk": "session"},
    "circles:cover-accept": {"pk": "cover"},
    "circles:away-delete": {"pk": "away"},
    "circles:calendar-feed": {"token": "feed.token"},
    "circles:template-detail": {"pk": "template"},
    "circles:template-edit": {"pk": "template"},
    "circles:template-copy": {"pk": "template"},
    "circles:cohort-detail": {"pk": "cohort"},
    "circles:cohort-edit": {"pk": "cohort"},
    "circles:cohort-plan": {"pk": "cohort"},
    "circles:cohort-publish": {"pk": "cohort"},
    "circles:cohort-keep-apart": {"pk": "cohort"},
    "circles:cohort-keep-apart-delete": {"pk": "cohort"},
    "circles:cohort-unavailable": {"pk": "cohort"},
    "circles:cohort-unavailable-delete": {"pk": "cohort"},
    "reflections:concern-resolve": {"pk": "concern"},
    "reflections:thread": {"pk": "thread"},
    "reflections:thread-edit": {"pk": "thread"},
    "reflections:thread-delete": {"pk": "thread"},
    "reflections:thread-takeaway": {"pk": "thread"},
    "reflections:thread-affirm": {"pk": "thread"},
    "reflections:reply-create": {"pk": "thread"},
    "reflections:replies-after": {"pk": "thread"},
    "reflections:reply-edit": {"pk": "reply"},
    "reflections:reply-delete": {"pk": "reply"},
    "reflections:reply-affirm": {"pk": "reply"},
    "reflections:prompt-remove": {"pk": "prompt"},
    "reflections:journal-edit": {"pk": "journal_entry"},
    "reflections:journal-delete": {"pk": "journal_entry"},
    "reflections:intention": {"pk": "intention"},
    "reflections:intention-step": {"pk": "intention"},
    "reflections:intention-reached": {"pk": "intention"},
    "reflections:intention-delete": {"pk": "intention"},
    "notifications:read": {"pk": "notification"},
    "notifications:unsubscribe": {"token": "unsubscribe_token"},
}


def _lookup(world: SimpleNamespace, path: str):
    value = world
    for part in path.split("."):
        value = value[part] if isinstance(value, dict) else getattr(value, part)
    return getattr(value, "pk", value)


def url_kwargs(world: SimpleNamespace, route: str, names) -> dict:
    """The real object behind each kwarg of `route`. A kwarg nobody has mapped is a KeyError: map it."""
    kwargs = {}
    for name in names:
        path = ROUTE_OBJECTS.get(route, {}).get(name) or KWARG_OBJECTS[name]
        kwargs[name] = _lookup(world, path)
    return kwargs
