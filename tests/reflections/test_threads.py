from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.urls import reverse
from django.utils import timezone

from reflections import selectors, services
from reflections.models import EDIT_WINDOW, Affirmation, Prompt, Reply, Thread, ThreadRead

pytestmark = pytest.mark.django_db


def test_a_member_starts_a_situation_from_a_prompt(circle_people, client_for):
    prompt = Prompt.objects.filter(organisation=None, task="mutuality").first()
    client = client_for(circle_people.member)
    page = client.get(
        reverse("reflections:thread-new", kwargs={"circle_pk": circle_people.circle.pk})
        + f"?prompt={prompt.pk}"
    )
    assert prompt.text in page.content.decode()
    response = client.post(
        reverse("reflections:thread-new", kwargs={"circle_pk": circle_people.circle.pk}),
        {"kind": "situation", "title": "Boundaries", "body": "How do you keep them?", "prompt": prompt.pk},
    )
    thread = Thread.objects.get(title="Boundaries")
    assert response["Location"] == reverse("reflections:thread", args=[thread.pk])
    assert (thread.kind, thread.prompt, thread.author) == ("situation", prompt, circle_people.member)


def test_a_thread_without_a_title_shows_a_clear_error_and_keeps_the_text(circle_people, client_for):
    response = client_for(circle_people.member).post(
        reverse("reflections:thread-new", kwargs={"circle_pk": circle_people.circle.pk}),
        {"kind": "reflection", "title": "  ", "body": "My words stay here"},
    )
    assert response.status_code == 200
    content = response.content.decode()
    assert "This field is required" in content or "Write a title first" in content
    assert "My words stay here" in content
    assert not Thread.objects.exists()


def test_a_prompt_from_another_organisation_cannot_be_used(circle_people):
    foreign = Prompt.objects.create(organisation=circle_people.elsewhere, task="connection", text="Theirs")
    with pytest.raises(ValidationError):
        services.thread_create(
            author=circle_people.member,
            circle=circle_people.circle,
            kind="reflection",
            title="x",
            body="",
            prompt=foreign,
        )


def test_perspectives_show_on_the_thread_page_in_order(circle_people, thread, client_for):
    services.reply_create(author=circle_people.bea, thread=thread, body="First perspective")
    services.reply_create(author=circle_people.facilitator, thread=thread, body="Second perspective")
    content = (
        client_for(circle_people.member).get(reverse("reflections:thread", args=[thread.pk])).content.decode()
    )
    assert content.index("First perspective") < content.index("Second perspective")


def test_an_empty_perspective_is_refused_with_a_message(circle_people, thread, client_for):
    response = client_for(circle_people.bea).post(
        reverse("reflections:reply-create", args=[thread.pk]), {"body": " "}
    )
    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    assert not Reply.objects.exists()


def test_the_situations_author_adds_a_takeaway_shown_at_the_top(circle_people, thread, reply, client_for):
    client = client_for(circle_people.member)
    client.post(reverse("reflections:thread-takeaway", args=[thread.pk]), {"takeaway": "Slow down and ask"})
    content = (
        client_for(circle_people.bea).get(reverse("reflections:thread", args=[thread.pk])).content.decode()
    )
    assert 'id="takeaway"' in content
    assert content.index("Slow down and ask") < content.index("I have felt that too.")


def test_only_a_situation_has_a_takeaway(circle_people):
    reflection = services.thread_create(
        author=circle_people.member, circle=circle_people.circle, kind="reflection", title="x", body=""
    )
    with pytest.raises(ValidationError):
        services.thread_set_takeaway(thread=reflection, takeaway="Nope")


def test_affirmations_show_a_count_and_names(circle_people, thread, client_for):
    services.affirmation_toggle(user=circle_people.bea, thread=thread)
    services.affirmation_toggle(user=circle_people.facilitator, thread=thread)
    content = (
        client_for(circle_people.member).get(reverse("reflections:thread", args=[thread.pk])).content.decode()
    )
    assert (
        "Resonated with 2: Fran Facilitator, Bea Member" in content
        or "Resonated with 2: Bea Member, Fran Facilitator" in content
    )


def test_affirming_twice_takes_it_back(circle_people, thread, client_for):
    client = client_for(circle_people.bea)
    url = reverse("reflections:thread-affirm", args=[thread.pk])
    client.post(url)
    assert Affirmation.objects.filter(thread=thread).count() == 1
    response = client.post(url, headers={"HX-Request": "true"})
    assert Affirmation.objects.filter(thread=thread).count() == 0
    assert 'aria-pressed="false"' in response.content.decode()


def test_nobody_affirms_their_own_words(circle_people, thread):
    with pytest.raises(ValidationError):
        services.affirmation_toggle(user=circle_people.member, thread=thread)


def test_an_author_can_edit_within_the_window_and_it_is_marked_edited(circle_people, thread, client_for):
    client = client_for(circle_people.member)
    client.post(
        reverse("reflections:thread-edit", args=[thread.pk]), {"title": "A hard talk", "body": "Reworded"}
    )
    thread.refresh_from_db()
    assert (thread.title, thread.body) == ("A hard talk", "Reworded")
    assert "(edited)" in client.get(reverse("reflections:thread", args=[thread.pk])).content.decode()


def test_editing_after_the_window_is_refused_and_the_text_is_kept(circle_people, reply, client_for):
    with time_machine.travel(timezone.now() + EDIT_WINDOW + timedelta(minutes=1)):
        response = client_for(circle_people.bea).post(
            reverse("reflections:reply-edit", args=[reply.pk]), {"body": "Too late words"}
        )
    assert response.status_code == 200
    assert "The time for editing has passed" in response.content.decode()
    assert "Too late words" in response.content.decode()
    reply.refresh_from_db()
    assert reply.body == "I have felt that too."


def test_deleting_a_thread_leaves_a_tombstone_and_keeps_perspectives(
    circle_people, thread, reply, client_for
):
    client_for(circle_people.member).post(reverse("reflections:thread-delete", args=[thread.pk]))
    thread.refresh_from_db()
    assert thread.is_deleted and thread.title == "" and thread.body == ""
    content = (
        client_for(circle_people.bea).get(reverse("reflections:thread", args=[thread.pk])).content.decode()
    )
    assert "This thread was deleted" in content
    assert "I have felt that too." in content
    assert "Something happened on shift" not in content


def test_deleting_a_perspective_clears_its_words(circle_people, reply, client_for):
    client_for(circle_people.bea).post(reverse("reflections:reply-delete", args=[reply.pk]))
    reply.refresh_from_db()
    assert reply.is_deleted and reply.body == ""


def test_unread_markers_follow_each_member(circle_people, thread, client_for):
    list_url = reverse("reflections:threads", kwargs={"circle_pk": circle_people.circle.pk})
    bea = client_for(circle_people.bea)
    assert "New<span" in bea.get(list_url).content.decode()
    bea.get(reverse("reflections:thread", args=[thread.pk]))
    assert "New<span" not in bea.get(list_url).content.decode()
    with time_machine.travel(timezone.now() + timedelta(minutes=1)):
        services.reply_create(author=circle_people.facilitator, thread=thread, body="Later")
    assert "New<span" in bea.get(list_url).content.decode()
    page = bea.get(reverse("reflections:thread", args=[thread.pk])).content.decode()
    assert page.count('class="badge new"') == 1


def test_the_thread_list_paginates(circle_people, client_for):
    for n in range(selectors.THREADS_PER_PAGE + 3):
        services.thread_create(
            author=circle_people.bea, circle=circle_people.circle, kind="reflection", title=f"T{n}", body=""
        )
    url = reverse("reflections:threads", kwargs={"circle_pk": circle_people.circle.pk})
    client = client_for(circle_people.member)
    first = client.get(url).content.decode()
    second = client.get(url + "?page=2").content.decode()
    assert "Page 1 of 2" in first and "Page 2 of 2" in second
    assert "T0<" in second and "T0<" not in first


@pytest.mark.parametrize("replies", [0, 1, 20, 21, 45])
def test_the_thread_page_pages_as_djangos_paginator_would(circle_people, thread, replies):
    Reply.objects.bulk_create(
        Reply(thread=thread, author=circle_people.bea, body=f"r{n}", created_at=thread.created_at)
        for n in range(replies)
    )
    ordered = Reply.objects.filter(thread=thread)
    expected = Paginator(ordered, selectors.REPLIES_PER_PAGE)
    for asked in (None, "", 0, "0", "-1", "1", "2", "3", "99", "x", "2.0"):
        view = selectors.thread_page(user=circle_people.member, thread=thread, page=asked)
        page = expected.get_page(asked if asked else expected.num_pages)
        got = view.replies
        assert (got.number, got.paginator.num_pages, got.paginator.count) == (
            page.number,
            page.paginator.num_pages,
            replies,
        ), asked
        assert [r.pk for r in got.object_list] == [r.pk for r in page.object_list], asked


def test_the_thread_page_reads_the_viewers_marker_with_or_without_perspectives(circle_people, thread):
    bea = circle_people.bea
    assert selectors.thread_page(user=bea, thread=thread).previous_read_at is None
    services.thread_mark_read(user=bea, thread=thread)
    marker = ThreadRead.objects.get(user=bea, thread=thread).last_read_at
    assert selectors.thread_page(user=bea, thread=thread).previous_read_at == marker
    services.reply_create(author=circle_people.facilitator, thread=thread, body="Later")
    assert selectors.thread_page(user=bea, thread=thread).previous_read_at == marker
    authors = ThreadRead.objects.get(user=circle_people.member, thread=thread).last_read_at
    assert selectors.thread_page(user=circle_people.member, thread=thread).previous_read_at == authors


def test_a_new_perspective_redirects_to_the_page_it_is_on(circle_people, thread, client_for):
    Reply.objects.bulk_create(
        Reply(thread=thread, author=circle_people.bea, body=f"r{n}")
        for n in range(selectors.REPLIES_PER_PAGE)
    )
    response = client_for(circle_people.member).post(
        reverse("reflections:reply-create", args=[thread.pk]), {"body": "Mine"}
    )
    reply = Reply.objects.get(body="Mine")
    assert response["Location"].endswith(f"?page=2#reply-{reply.pk}")


def test_search_finds_threads_by_their_words_and_their_perspectives(circle_people, thread, client_for):
    services.thread_create(
        author=circle_people.bea,
        circle=circle_people.circle,
        kind="celebration",
        title="Passed my exam",
        body="",
    )
    services.reply_create(author=circle_people.bea, thread=thread, body="Walking helps me decompress")
    url = reverse("reflections:threads", kwargs={"circle_pk": circle_people.circle.pk})
    client = client_for(circle_people.member)
    by_title = client.get(url, {"q": "exam"}).content.decode()
    by_reply = client.get(url, {"q": "walking"}).content.decode()
    assert "Passed my exam" in by_title and "A hard conversation" not in by_title
    assert "A hard conversation" in by_reply and "Passed my exam" not in by_reply
    fragment = client.get(
        url, {"q": "nothing-matches"}, headers={"HX-Request": "true", "HX-Target": "thread-results"}
    )
    assert "No threads match" in fragment.content.decode() and "<html" not in fragment.content.decode()


def test_search_does_not_reach_other_circles(circle_people, client_for):
    services.thread_create(
        author=circle_people.other_facilitator,
        circle=circle_people.other_circle,
        kind="reflection",
        title="Secret elsewhere",
        body="",
    )
    url = reverse("reflections:threads", kwargs={"circle_pk": circle_people.circle.pk})
    assert (
        "Secret elsewhere" not in client_for(circle_people.member).get(url, {"q": "secret"}).content.decode()
    )


def test_replies_after_returns_only_newer_perspectives(circle_people, thread, reply, client_for):
    later = services.reply_create(author=circle_people.facilitator, thread=thread, body="Newer one")
    url = reverse("reflections:replies-after", args=[thread.pk])
    content = client_for(circle_people.member).get(url, {"after": reply.pk}).content.decode()
    assert f'id="reply-{later.pk}"' in content and f'id="reply-{reply.pk}"' not in content
    assert client_for(circle_people.member).get(url, {"after": "x"}).status_code == 400


def test_fetched_perspectives_show_times_in_the_viewers_own_zone(circle_people, thread, reply, client_for):
    Reply.objects.filter(pk=reply.pk).update(created_at=datetime(2026, 1, 15, 12, 0, tzinfo=UTC))
    circle_people.member.time_zone = "Pacific/Auckland"  # UTC+13 in January
    circle_people.member.save(update_fields=["time_zone"])
    url = reverse("reflections:replies-after", args=[thread.pk])
    content = client_for(circle_people.member).get(url, {"after": 0}).content.decode()
    assert "16 Jan 2026, 01:00" in content and "15 Jan 2026" not in content


def test_names_on_perspectives_and_affirmations_are_escaped(circle_people, thread, client_for):
    payload = '<img src=x onerror="alert(1)">Bea'
    circle_people.bea.display_name = payload
    circle_people.bea.save(update_fields=["display_name"])
    services.reply_create(author=circle_people.bea, thread=thread, body="Me too.")
    services.affirmation_toggle(user=circle_people.bea, thread=thread)
    page = client_for(circle_people.member).get(reverse("reflections:thread", args=[thread.pk]))
    content = page.content.decode()
    assert "<img" not in content
    escaped = "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;Bea"
    assert f'class="author">{escaped}</span>' in content
    assert f"Resonated with 1: {escaped}</p>" in content


def test_the_circles_crisis_resources_show_on_its_reflection_pages(circle_people, thread, client_for):
    circle_people.org.crisis_links.create(label="Night line", phone="0800 000 000")
    client = client_for(circle_people.member)
    for url in (
        reverse("reflections:threads", kwargs={"circle_pk": circle_people.circle.pk}),
        reverse("reflections:thread", args=[thread.pk]),
        reverse("reflections:concern-new", kwargs={"circle_pk": circle_people.circle.pk}),
    ):
        assert "Night line" in client.get(url).content.decode(), url
