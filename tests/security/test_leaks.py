"""Marker strings planted in a person's name, a reflection, a perspective, a journal entry and
session chat never reach the logs, Celery's messages, Redis, email to anyone outside the circle,
or any page a manager can open (issue 8).

One flow on the demo organisation, through the real pages and the real room socket: Alex (whose
name carries a marker) brings a reflection to the Tuesday circle, Chidi answers it, Alex writes in
the journal, the circle meets live and Alex writes in the chat, the facilitator ends the session
(which queues a Celery task), reminders and weekly digests go out to everyone. Everything the
whole app logs meanwhile is captured at DEBUG. tests/insights/test_leaks.py already plants markers
in every field the insights read; this adds what a live flow produces and walks every manager page.
"""

import logging

import pytest
import redis
from celery.signals import before_task_publish
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from django.conf import settings
from django.test import Client
from django.utils import timezone

from circles import digest, reminders
from circles.models import CircleSession, Membership, NotificationPreference
from reflections.models import JournalEntry, Reply, Thread
from tests.circles.live_support import join, session_cookie
from tests.e2e.demo_site import Visit, build_demo, walk

pytestmark = pytest.mark.django_db(transaction=True)

MARKERS = {
    "name": "Qv8Name",
    "reflection": "Qv8Reflection",
    "perspective": "Qv8Perspective",
    "journal": "Qv8Journal",
    "chat": "Qv8Chat",
}
CIRCLE = "Tuesday reflection circle"


def found_in(text: str | bytes) -> list[str]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    lowered = text.lower()
    return [kind for kind, marker in MARKERS.items() if marker.lower() in lowered]


class Everything(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.lines.append(f"{record.name}: {text}")


@pytest.fixture
def all_logs():
    """Every logger of the process at DEBUG for the test, then put back as it was."""
    handler = Everything()
    loggers = [logging.getLogger(), *map(logging.getLogger, list(logging.root.manager.loggerDict))]
    levels = [(logger, logger.level) for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)
    for logger, level in levels:
        logger.setLevel(level)


@pytest.fixture
def published():
    """The body and headers of every Celery message published, as the broker receives them."""
    messages = []

    def record(sender=None, body=None, headers=None, **kwargs):
        messages.append(f"{sender} {headers} {body}")

    before_task_publish.connect(record, weak=False)
    yield messages
    before_task_publish.disconnect(record)


@pytest.fixture
def own_redis():
    """This run's Redis database (REDIS_URL). Not emptied: the markers are unique to this test, so
    whatever else is there cannot contain them, and someone's data is not wiped by a test run."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    channel_layers.backends.clear()
    yield client
    channel_layers.backends.clear()
    client.close()


@pytest.fixture
def demo(transactional_db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    people = build_demo()
    alex = people["member"]
    alex.display_name = f"Alex {MARKERS['name']}"
    alex.save(update_fields=["display_name"])
    NotificationPreference.objects.bulk_create(
        [NotificationPreference(user=user, weekly_digest=True) for user in type(alex).objects.all()],
        ignore_conflicts=True,
    )
    NotificationPreference.objects.update(weekly_digest=True)
    circle = alex.memberships.get(circle__name=CIRCLE).circle
    session = circle.sessions.filter(starts_at__gt=timezone.now()).order_by("starts_at").first()
    lead = Membership.objects.get(circle=circle, role=Membership.Role.FACILITATOR).user
    chidi = Membership.objects.filter(circle=circle, user__display_name__startswith="Chidi").get().user
    return people, circle, session, lead, chidi


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user, backend="accounts.backends.UserBackend")
    return client


def write_things(alex, chidi, circle) -> None:
    """Through the pages, as people would: a reflection, a perspective on it, a journal entry."""
    response = signed_in(alex).post(
        f"/circles/{circle.pk}/threads/new/",
        {"kind": "situation", "title": f"About {MARKERS['reflection']}", "body": MARKERS["reflection"]},
    )
    assert response.status_code == 302
    thread = Thread.objects.get(title__contains=MARKERS["reflection"])
    response = signed_in(chidi).post(f"/threads/{thread.pk}/perspectives/", {"body": MARKERS["perspective"]})
    assert response.status_code in (200, 302)
    assert Reply.objects.filter(body=MARKERS["perspective"]).exists()
    assert signed_in(alex).post("/journal/", {"body": MARKERS["journal"]}).status_code == 302
    assert JournalEntry.objects.filter(author=alex).exists()


def send_everything() -> None:
    """Reminders (the sessions start in minutes, so the 1-hour ones are due) and weekly digests."""
    reminders.reminders_replan_all()
    reminders.reminders_send_due()
    digest.digests_send()


async def test_markers_stay_out_of_logs_celery_redis_outsiders_email_and_manager_pages(
    demo, all_logs, published, own_redis, mailoutbox
):
    people, circle, session, lead, chidi = demo
    alex = people["member"]
    await database_sync_to_async(write_things)(alex, chidi, circle)

    # The circle meets: Alex writes in the chat, everyone hears it, the facilitator ends it.
    lead_socket = await join(await database_sync_to_async(session_cookie)(lead), session)
    alex_socket = await join(await database_sync_to_async(session_cookie)(alex), session)
    assert (await lead_socket.command("session.start"))["type"] == "ack"
    assert (await alex_socket.command("message.post", text=f"Thank you {MARKERS['chat']}"))["type"] == "ack"
    for socket in (lead_socket, alex_socket):
        assert MARKERS["chat"] in str(await socket.event("message.posted"))
    assert (await lead_socket.command("session.end"))["type"] == "ack"
    for socket in (lead_socket, alex_socket):
        await socket.event("session.ended")
        await socket.comm.disconnect()
    ended = await database_sync_to_async(CircleSession.objects.get)(pk=session.pk)
    assert ended.status == CircleSession.Status.ENDED

    await database_sync_to_async(send_everything)()

    # What a manager can open, walked from their home like the accessibility check.
    def manager_pages() -> list[Visit]:
        client = signed_in(people["manager"])

        def fetch(path: str) -> Visit:
            response = client.get(path, follow=True)
            return Visit(path, response.status_code, response.content.decode())

        return walk(fetch)

    pages = await database_sync_to_async(manager_pages)()

    def in_circle() -> set[str]:
        return set(Membership.objects.filter(circle=circle).values_list("user__email", flat=True))

    circle_emails = await database_sync_to_async(in_circle)()

    leaks = [f"log {kinds} {line[:200]}" for line in all_logs.lines if (kinds := found_in(line))]
    leaks += [f"celery {kinds} {message[:200]}" for message in published if (kinds := found_in(message))]
    redis_keys = list(own_redis.scan_iter(count=1000))
    for key in redis_keys:
        if kinds := found_in(key) + found_in(redis_value(own_redis, key)):
            leaks.append(f"redis {kinds} {key!r}")
    outsiders_mail = [m for m in mailoutbox if set(m.to) - circle_emails]
    for message in outsiders_mail:
        if kinds := found_in(email_text(message)):
            leaks.append(f"email to {message.to} {kinds}")
    for page in pages:
        if kinds := found_in(page.html):
            leaks.append(f"manager page {page.path} {kinds}")

    print(
        f"\nlog records {len(all_logs.lines)}, celery messages {len(published)}, "
        f"redis keys {sorted(redis_keys)}, emails {len(mailoutbox)} "
        f"({len(outsiders_mail)} to people outside the circle), manager pages {len(pages)}"
    )
    assert leaks == []
    # None of it was vacuous: each channel carried something that could have leaked.
    assert any("circles" in line or "django" in line for line in all_logs.lines)
    assert any("rollup_refresh_for_session" in message for message in published)
    assert redis_keys, "the broker queue and the channel layer's groups are in Redis"
    assert outsiders_mail, "reminders and digests went to people outside the circle"
    assert len(pages) >= 10 and all(page.status == 200 for page in pages)


def redis_value(client: redis.Redis, key: bytes) -> bytes:
    kind = client.type(key)
    if kind == b"string":
        return client.get(key) or b""
    if kind == b"list":
        return b"\n".join(client.lrange(key, 0, -1))
    if kind == b"set":
        return b"\n".join(client.smembers(key))
    if kind == b"zset":
        return b"\n".join(client.zrange(key, 0, -1))
    if kind == b"hash":
        return b"\n".join(k + b"=" + v for k, v in client.hgetall(key).items())
    return b""


def email_text(message) -> str:
    """Subject, plain text, HTML and every attachment (the calendar invitation), decoded."""
    parts = [message.subject, message.body]
    parts += [str(content) for content, _mimetype in getattr(message, "alternatives", [])]
    for attachment in message.attachments:
        content = attachment[1] if isinstance(attachment, tuple) else attachment.get_payload(decode=True)
        parts.append(content.decode() if isinstance(content, bytes) else str(content))
    return "\n".join(parts)
