import pytest
from django.urls import reverse

from reflections import services
from reflections.models import ConcernReport

pytestmark = pytest.mark.django_db


def test_a_member_reports_a_perspective_and_is_told_it_was_received(circle_people, reply, client_for):
    url = (
        reverse("reflections:concern-new", kwargs={"circle_pk": circle_people.circle.pk})
        + f"?reply={reply.pk}"
    )
    client = client_for(circle_people.member)
    assert "I have felt that too." in client.get(url).content.decode()
    response = client.post(url, {"reason": "This worried me"}, follow=True)
    assert "Your concern was received" in response.content.decode()
    concern = ConcernReport.objects.get()
    assert (concern.reply, concern.reporter, concern.reason) == (
        reply,
        circle_people.member,
        "This worried me",
    )


def test_a_moment_needs_describing_when_no_post_is_named(circle_people, client_for):
    url = reverse("reflections:concern-new", kwargs={"circle_pk": circle_people.circle.pk})
    response = client_for(circle_people.member).post(url, {"reason": "Something in the session"})
    assert response.status_code == 200 and "Say which moment" in response.content.decode()
    assert "Something in the session" in response.content.decode()
    assert not ConcernReport.objects.exists()


def test_facilitators_see_and_resolve_concerns(circle_people, thread, client_for):
    concern = services.concern_report(
        reporter=circle_people.bea, circle=circle_people.circle, thread=thread, reason="Unkind"
    )
    client = client_for(circle_people.facilitator)
    page = client.get(
        reverse("reflections:concerns", kwargs={"circle_pk": circle_people.circle.pk})
    ).content.decode()
    assert "Unkind" in page and "Open:" in page
    client.post(reverse("reflections:concern-resolve", args=[concern.pk]), {"note": "Spoke with both"})
    concern.refresh_from_db()
    assert concern.is_resolved and concern.resolved_by == circle_people.facilitator


def test_the_facilitator_sees_how_many_concerns_are_open(circle_people, client_for):
    services.concern_report(
        reporter=circle_people.bea, circle=circle_people.circle, moment="Check-in", reason="x"
    )
    url = reverse("reflections:threads", kwargs={"circle_pk": circle_people.circle.pk})
    assert "Concerns to look at" in client_for(circle_people.facilitator).get(url).content.decode()
    assert "Concerns to look at" not in client_for(circle_people.member).get(url).content.decode()


def test_the_report_page_shows_crisis_resources(circle_people, client_for):
    circle_people.org.crisis_links.create(label="Samaritans", phone="116 123")
    url = reverse("reflections:concern-new", kwargs={"circle_pk": circle_people.circle.pk})
    content = client_for(circle_people.member).get(url).content.decode()
    assert "Samaritans" in content and circle_people.org.crisis_text in content
