import os
import time
from types import SimpleNamespace

import pytest

from config.middleware import IdleSessionMiddleware
from tests.factories import make_org, make_person, make_team

IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true nothing may be skipped: a skip there hides a missing service or browser."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which is not allowed: {report.longrepr}"


@pytest.fixture
def org(db):
    return make_org()


@pytest.fixture
def people(org):
    """The personas every test can use: one of each capability, plus an outsider."""
    team = make_team(org, "Crisis team")
    other_team = make_team(org, "Community team")
    elsewhere = make_org("Elsewhere Health")
    return SimpleNamespace(
        org=org,
        team=team,
        other_team=other_team,
        member=make_person(org, "Alice Member", team=team),
        facilitator=make_person(org, "Fran Facilitator", team=team, is_facilitator=True),
        manager=make_person(org, "Mo Manager", team=other_team, is_member=False, managed_teams=[team]),
        admin=make_person(org, "Ada Admin", team=other_team, is_org_admin=True),
        outsider=make_person(elsewhere, "Otto Outsider", is_org_admin=True, is_facilitator=True),
        elsewhere=elsewhere,
    )


@pytest.fixture
def client_for(client):
    """Sign a person in on the test client: `client_for(people.member)`."""

    def sign_in(user):
        client.force_login(user, backend="accounts.backends.UserBackend")
        # As after a real sign-in's first page: the idle expiry is fresh, so the next requests
        # within a minute write no session (query counts then count the page's own work).
        session = client.session
        session[IdleSessionMiddleware.FIELD] = int(time.time())
        session.save()
        return client

    return sign_in
