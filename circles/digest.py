"""The optional weekly digest: for each of one's circles, how many new threads and perspectives.

Counts and circle names only. Reflections stay in their circle: the digest reads the reflections
tables through `activity_counts`, which asks the database for counts and never loads a title or
a body, so nothing written in a circle can reach an email.
"""

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from circles.models import DigestDelivery, Membership, Notification, NotificationPreference
from circles.notifications import notify
from reflections.models import Reply, Thread

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CircleActivity:
    circle_name: str
    threads: int
    replies: int


def activity_counts(*, user: User, since: datetime) -> list[CircleActivity]:
    """New threads and perspectives since `since` in the person's current circles. Two count queries."""
    memberships = Membership.objects.filter(
        user=user, left_at__isnull=True, circle__archived_at__isnull=True
    ).select_related("circle")
    names = {m.circle_id: m.circle.name for m in memberships}
    threads = dict(
        Thread.objects.filter(circle_id__in=names, created_at__gte=since, deleted_at__isnull=True)
        .values("circle_id")
        .annotate(n=Count("id"))
        .values_list("circle_id", "n")
    )
    replies = dict(
        Reply.objects.filter(thread__circle_id__in=names, created_at__gte=since, deleted_at__isnull=True)
        .values("thread__circle_id")
        .annotate(n=Count("id"))
        .values_list("thread__circle_id", "n")
    )
    return [
        CircleActivity(circle_name=name, threads=threads.get(pk, 0), replies=replies.get(pk, 0))
        for pk, name in sorted(names.items(), key=lambda item: item[1])
    ]


def weekly_digest_wanted(*, user: User) -> bool:
    return NotificationPreference.objects.filter(user=user, weekly_digest=True).exists()


def digest_set(*, user: User, weekly_digest: bool) -> NotificationPreference:
    with transaction.atomic():
        preference, _ = NotificationPreference.objects.update_or_create(
            user=user, defaults={"weekly_digest": weekly_digest}
        )
    return preference


def _week_starting(now: datetime) -> date:
    today = now.date()
    return today - timedelta(days=today.weekday())


def _digest_email(user: User, activity: list[CircleActivity], connection) -> EmailMultiAlternatives:
    context = {
        "person": user.display_name,
        "activity": activity,
        "home_url": settings.SITE_URL + reverse("home"),
        "preferences_url": settings.SITE_URL + reverse("notifications:list"),
    }
    message = EmailMultiAlternatives(
        subject=render_to_string("emails/weekly_digest.subject.txt", context).strip(),
        body=render_to_string("emails/weekly_digest.txt", context),
        to=[user.email],
        connection=connection,
        headers={"Auto-Submitted": "auto-generated"},
    )
    message.attach_alternative(render_to_string("emails/weekly_digest.html", context), "text/html")
    return message


def digest_send(*, user: User, now: datetime, connection) -> bool:
    """Send this week's digest to one person, once: the (person, week) row is inserted in the same
    transaction as the send, so a second run (or a racing one) finds it and sends nothing."""
    activity = activity_counts(user=user, since=now - timedelta(days=7))
    if not any(a.threads or a.replies for a in activity):
        return False
    threads = sum(a.threads for a in activity)
    replies = sum(a.replies for a in activity)
    try:
        with transaction.atomic():
            DigestDelivery.objects.create(user=user, week_starting=_week_starting(now), sent_at=now)
            if user.notify_in_app:
                notify(
                    user,
                    kind=Notification.Kind.DIGEST,
                    title=f"This week in your circles: {threads} new threads, {replies} perspectives",
                    url=reverse("home"),
                )
            if user.notify_by_email and user.email:
                connection.send_messages([_digest_email(user, activity, connection)])
    except IntegrityError:
        return False
    return True


def digests_send(*, now: datetime | None = None) -> int:
    """Everyone who asked for the weekly digest and has not had this week's gets it."""
    now = now or timezone.now()
    people = User.objects.filter(is_active=True, notification_preference__weekly_digest=True).exclude(
        pk__in=DigestDelivery.objects.filter(week_starting=_week_starting(now)).values("user_id")
    )
    sent = 0
    with get_connection(fail_silently=False) as connection:
        for user in people:
            sent += digest_send(user=user, now=now, connection=connection)
    return sent
