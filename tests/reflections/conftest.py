from types import SimpleNamespace

import pytest
from django.utils import timezone

from circles.models import Membership
from reflections import services
from tests.factories import make_circle, make_person


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """Every persona gets a password; a slow hasher would make these many-persona tests crawl."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def circle_people(people):
    """A circle with a facilitator and two members. The admin, the manager, a facilitator of
    another circle and the outsider are not in it."""
    bea = make_person(people.org, "Bea Member", team=people.team)
    other_facilitator = make_person(people.org, "Finn Other", is_facilitator=True)
    circle = make_circle(people.facilitator, "Tuesday circle", members=[people.member, bea])
    other_circle = make_circle(other_facilitator, "Thursday circle")
    return SimpleNamespace(
        **vars(people), bea=bea, other_facilitator=other_facilitator, circle=circle, other_circle=other_circle
    )


@pytest.fixture
def thread(circle_people):
    return services.thread_create(
        author=circle_people.member,
        circle=circle_people.circle,
        kind="situation",
        title="A hard conversation",
        body="Something happened on shift that I keep thinking about.",
    )


@pytest.fixture
def reply(circle_people, thread):
    return services.reply_create(author=circle_people.bea, thread=thread, body="I have felt that too.")


def leave(user, circle) -> None:
    Membership.objects.filter(user=user, circle=circle).update(left_at=timezone.now())
