"""`manage.py seed_demo`: one demo organisation, safe to run again, never by accident in production."""

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts.models import CrisisLink, LineManagementLink, Organisation, Team, User
from config.demo import DEMO_PASSWORD, seed_demo

pytestmark = pytest.mark.django_db


def row_counts() -> dict[str, int]:
    models = [Organisation, Team, User, LineManagementLink, CrisisLink, User.managed_teams.through]
    return {model.__name__: model.objects.count() for model in models}


def test_seed_demo_builds_one_organisation_with_teams_people_and_line_management(capsys):
    call_command("seed_demo")
    organisation = Organisation.objects.get()
    assert organisation.name == "Riverside Mental Health Trust"
    assert organisation.time_zone == "Europe/London"
    assert organisation.teams.count() == 3
    people = organisation.people.all()
    assert 18 <= len(people) <= 22
    assert all(person.team_id for person in people)
    assert sum(person.is_facilitator for person in people) >= 3
    assert sum(person.is_org_admin for person in people) == 1
    manager = User.objects.get(email="morgan@riverside.example")
    assert manager.managed_teams.count() == 2
    assert LineManagementLink.objects.filter(manager=manager).exists()
    assert LineManagementLink.objects.count() >= 4
    links = list(organisation.crisis_links.all())
    assert len(links) >= 3
    assert all(link.phone.startswith("020 7946 0") for link in links), "Ofcom's drama range, never real"
    assert "demo" in organisation.crisis_text


def test_seed_demo_run_twice_leaves_the_same_rows(capsys):
    call_command("seed_demo")
    first = row_counts()
    ids = set(User.objects.values_list("id", flat=True))
    call_command("seed_demo")
    assert row_counts() == first
    assert set(User.objects.values_list("id", flat=True)) == ids


def test_seed_demo_keeps_a_password_someone_changed(capsys):
    call_command("seed_demo")
    person = User.objects.get(email="alex@riverside.example")
    person.set_password("my own new password")
    person.save()
    call_command("seed_demo")
    person.refresh_from_db()
    assert person.check_password("my own new password")


def test_seed_demo_prints_how_to_sign_in_as_each_persona(capsys):
    call_command("seed_demo")
    output = capsys.readouterr().out
    assert DEMO_PASSWORD in output
    for role, email in [
        ("Organisation admin", "ada@riverside.example"),
        ("Manager", "morgan@riverside.example"),
        ("Facilitator", "priya@riverside.example"),
        ("Member", "alex@riverside.example"),
    ]:
        line = next(line for line in output.splitlines() if email in line)
        assert role in line


@pytest.mark.parametrize(
    "email", ["ada@riverside.example", "morgan@riverside.example", "priya@riverside.example"]
)
def test_every_printed_persona_can_sign_in_with_the_demo_password(client, email, capsys):
    call_command("seed_demo")
    response = client.post(reverse("accounts:login"), {"username": email, "password": DEMO_PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 200


def test_seed_demo_refuses_to_run_in_production(settings):
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="production"):
        call_command("seed_demo")
    assert not User.objects.exists()


def test_seed_demo_runs_in_production_when_forced(settings, capsys):
    settings.PRODUCTION = True
    call_command("seed_demo", "--force")
    assert Organisation.objects.filter(name="Riverside Mental Health Trust").exists()


recorded_by_step = []


def record_step(demo) -> None:
    recorded_by_step.append(demo.people["facilitator"])


def test_a_later_seed_step_sees_what_the_earlier_steps_built():
    recorded_by_step.clear()
    demo = seed_demo(
        steps=["accounts.demo.seed_organisation", "accounts.demo.seed_people", f"{__name__}.record_step"]
    )
    assert recorded_by_step == [demo.people["facilitator"]]
    assert recorded_by_step[0].is_facilitator
