"""Export, erasure and retention. "No trace" is checked by searching every text column of every table."""

import json
from datetime import timedelta

import pytest
from django.apps import apps
from django.db import models
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from accounts.services import audit
from reflections import services, tasks
from reflections.models import Intention, JournalEntry, Reply, Thread
from tests.factories import make_person

pytestmark = pytest.mark.django_db
MARKER = "zqxmarker"
TEXT_FIELDS = (models.CharField, models.TextField, models.JSONField)


def tables_containing(marker: str) -> list[str]:
    found = []
    for model in apps.get_models(include_auto_created=True):
        for field in model._meta.concrete_fields:
            if isinstance(field, TEXT_FIELDS):
                lookup = f"{field.attname}__icontains"
                if isinstance(field, models.JSONField):
                    rows = [v for v in model._default_manager.values_list(field.attname, flat=True)]
                    if any(marker in json.dumps(v) for v in rows):
                        found.append(f"{model._meta.db_table}.{field.column}")
                elif model._default_manager.filter(**{lookup: marker}).exists():
                    found.append(f"{model._meta.db_table}.{field.column}")
    return found


@pytest.fixture
def writer(circle_people):
    """Someone who has written everywhere, with the marker in their name and everything they wrote."""
    person = make_person(circle_people.org, f"Wren {MARKER}", email=f"wren.{MARKER}@example.org")
    circle_people.circle.memberships.create(user=person)
    mine = services.thread_create(
        author=person,
        circle=circle_people.circle,
        kind="situation",
        title=f"title {MARKER}",
        body=f"body {MARKER}",
    )
    services.thread_set_takeaway(thread=mine, takeaway=f"takeaway {MARKER}")
    services.reply_create(author=circle_people.bea, thread=mine, body="A perspective from Bea")
    theirs = services.thread_create(
        author=circle_people.bea, circle=circle_people.circle, kind="reflection", title="Bea's", body=""
    )
    services.reply_create(author=person, thread=theirs, body=f"reply {MARKER}")
    services.affirmation_toggle(user=person, thread=theirs)
    services.journal_entry_add(author=person, body=f"journal {MARKER}")
    intention = services.intention_add(
        owner=person, text=f"intention {MARKER}", circle=None, nudge_after_days=7
    )
    services.intention_step_add(intention=intention, text=f"step {MARKER}")
    services.concern_report(
        reporter=person, circle=circle_people.circle, moment="Check-in", reason=f"concern {MARKER}"
    )
    audit(actor=circle_people.admin, action="person.capabilities_changed", subject=person.email)
    circle_people.writer, circle_people.mine, circle_people.theirs = person, mine, theirs
    return circle_people


def test_the_export_holds_profile_posts_journal_and_intentions(writer, client_for):
    response = client_for(writer.writer).get(reverse("reflections:my-data-export"))
    assert response["Content-Disposition"].startswith("attachment")
    data = json.loads(response.content)
    assert data["profile"]["email"] == writer.writer.email
    assert data["profile"]["display_name"] == writer.writer.display_name
    assert data["circles"][0]["circle"] == "Tuesday circle"
    assert data["threads"][0]["takeaway"] == f"takeaway {MARKER}"
    assert data["perspectives"][0]["body"] == f"reply {MARKER}"
    assert data["journal"][0]["body"] == f"journal {MARKER}"
    assert data["intentions"][0]["steps"][0]["text"] == f"step {MARKER}"
    assert data["concerns_raised"][0]["reason"] == f"concern {MARKER}"
    assert len(data["affirmations"]) == 1


def test_the_export_holds_nobody_elses_words(writer, client_for):
    content = client_for(writer.writer).get(reverse("reflections:my-data-export")).content.decode()
    assert "A perspective from Bea" not in content


def test_erasing_with_posts_deleted_leaves_no_trace(writer, client_for):
    assert tables_containing(MARKER)  # the search would see it
    client = client_for(writer.writer)
    response = client.post(reverse("reflections:my-data-erase"), {"posts": "delete", "confirm": "ERASE"})
    assert "has been erased" in response.content.decode()
    assert tables_containing(MARKER) == []
    person = User.objects.get(pk=writer.writer.pk)
    assert not person.is_active and not person.has_usable_password()
    assert not JournalEntry.objects.exists() and not Intention.objects.exists()
    # Others' perspectives on the erased person's thread are still readable.
    assert Reply.objects.filter(thread=writer.mine, body="A perspective from Bea").exists()
    assert client.get(reverse("reflections:journal")).status_code == 302  # signed out


def test_erasing_while_keeping_posts_shows_them_as_a_former_member(writer, client_for):
    services.member_erase(user=writer.writer, keep_posts=True)
    leftover = tables_containing(MARKER)
    assert sorted(leftover) == sorted(
        [
            "reflections_thread.title",
            "reflections_thread.body",
            "reflections_thread.takeaway",
            "reflections_reply.body",
        ]
    )
    writer.mine.refresh_from_db()
    assert writer.mine.author is None and not writer.mine.is_deleted
    page = client_for(writer.bea).get(reverse("reflections:thread", args=[writer.mine.pk])).content.decode()
    assert "A former member" in page and f"body {MARKER}" in page


def test_erasure_needs_the_confirmation_word(writer, client_for):
    response = client_for(writer.writer).post(
        reverse("reflections:my-data-erase"), {"posts": "delete", "confirm": "yes"}
    )
    assert response.status_code == 200 and "Type ERASE to confirm" in response.content.decode()
    assert User.objects.get(pk=writer.writer.pk).is_active


def test_the_only_admin_cannot_erase_themselves(circle_people, client_for):
    response = client_for(circle_people.admin).post(
        reverse("reflections:my-data-erase"), {"posts": "delete", "confirm": "ERASE"}
    )
    assert response.status_code == 200 and "only admin" in response.content.decode()
    assert User.objects.get(pk=circle_people.admin.pk).is_active


def test_retention_deletes_old_threads_without_trace_and_keeps_recent_ones(circle_people):
    circle_people.org.reflection_retention_days = 30
    circle_people.org.save()
    old = services.thread_create(
        author=circle_people.member,
        circle=circle_people.circle,
        kind="situation",
        title=f"old {MARKER}",
        body=MARKER,
    )
    services.reply_create(author=circle_people.bea, thread=old, body=f"old reply {MARKER}")
    services.affirmation_toggle(user=circle_people.bea, thread=old)
    services.concern_report(
        reporter=circle_people.bea, circle=circle_people.circle, thread=old, reason=f"about {MARKER}"
    )
    Thread.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
    recent = services.thread_create(
        author=circle_people.member, circle=circle_people.circle, kind="reflection", title="recent", body=""
    )

    assert tasks.reflections_retention_purge.apply().get() == 1
    assert tables_containing(MARKER) == []
    assert Thread.objects.filter(pk=recent.pk).exists()
    assert tasks.reflections_retention_purge.apply().get() == 0


def test_retention_leaves_organisations_that_keep_reflections_alone(circle_people):
    old = services.thread_create(
        author=circle_people.member, circle=circle_people.circle, kind="reflection", title="old", body=""
    )
    Thread.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3650))
    assert services.retention_purge() == 0
    assert Thread.objects.filter(pk=old.pk).exists()
