"""Small builders for test data. Every test builds what it needs through these."""

import importlib
import itertools
from datetime import date, time

from django.apps import apps

from accounts.models import Organisation, Team, User
from circles.models import Circle, Membership, SessionTemplate

_counter = itertools.count(1)
PASSWORD = "correct horse battery staple"


def make_org(name: str = "Riverside Trust", **fields) -> Organisation:
    return Organisation.objects.create(name=name, **fields)


def make_team(organisation: Organisation, name: str | None = None) -> Team:
    return Team.objects.create(organisation=organisation, name=name or f"Team {next(_counter)}")


def make_person(organisation: Organisation | None, name: str | None = None, **fields) -> User:
    n = next(_counter)
    name = name or f"Person {n}"
    email = fields.pop("email", f"{name.lower().replace(' ', '.')}.{n}@example.org")
    managed_teams = fields.pop("managed_teams", [])
    user = User.objects.create_user(email, PASSWORD, display_name=name, organisation=organisation, **fields)
    if managed_teams:
        user.managed_teams.set(managed_teams)
    return user


def shipped_template() -> SessionTemplate:
    """The IPS template a migration ships. Transactional tests flush the database, taking it with them,
    so put it back the way the migration does before handing it out."""
    migration = importlib.import_module("circles.migrations.0002_default_ips_template")
    migration.create_default_template(apps, None)
    return SessionTemplate.objects.get(organisation=None, name=migration.DEFAULT_NAME)


def make_circle(facilitator: User, name: str = "Tuesday circle", members=(), **fields):
    """A weekly circle with `facilitator` as its circle facilitator and `members` in it (no sessions)."""
    if "template" not in fields:
        fields["template"] = shipped_template()
    fields.setdefault("time_zone", "Europe/London")
    fields.setdefault("start_date", date(2025, 1, 7))
    fields.setdefault("start_time", time(14, 0))
    circle = Circle.objects.create(
        organisation=facilitator.organisation, name=name, created_by=facilitator, **fields
    )
    Membership.objects.create(circle=circle, user=facilitator, role=Membership.Role.FACILITATOR)
    for person in members:
        Membership.objects.create(circle=circle, user=person)
    return circle
