"""The room page: who may open it, and what it shows outside the join window."""

from datetime import timedelta

import pytest
from django.urls import reverse

from accounts.models import CrisisLink
from tests.circles.live_support import make_session
from tests.factories import make_circle, shipped_template


@pytest.fixture
def session(people):
    circle = make_circle(
        people.facilitator,
        members=[people.member],
        template=shipped_template(),
        video_url="https://video.example.org/our-circle",
    )
    CrisisLink.objects.create(organisation=people.org, label="Samaritans", phone="116 123")
    return make_session(circle, facilitator=people.facilitator)


def room_url(session):
    return reverse("circles:session-room", args=[session.pk])


def test_member_sees_the_live_room_with_agreements_crisis_support_and_video_link(client_for, people, session):
    response = client_for(people.member).get(room_url(session))
    html = response.content.decode()
    assert response.status_code == 200
    assert f'data-socket-path="/ws/circles/sessions/{session.pk}/room/"' in html
    assert "circles/room.js" in html
    assert "Nobody has to share" in html
    assert "Samaritans" in html
    assert "https://video.example.org/our-circle" in html
    assert 'aria-live="assertive"' in html


def test_room_outside_the_join_window_explains_when_it_opens(client_for, people, session):
    session.starts_at += timedelta(days=2)
    session.ends_at += timedelta(days=2)
    session.save()
    response = client_for(people.member).get(room_url(session))
    html = response.content.decode()
    assert response.status_code == 200
    assert "The room opens at" in html
    assert "circles/room.js" not in html


def test_anonymous_visitor_is_sent_to_sign_in(client, session):
    response = client.get(room_url(session))
    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login"))


def test_person_from_another_organisation_gets_404(client_for, people, session):
    assert client_for(people.outsider).get(room_url(session)).status_code == 404


def test_colleague_outside_the_circle_gets_404(client_for, people, session):
    assert client_for(people.manager).get(room_url(session)).status_code == 404


def test_room_page_only_answers_get(client_for, people, session):
    assert client_for(people.member).post(room_url(session)).status_code == 405
