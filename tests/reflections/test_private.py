"""The journal and "moving towards" intentions."""

from datetime import timedelta

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from reflections import selectors, services
from reflections.models import ConcernReport, Intention, JournalEntry, Reply, Thread

pytestmark = pytest.mark.django_db


def test_journal_entries_show_only_to_their_author(circle_people, client_for):
    services.journal_entry_add(author=circle_people.member, body="Only mine")
    services.journal_entry_add(author=circle_people.bea, body="Only Bea's")
    content = client_for(circle_people.member).get(reverse("reflections:journal")).content.decode()
    assert "Only mine" in content and "Only Bea's" not in content


def test_no_admin_page_shows_members_words():
    for model in (JournalEntry, Intention, Thread, Reply, ConcernReport):
        assert not admin.site.is_registered(model), model


def test_the_admin_sees_no_journal_in_the_django_admin(circle_people, client):
    services.journal_entry_add(author=circle_people.member, body="Secret journal words")
    circle_people.admin.is_staff = circle_people.admin.is_superuser = True
    circle_people.admin.save()
    client.force_login(circle_people.admin, backend="accounts.backends.UserBackend")
    assert "Secret journal words" not in client.get("/admin/").content.decode()
    assert client.get("/admin/reflections/journalentry/").status_code == 404


def test_an_intention_records_steps_and_a_shared_one_is_celebrated_when_reached(circle_people, client_for):
    client = client_for(circle_people.member)
    client.post(
        reverse("reflections:intentions"),
        {"text": "Take my breaks", "circle": circle_people.circle.pk, "nudge_after_days": "7"},
    )
    intention = Intention.objects.get(text="Take my breaks")
    client.post(
        reverse("reflections:intention-step", args=[intention.pk]), {"text": "Lunch outside on Monday"}
    )
    response = client.post(
        reverse("reflections:intention-reached", args=[intention.pk]), {"note": "Felt good"}
    )
    celebration = Thread.objects.get(kind="celebration")
    assert response["Location"] == reverse("reflections:thread", args=[celebration.pk])
    assert (celebration.circle, celebration.author, celebration.body) == (
        circle_people.circle,
        circle_people.member,
        "Felt good",
    )
    assert "Take my breaks" in celebration.title
    # Marking it reached again changes nothing: one celebration only.
    assert services.intention_mark_reached(intention=intention) is None
    assert Thread.objects.filter(kind="celebration").count() == 1


def test_a_private_intention_is_not_posted_anywhere_when_reached(circle_people):
    intention = services.intention_add(
        owner=circle_people.member, text="Quiet", circle=None, nudge_after_days=0
    )
    assert services.intention_mark_reached(intention=intention) is None
    assert not Thread.objects.exists()


def test_shared_intentions_show_in_their_circle_and_private_ones_do_not(circle_people, client_for):
    services.intention_add(
        owner=circle_people.bea, text="Shared with you", circle=circle_people.circle, nudge_after_days=0
    )
    services.intention_add(owner=circle_people.bea, text="Kept to myself", circle=None, nudge_after_days=0)
    url = reverse("reflections:threads", kwargs={"circle_pk": circle_people.circle.pk})
    content = client_for(circle_people.member).get(url).content.decode()
    assert "Shared with you" in content and "Kept to myself" not in content


def test_an_intention_can_only_be_shared_with_ones_own_circle(circle_people, client_for):
    response = client_for(circle_people.member).post(
        reverse("reflections:intentions"),
        {"text": "Sneaky", "circle": circle_people.other_circle.pk, "nudge_after_days": "7"},
    )
    assert response.status_code == 200 and "errorlist" in response.content.decode()
    assert not Intention.objects.exists()


def test_intentions_for_user_gives_only_their_own_active_intentions(circle_people):
    mine = services.intention_add(owner=circle_people.member, text="Mine", circle=None, nudge_after_days=0)
    done = services.intention_add(owner=circle_people.member, text="Done", circle=None, nudge_after_days=0)
    services.intention_mark_reached(intention=done)
    services.intention_add(
        owner=circle_people.bea, text="Bea's", circle=circle_people.circle, nudge_after_days=0
    )
    assert selectors.intentions_for_user(circle_people.member) == [mine]


def test_the_nudge_setting_picks_intentions_left_alone_too_long(circle_people):
    now = timezone.now()
    stale = services.intention_add(owner=circle_people.member, text="Stale", circle=None, nudge_after_days=7)
    fresh = services.intention_add(owner=circle_people.member, text="Fresh", circle=None, nudge_after_days=7)
    never = services.intention_add(owner=circle_people.member, text="Never", circle=None, nudge_after_days=0)
    Intention.objects.filter(pk__in=[stale.pk, never.pk]).update(updated_at=now - timedelta(days=8))
    assert list(selectors.intentions_needing_nudge(now=now)) == [stale]
    services.intention_step_add(intention=stale, text="A step")
    assert not selectors.intentions_needing_nudge(now=now).exists()
    assert fresh.pk and never.pk


def test_the_live_room_shows_a_member_only_their_own_intentions(circle_people, client_for):
    from circles.models import CircleSession

    services.intention_add(
        owner=circle_people.member, text="Ask for help sooner", circle=None, nudge_after_days=0
    )
    services.intention_add(owner=circle_people.bea, text="Bea's private aim", circle=None, nudge_after_days=0)
    starts = timezone.now() + timedelta(minutes=5)
    session = CircleSession.objects.create(
        circle=circle_people.circle,
        occurrence_date=starts.date(),
        starts_at=starts,
        ends_at=starts + timedelta(hours=1),
    )
    content = (
        client_for(circle_people.member)
        .get(reverse("circles:session-room", args=[session.pk]))
        .content.decode()
    )
    assert "Ask for help sooner" in content and "Bea's private aim" not in content
