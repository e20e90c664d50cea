"""Reflection threads between sessions, the prompt library, the private journal, "moving towards"
intentions and concern reports.

Content never leaves its circle: every read goes through reflections.access / selectors, which
resolve the circle with circles.access.get_circle_for_user (members only).
"""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Organisation
from circles.models import Circle

# How long an author may still correct a post; after that it stands as written (or is deleted).
EDIT_WINDOW = timedelta(minutes=15)
TITLE_MAX = 150
BODY_MAX = 10_000
REPLY_MAX = 5_000


class Task(models.TextChoices):
    """The four IPS tasks: the vocabulary our prompts are grouped by."""

    CONNECTION = "connection", "Connection"
    WORLDVIEW = "worldview", "Worldview"
    MUTUALITY = "mutuality", "Mutuality"
    MOVING_TOWARDS = "moving_towards", "Moving towards"


class Prompt(models.Model):
    """A question to reflect on. `organisation=None` marks the prompts we ship."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, null=True, blank=True, related_name="prompts"
    )
    task = models.CharField(max_length=20, choices=Task.choices)
    text = models.CharField(max_length=300)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["task", "organisation_id", "id"]

    def __str__(self) -> str:
        return self.text


class Thread(models.Model):
    class Kind(models.TextChoices):
        REFLECTION = "reflection", "A reflection"
        SITUATION = "situation", "A situation I'd like perspectives on"
        CELEBRATION = "celebration", "A celebration"

    circle = models.ForeignKey(Circle, on_delete=models.CASCADE, related_name="threads")
    # Null once the author erased their account and chose to leave their posts as "a former member".
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="threads"
    )
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.REFLECTION)
    prompt = models.ForeignKey(Prompt, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    intention = models.ForeignKey(
        "Intention", on_delete=models.SET_NULL, null=True, blank=True, related_name="celebrations"
    )
    title = models.CharField(max_length=TITLE_MAX)
    body = models.TextField(max_length=BODY_MAX, blank=True)
    takeaway = models.TextField(max_length=REPLY_MAX, blank=True)
    takeaway_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    edited_at = models.DateTimeField(null=True, blank=True)
    # A deleted thread keeps its row (a tombstone, text cleared) so the perspectives stay readable.
    deleted_at = models.DateTimeField(null=True, blank=True)
    last_activity_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-last_activity_at", "-id"]
        indexes = [models.Index(fields=["circle", "-last_activity_at"])]

    def __str__(self) -> str:
        return self.title or f"Thread {self.pk}"

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def is_situation(self) -> bool:
        return self.kind == self.Kind.SITUATION

    def editable_until(self):
        return self.created_at + EDIT_WINDOW


class Reply(models.Model):
    """A perspective offered on a thread."""

    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="replies")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="replies"
    )
    body = models.TextField(max_length=REPLY_MAX)
    created_at = models.DateTimeField(default=timezone.now)
    edited_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["thread", "created_at"])]
        verbose_name_plural = "replies"

    def __str__(self) -> str:
        return f"Perspective {self.pk} on thread {self.thread_id}"

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    def editable_until(self):
        return self.created_at + EDIT_WINDOW


class Affirmation(models.Model):
    """'This resonated': one per person per thread or perspective."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    thread = models.ForeignKey(
        Thread, on_delete=models.CASCADE, null=True, blank=True, related_name="affirmations"
    )
    reply = models.ForeignKey(
        Reply, on_delete=models.CASCADE, null=True, blank=True, related_name="affirmations"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(thread__isnull=False, reply__isnull=True)
                | models.Q(thread__isnull=True, reply__isnull=False),
                name="affirmation_one_target",
            ),
            models.UniqueConstraint("user", "thread", name="affirmation_once_per_thread"),
            models.UniqueConstraint("user", "reply", name="affirmation_once_per_reply"),
        ]

    def __str__(self) -> str:
        return f"Affirmation {self.pk}"


class ThreadRead(models.Model):
    """How far a member has read a thread: what is newer shows as unread."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="reads")
    last_read_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint("user", "thread", name="thread_read_once")]

    def __str__(self) -> str:
        return f"{self.user_id} read {self.thread_id} at {self.last_read_at:%Y-%m-%d %H:%M}"


class JournalEntry(models.Model):
    """Private: only the author ever reads it. Not registered in the Django admin."""

    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="journal_entries"
    )
    body = models.TextField(max_length=BODY_MAX)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "journal entries"

    def __str__(self) -> str:
        # Never the words: a journal entry is private even in a log line or the shell.
        return f"Journal entry {self.pk}"


class Intention(models.Model):
    """What a person is moving towards. Private unless shared with one of their circles."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Moving towards"
        REACHED = "reached", "Reached"

    class Nudge(models.IntegerChoices):
        NEVER = 0, "Never"
        WEEK = 7, "After a week without an update"
        FORTNIGHT = 14, "After two weeks without an update"
        MONTH = 30, "After a month without an update"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="intentions")
    text = models.CharField(max_length=300)
    circle = models.ForeignKey(
        Circle, on_delete=models.SET_NULL, null=True, blank=True, related_name="shared_intentions"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    nudge_after_days = models.PositiveSmallIntegerField(choices=Nudge.choices, default=Nudge.FORTNIGHT)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    reached_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["status", "-updated_at", "-id"]

    def __str__(self) -> str:
        return self.text


class IntentionStep(models.Model):
    """A small step towards an intention."""

    intention = models.ForeignKey(Intention, on_delete=models.CASCADE, related_name="steps")
    text = models.CharField(max_length=300)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.text


class ConcernReport(models.Model):
    """A worry raised with a circle's facilitators, about a post or about a moment (e.g. in a session)."""

    circle = models.ForeignKey(Circle, on_delete=models.CASCADE, related_name="concerns")
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # A report outlives the post it is about: if the post is removed, the facilitators still see the concern.
    thread = models.ForeignKey(Thread, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    reply = models.ForeignKey(Reply, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    moment = models.CharField(max_length=200, blank=True)
    reason = models.TextField(max_length=REPLY_MAX)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolution_note = models.TextField(max_length=REPLY_MAX, blank=True)

    class Meta:
        ordering = [models.F("resolved_at").asc(nulls_first=True), "-created_at", "-id"]

    def __str__(self) -> str:
        return f"Concern {self.pk} in circle {self.circle_id}"

    @property
    def is_resolved(self) -> bool:
        return self.resolved_at is not None
