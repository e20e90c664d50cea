"""Pages cost the same number of queries with one reply as with many."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from reflections import services
from reflections.models import Affirmation, Reply, Thread

pytestmark = pytest.mark.django_db


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def grow(circle_people, thread, n: int) -> None:
    members = [circle_people.member, circle_people.bea, circle_people.facilitator]
    replies = Reply.objects.bulk_create(
        Reply(thread=thread, author=members[i % 3], body=f"Perspective {i}") for i in range(n)
    )
    Affirmation.objects.bulk_create(
        Affirmation(user=person, reply=reply)
        for reply in replies
        for person in members
        if person != reply.author
    )
    # As reply_create would: every visit below then has something new to mark as read.
    Thread.objects.filter(pk=thread.pk).update(last_activity_at=timezone.now())


def test_thread_page_queries_do_not_grow_with_replies(
    circle_people, thread, client_for, django_assert_num_queries
):
    client = client_for(circle_people.bea)
    url = reverse("reflections:thread", args=[thread.pk])
    grow(circle_people, thread, 1)
    baseline = count_queries(client, url)
    grow(circle_people, thread, 40)
    with django_assert_num_queries(baseline):
        client.get(url)


def test_thread_list_queries_do_not_grow_with_threads(circle_people, client_for, django_assert_num_queries):
    client = client_for(circle_people.member)
    url = reverse("reflections:threads", kwargs={"circle_pk": circle_people.circle.pk})
    first = services.thread_create(
        author=circle_people.bea, circle=circle_people.circle, kind="reflection", title="One", body=""
    )
    grow(circle_people, first, 2)
    services.intention_add(
        owner=circle_people.bea, text="Shared", circle=circle_people.circle, nudge_after_days=0
    )
    baseline = count_queries(client, url)
    for n in range(25):
        thread = services.thread_create(
            author=circle_people.facilitator,
            circle=circle_people.circle,
            kind="reflection",
            title=f"T{n}",
            body="",
        )
        grow(circle_people, thread, 3)
        services.intention_add(
            owner=circle_people.facilitator, text=f"I{n}", circle=circle_people.circle, nudge_after_days=0
        )
    with django_assert_num_queries(baseline):
        client.get(url)
