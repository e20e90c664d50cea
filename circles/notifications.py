"""In-app notifications: the `notify` service any app may call, the reads behind the page, and the badge.

A notification is a title and a link for one person, never content from inside a circle. The
unread count is pushed to the person's badge group after the transaction commits, so a
rolled-back change never rings a bell; Postgres stays the truth and the page reads from it.
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.paginator import Page, Paginator
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from circles.models import Notification

log = logging.getLogger(__name__)

PAGE_SIZE = 20


def badge_group(user_id: int) -> str:
    return f"notifications.{user_id}"


def unread_count(*, user: User) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def notifications_page(*, user: User, page: int | str | None) -> Page:
    """One page of the person's notifications, newest first: two queries however many there are."""
    rows = Notification.objects.filter(user=user).only("id", "kind", "title", "url", "created_at", "read_at")
    return Paginator(rows, PAGE_SIZE).get_page(page)


def _push_badge(user_id: int) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    count = Notification.objects.filter(user_id=user_id, read_at__isnull=True).count()
    try:
        async_to_sync(layer.group_send)(badge_group(user_id), {"type": "badge.count", "count": count})
    except Exception:  # noqa: BLE001 - the bell is a courtesy: the page shows the truth on next load
        log.warning("could not push the notification badge for %s", user_id, exc_info=True)


def _push_badge_on_commit(user_id: int) -> None:
    transaction.on_commit(lambda: _push_badge(user_id))


def notify(user: User, *, kind: str, title: str, url: str, reminder_key: str | None = None) -> Notification:
    """Tell one person something in the app. Runs in the caller's transaction; the badge rings on commit.

    `title` is shown as it is: a circle's name, a time, a count. Never put reflection content in it.
    `reminder_key` (used by the reminder sweeper) makes a second delivery of one reminder impossible.
    """
    if kind not in Notification.Kind.values:
        raise ValueError(f"Unknown notification kind {kind!r}")
    with transaction.atomic():
        notification = Notification.objects.create(
            user=user, kind=kind, title=title[:200], url=url[:300], reminder_key=reminder_key
        )
        _push_badge_on_commit(user.pk)
    return notification


def notification_mark_read(*, user: User, notification_id: int) -> bool:
    """Mark one of the person's notifications read. Someone else's id changes nothing. Safe to call twice."""
    with transaction.atomic():
        updated = Notification.objects.filter(pk=notification_id, user=user, read_at__isnull=True).update(
            read_at=timezone.now()
        )
        if updated:
            _push_badge_on_commit(user.pk)
    return bool(updated)


def notifications_mark_all_read(*, user: User) -> int:
    with transaction.atomic():
        updated = Notification.objects.filter(user=user, read_at__isnull=True).update(read_at=timezone.now())
        if updated:
            _push_badge_on_commit(user.pk)
    return updated
