"""In-app notifications: the notify service, the page, marking read, the digest choice and the live badge."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.urls import reverse

from circles import digest, live, notifications, sockets
from circles.models import Membership, Notification
from circles.notification_consumers import NotificationBadgeConsumer
from reflections.models import Reply, Thread
from tests.factories import make_circle


def note(user, title="Tuesday circle meets tomorrow", **fields) -> Notification:
    return Notification.objects.create(user=user, kind="reminder", title=title, url="/", **fields)


def test_notify_creates_a_notification_and_rings_the_badge_only_after_commit(
    people, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        notifications.notify(people.member, kind="mixing", title="Your new circle: Thursday", url="/c/")
    assert Notification.objects.filter(user=people.member, kind="mixing").count() == 1
    assert len(callbacks) == 1  # the push waits for the commit


def test_notify_refuses_an_unknown_kind(people):
    with pytest.raises(ValueError):
        notifications.notify(people.member, kind="gossip", title="x", url="/")


def test_the_page_lists_my_notifications_newest_first(people, client_for):
    note(people.member, "Older")
    note(people.member, "Newer")
    note(people.admin, "Someone else's")
    page = client_for(people.member).get(reverse("notifications:list"))
    assert page.status_code == 200
    text = page.content.decode()
    assert text.index("Newer") < text.index("Older")
    assert "Someone else" not in text


def test_an_empty_page_says_what_will_appear(people, client_for):
    page = client_for(people.member).get(reverse("notifications:list"))
    assert b"Nothing here yet" in page.content


def test_the_page_needs_sign_in(client):
    response = client.get(reverse("notifications:list"))
    assert response.status_code == 302 and reverse("accounts:login") in response["Location"]


def test_the_page_refuses_post(people, client_for):
    assert client_for(people.member).post(reverse("notifications:list")).status_code == 405


@pytest.mark.parametrize("rows", [1, 45])
def test_the_page_query_count_does_not_grow(people, client_for, django_assert_num_queries, rows):
    for n in range(rows):
        note(people.member, f"Notice {n}")
    client = client_for(people.member)
    # The same with one row and with 45: session, user, count and page of rows, digest choice.
    with django_assert_num_queries(5):
        assert client.get(reverse("notifications:list"), {"page": 2 if rows > 20 else 1}).status_code == 200


def test_marking_read_is_mine_only(people, client_for):
    mine, theirs = note(people.member), note(people.admin)
    client = client_for(people.member)
    assert client.post(reverse("notifications:read", args=[mine.pk])).status_code == 302
    mine.refresh_from_db()
    assert mine.read_at is not None
    assert client.post(reverse("notifications:read", args=[theirs.pk])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None
    assert client.get(reverse("notifications:read", args=[mine.pk])).status_code == 405
    assert client.post(reverse("notifications:read", args=[mine.pk])).status_code == 302  # twice is fine


def test_mark_all_read(people, client_for):
    note(people.member), note(people.member)
    client_for(people.member).post(reverse("notifications:read-all"))
    assert notifications.unread_count(user=people.member) == 0


def test_nav_links_the_notifications_page(people, client_for):
    page = client_for(people.member).get(reverse("notifications:list"))
    assert b"data-notification-badge" in page.content and b"circles/badge.js" in page.content


def test_the_weekly_digest_choice_is_saved(people, client_for):
    client = client_for(people.member)
    client.post(reverse("notifications:digest"), {"weekly_digest": "on"})
    assert digest.weekly_digest_wanted(user=people.member)
    client.post(reverse("notifications:digest"), {})
    assert not digest.weekly_digest_wanted(user=people.member)


def test_the_digest_has_counts_only_and_goes_out_once_a_week(people, mailoutbox):
    circle = make_circle(people.facilitator, members=[people.member], name="Tuesday circle")
    Membership.objects.filter(user=people.member).update(joined_at=datetime(2025, 1, 1, tzinfo=UTC))
    now = datetime(2025, 3, 10, 7, tzinfo=UTC)
    thread = Thread.objects.create(
        circle=circle, author=people.facilitator, title="PRIVATE TITLE", body="PRIVATE BODY", created_at=now
    )
    Reply.objects.create(thread=thread, author=people.member, body="PRIVATE REPLY", created_at=now)
    digest.digest_set(user=people.member, weekly_digest=True)
    assert digest.digests_send(now=now) == 1
    assert digest.digests_send(now=now + timedelta(hours=1)) == 0
    assert len(mailoutbox) == 1
    message = mailoutbox[0].message().as_string()
    assert "Tuesday circle: 1 new thread, 1 perspective" in mailoutbox[0].body
    for secret in ("PRIVATE TITLE", "PRIVATE BODY", "PRIVATE REPLY"):
        assert secret not in message
    assert Notification.objects.filter(user=people.member, kind="digest").count() == 1


@pytest.mark.django_db(transaction=True)
async def test_the_badge_socket_refuses_anonymous_people():
    communicator = WebsocketCommunicator(NotificationBadgeConsumer.as_asgi(), "/ws/notifications/")
    communicator.scope["user"] = AnonymousUser()
    connected, code = await communicator.connect(timeout=10)
    assert not connected and code == 4401


@pytest.mark.django_db(transaction=True)
async def test_the_badge_socket_sends_the_count_and_then_every_push(people_async):
    user = people_async
    communicator = WebsocketCommunicator(NotificationBadgeConsumer.as_asgi(), "/ws/notifications/")
    communicator.scope["user"] = user
    connected, _ = await communicator.connect(timeout=10)
    try:
        assert connected
        assert await communicator.receive_json_from(timeout=5) == {"type": "badge", "count": 1}
        await get_channel_layer().group_send(
            notifications.badge_group(user.pk), {"type": "badge.count", "count": 3}
        )
        assert await communicator.receive_json_from(timeout=5) == {"type": "badge", "count": 3}
        await communicator.send_json_to({"type": "anything"})
        assert (await communicator.receive_json_from(timeout=5))["type"] == "error"
    finally:
        await communicator.disconnect()


class BadgeConsumerTellingItsChannel(NotificationBadgeConsumer):
    channel_names: list[str] = []

    async def connect(self):
        self.channel_names.append(self.channel_name)
        await super().connect()


@pytest.mark.django_db(transaction=True)
async def test_a_socket_whose_groups_the_layer_forgot_rejoins_them(people_async, monkeypatch):
    # A Redis restart empties every group while the sockets stay open; without re-joining, the
    # badge (and a sign-out's force-close) would never reach this socket again.
    monkeypatch.setattr(sockets, "GROUP_REFRESH_SECONDS", 0.05)
    user, layer = people_async, get_channel_layer()
    communicator = WebsocketCommunicator(BadgeConsumerTellingItsChannel.as_asgi(), "/ws/notifications/")
    communicator.scope["user"] = user
    connected, _ = await communicator.connect(timeout=10)
    try:
        assert connected
        await communicator.receive_json_from(timeout=5)
        channel = BadgeConsumerTellingItsChannel.channel_names[-1]
        for group in (notifications.badge_group(user.pk), live.user_group(user.pk)):
            await layer.group_discard(group, channel)  # what a restarted Redis has forgotten
        await asyncio.sleep(0.5)
        await layer.group_send(notifications.badge_group(user.pk), {"type": "badge.count", "count": 7})
        assert await communicator.receive_json_from(timeout=5) == {"type": "badge", "count": 7}
        await layer.group_send(live.user_group(user.pk), {"type": "live.force_close", "circle_id": None})
        assert (await communicator.receive_json_from(timeout=5))["type"] == "closed"
    finally:
        await communicator.disconnect()


@pytest.fixture
def people_async(transactional_db):
    from tests.factories import make_org, make_person

    user = make_person(make_org(), "Badge Person")
    note(user)
    return user
