"""Every write in reflections: keyword-only arguments, one transaction each.

Callers have already resolved access (reflections.access); these functions enforce the rules that
hold whoever calls them: text limits, the edit window, who may add a takeaway. Errors are
ValidationErrors keyed by form field so a view can hand them back to its form.

Live pages are told about new perspectives after commit, through the channel layer; the database
stays the truth and a page that missed the bell asks for what is newer than what it has.
"""

from datetime import datetime, timedelta

from asgiref.sync import async_to_sync
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from channels.layers import get_channel_layer
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import AuditEntry, Invitation, Organisation, User
from accounts.services import audit
from circles.models import Circle, Membership
from reflections.models import (
    BODY_MAX,
    REPLY_MAX,
    TITLE_MAX,
    Affirmation,
    ConcernReport,
    Intention,
    IntentionStep,
    JournalEntry,
    Prompt,
    Reply,
    Task,
    Thread,
    ThreadRead,
)

FORMER_MEMBER = "A former member"


def thread_group(thread_id: int) -> str:
    return f"reflections.thread.{thread_id}"


def _clean_text(
    value: str, *, field: str, max_length: int, required: bool = True, what: str = "something"
) -> str:
    value = (value or "").strip()
    if required and not value:
        raise ValidationError({field: f"Write {what} first."})
    if len(value) > max_length:
        raise ValidationError({field: f"Keep it to {max_length} characters (this has {len(value)})."})
    return value


def _check_edit_window(post, now: datetime) -> None:
    if post.is_deleted:
        raise ValidationError("This has been deleted, so it can't be edited.")
    if now > post.editable_until():
        raise ValidationError("The time for editing has passed. You can add a perspective instead.")


def _broadcast_after_commit(thread_id: int, message: dict) -> None:
    def send():
        async_to_sync(get_channel_layer().group_send)(thread_group(thread_id), message)

    transaction.on_commit(send)


# --- Threads and perspectives ----------------------------------------------------------------


def thread_create(
    *,
    author: User,
    circle: Circle,
    kind: str,
    title: str,
    body: str,
    prompt: Prompt | None = None,
    intention: Intention | None = None,
) -> Thread:
    if kind not in Thread.Kind.values:
        raise ValidationError({"kind": "Choose what kind of thread this is."})
    title = _clean_text(title, field="title", max_length=TITLE_MAX, what="a title")
    body = _clean_text(body, field="body", max_length=BODY_MAX, required=False)
    if prompt is not None and prompt.organisation_id not in (None, circle.organisation_id):
        raise ValidationError({"prompt": "That prompt isn't available here."})
    now = timezone.now()
    with transaction.atomic():
        thread = Thread.objects.create(
            circle=circle,
            author=author,
            kind=kind,
            title=title,
            body=body,
            prompt=prompt,
            intention=intention,
            created_at=now,
            last_activity_at=now,
        )
        ThreadRead.objects.create(user=author, thread=thread, last_read_at=now)
    return thread


def thread_edit(*, thread: Thread, title: str, body: str) -> Thread:
    now = timezone.now()
    _check_edit_window(thread, now)
    thread.title = _clean_text(title, field="title", max_length=TITLE_MAX, what="a title")
    thread.body = _clean_text(body, field="body", max_length=BODY_MAX, required=False)
    thread.edited_at = now
    with transaction.atomic():
        thread.save(update_fields=["title", "body", "edited_at"])
    return thread


def thread_delete(*, thread: Thread) -> Thread:
    """Clear the thread's words and keep a tombstone, so the perspectives on it stay readable."""
    with transaction.atomic():
        thread.title = ""
        thread.body = ""
        thread.takeaway = ""
        thread.deleted_at = thread.deleted_at or timezone.now()
        thread.save(update_fields=["title", "body", "takeaway", "deleted_at"])
        Affirmation.objects.filter(thread=thread).delete()
    return thread


def thread_set_takeaway(*, thread: Thread, takeaway: str) -> Thread:
    """The situation's author names what they are taking with them."""
    if not thread.is_situation:
        raise ValidationError({"takeaway": "Only a situation brought for perspectives has a takeaway."})
    if thread.is_deleted:
        raise ValidationError({"takeaway": "This thread has been deleted."})
    now = timezone.now()
    thread.takeaway = _clean_text(
        takeaway, field="takeaway", max_length=REPLY_MAX, what="what you're taking with you"
    )
    thread.takeaway_at = now
    thread.last_activity_at = now
    with transaction.atomic():
        thread.save(update_fields=["takeaway", "takeaway_at", "last_activity_at"])
    return thread


def reply_create(*, author: User, thread: Thread, body: str) -> Reply:
    if thread.is_deleted and not thread.replies.exists():
        raise ValidationError({"body": "This thread has been deleted."})
    body = _clean_text(body, field="body", max_length=REPLY_MAX, what="your perspective")
    now = timezone.now()
    with transaction.atomic():
        reply = Reply.objects.create(thread=thread, author=author, body=body, created_at=now)
        Thread.objects.filter(pk=thread.pk).update(last_activity_at=now)
        # The author has read their own perspective.
        ThreadRead.objects.update_or_create(user=author, thread=thread, defaults={"last_read_at": now})
        _broadcast_after_commit(thread.pk, {"type": "reply.created", "reply": reply.pk})
    return reply


def reply_edit(*, reply: Reply, body: str) -> Reply:
    now = timezone.now()
    _check_edit_window(reply, now)
    reply.body = _clean_text(body, field="body", max_length=REPLY_MAX, what="your perspective")
    reply.edited_at = now
    with transaction.atomic():
        reply.save(update_fields=["body", "edited_at"])
    return reply


def reply_delete(*, reply: Reply) -> Reply:
    with transaction.atomic():
        reply.body = ""
        reply.deleted_at = reply.deleted_at or timezone.now()
        reply.save(update_fields=["body", "deleted_at"])
        Affirmation.objects.filter(reply=reply).delete()
    return reply


def affirmation_toggle(*, user: User, thread: Thread | None = None, reply: Reply | None = None) -> bool:
    """Affirm ("this resonated") or take it back. Returns whether the person now affirms it."""
    target = thread if thread is not None else reply
    if target is None or (thread is not None and reply is not None):
        raise ValueError("Affirm exactly one of a thread or a perspective.")
    if target.is_deleted:
        raise ValidationError("This has been deleted.")
    if target.author_id == user.pk:
        raise ValidationError("You can't affirm your own words, but others can.")
    with transaction.atomic():
        lookup = {"thread": thread} if thread is not None else {"reply": reply}
        deleted, _ = Affirmation.objects.filter(user=user, **lookup).delete()
        if deleted:
            return False
        Affirmation.objects.get_or_create(user=user, **lookup)
    return True


def thread_mark_read(
    *, user: User, thread: Thread, at: datetime | None = None, last_read_at: datetime | None = None
) -> None:
    """Safe to call on every view: one upsert, or none when `last_read_at` (the marker the caller
    already read) is no older than the thread's last activity, so re-reading costs no write."""
    if last_read_at is not None and thread.last_activity_at <= last_read_at:
        return
    at = at or timezone.now()
    ThreadRead.objects.bulk_create(
        [ThreadRead(user=user, thread=thread, last_read_at=at)],
        update_conflicts=True,
        unique_fields=["user", "thread"],
        update_fields=["last_read_at"],
    )


# --- Prompt library --------------------------------------------------------------------------


def prompt_add(*, actor: User, task: str, text: str) -> Prompt:
    if task not in Task.values:
        raise ValidationError({"task": "Choose which of the four tasks this prompt belongs to."})
    text = _clean_text(text, field="text", max_length=300, what="the prompt")
    with transaction.atomic():
        prompt = Prompt.objects.create(
            organisation_id=actor.organisation_id, task=task, text=text, created_by=actor
        )
        audit(actor=actor, action="prompt.added", subject=text[:200])
    return prompt


def prompt_remove(*, actor: User, prompt: Prompt) -> None:
    with transaction.atomic():
        audit(actor=actor, action="prompt.removed", subject=prompt.text[:200])
        prompt.delete()


# --- Journal ---------------------------------------------------------------------------------


def journal_entry_add(*, author: User, body: str) -> JournalEntry:
    body = _clean_text(body, field="body", max_length=BODY_MAX, what="your entry")
    return JournalEntry.objects.create(author=author, body=body)


def journal_entry_edit(*, entry: JournalEntry, body: str) -> JournalEntry:
    entry.body = _clean_text(body, field="body", max_length=BODY_MAX, what="your entry")
    entry.updated_at = timezone.now()
    entry.save(update_fields=["body", "updated_at"])
    return entry


def journal_entry_delete(*, entry: JournalEntry) -> None:
    entry.delete()


# --- Moving towards --------------------------------------------------------------------------


def _check_share_circle(owner: User, circle: Circle | None) -> None:
    if (
        circle is not None
        and not Membership.objects.filter(circle=circle, user=owner, left_at__isnull=True).exists()
    ):
        raise ValidationError({"circle": "You can only share with a circle you are in."})


def intention_add(*, owner: User, text: str, circle: Circle | None, nudge_after_days: int) -> Intention:
    text = _clean_text(text, field="text", max_length=300, what="what you're moving towards")
    _check_share_circle(owner, circle)
    if nudge_after_days not in Intention.Nudge.values:
        raise ValidationError({"nudge_after_days": "Choose when you'd like a nudge."})
    return Intention.objects.create(owner=owner, text=text, circle=circle, nudge_after_days=nudge_after_days)


def intention_update(
    *, intention: Intention, text: str, circle: Circle | None, nudge_after_days: int
) -> Intention:
    intention.text = _clean_text(text, field="text", max_length=300, what="what you're moving towards")
    _check_share_circle(intention.owner, circle)
    if nudge_after_days not in Intention.Nudge.values:
        raise ValidationError({"nudge_after_days": "Choose when you'd like a nudge."})
    intention.circle = circle
    intention.nudge_after_days = nudge_after_days
    intention.updated_at = timezone.now()
    intention.save(update_fields=["text", "circle", "nudge_after_days", "updated_at"])
    return intention


def intention_step_add(*, intention: Intention, text: str) -> IntentionStep:
    text = _clean_text(text, field="text", max_length=300, what="the step you took")
    now = timezone.now()
    with transaction.atomic():
        step = IntentionStep.objects.create(intention=intention, text=text, created_at=now)
        Intention.objects.filter(pk=intention.pk).update(updated_at=now)
    return step


def intention_mark_reached(*, intention: Intention, note: str = "") -> Thread | None:
    """Mark it reached. A shared one is celebrated in its circle as a celebration thread, which is
    returned. Safe to call twice: the second call changes nothing."""
    note = _clean_text(note, field="note", max_length=BODY_MAX, required=False)
    with transaction.atomic():
        claimed = Intention.objects.filter(pk=intention.pk, status=Intention.Status.ACTIVE).update(
            status=Intention.Status.REACHED, reached_at=timezone.now(), updated_at=timezone.now()
        )
        intention.refresh_from_db()
        if not claimed or intention.circle_id is None:
            return None
        _check_share_circle(intention.owner, intention.circle)
        title = f"Reached: {intention.text}"
        return thread_create(
            author=intention.owner,
            circle=intention.circle,
            kind=Thread.Kind.CELEBRATION,
            title=title[:TITLE_MAX],
            body=note,
            intention=intention,
        )


def intention_delete(*, intention: Intention) -> None:
    intention.delete()


# --- Concerns --------------------------------------------------------------------------------


def concern_report(
    *,
    reporter: User,
    circle: Circle,
    reason: str,
    thread: Thread | None = None,
    reply: Reply | None = None,
    moment: str = "",
) -> ConcernReport:
    reason = _clean_text(reason, field="reason", max_length=REPLY_MAX, what="what worries you")
    moment = _clean_text(moment, field="moment", max_length=200, required=False)
    if thread is None and reply is None and not moment:
        raise ValidationError(
            {"moment": "Say which moment you mean, for example “Tuesday's session, at check-in”."}
        )
    for post in (thread, reply):
        post_circle = getattr(post, "circle_id", None) or getattr(
            getattr(post, "thread", None), "circle_id", None
        )
        if post is not None and post_circle != circle.pk:
            raise ValidationError("That post belongs to another circle.")
    with transaction.atomic():
        return ConcernReport.objects.create(
            circle=circle, reporter=reporter, thread=thread, reply=reply, moment=moment, reason=reason
        )


def concern_resolve(*, actor: User, concern: ConcernReport, note: str) -> ConcernReport:
    note = _clean_text(note, field="note", max_length=REPLY_MAX, required=False)
    with transaction.atomic():
        if concern.resolved_at is None:
            concern.resolved_at = timezone.now()
            concern.resolved_by = actor
            concern.resolution_note = note
            concern.save(update_fields=["resolved_at", "resolved_by", "resolution_note"])
            audit(actor=actor, action="concern.resolved", subject=f"concern {concern.pk}")
    return concern


# --- Retention -------------------------------------------------------------------------------


def retention_purge(*, now: datetime | None = None) -> int:
    """Delete threads (with their perspectives, affirmations and read markers) started longer ago
    than their organisation keeps reflections, and resolved concerns as old. Safe to run twice.
    Returns how many threads went."""
    now = now or timezone.now()
    removed = 0
    for organisation in Organisation.objects.filter(reflection_retention_days__isnull=False):
        cutoff = now - timedelta(days=organisation.reflection_retention_days)
        with transaction.atomic():
            # Concerns first: a concern about an expiring post goes with it, or its link would dangle.
            ConcernReport.objects.filter(circle__organisation=organisation).filter(
                Q(resolved_at__lt=cutoff)
                | Q(thread__created_at__lt=cutoff)
                | Q(reply__thread__created_at__lt=cutoff)
            ).delete()
            _, per_model = Thread.objects.filter(
                circle__organisation=organisation, created_at__lt=cutoff
            ).delete()
            removed += per_model.get("reflections.Thread", 0)
    return removed


# --- Data rights -----------------------------------------------------------------------------


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def member_data_export(user: User) -> dict:
    """Everything Alongside holds that this person wrote or set, as plain JSON-able data."""
    memberships = Membership.objects.filter(user=user).select_related("circle").order_by("joined_at")
    threads = Thread.objects.filter(author=user).select_related("circle").order_by("created_at")
    replies = Reply.objects.filter(author=user).select_related("thread__circle").order_by("created_at")
    affirmations = Affirmation.objects.filter(user=user).order_by("created_at")
    intentions = Intention.objects.filter(owner=user).select_related("circle").prefetch_related("steps")
    return {
        "exported_at": timezone.now().isoformat(),
        "profile": {
            "email": user.email,
            "display_name": user.display_name,
            "pronouns": user.pronouns,
            "organisation": user.organisation.name if user.organisation_id else None,
            "team": user.team.name if user.team_id else None,
            "time_zone": user.time_zone,
            "is_member": user.is_member,
            "is_facilitator": user.is_facilitator,
            "is_org_admin": user.is_org_admin,
            "managed_teams": [team.name for team in user.managed_teams.all()],
            "notify_by_email": user.notify_by_email,
            "notify_in_app": user.notify_in_app,
            "remind_day_before": user.remind_day_before,
            "remind_hour_before": user.remind_hour_before,
            "quiet_hours_start": _iso(user.quiet_hours_start),
            "quiet_hours_end": _iso(user.quiet_hours_end),
            "date_joined": _iso(user.date_joined),
        },
        "circles": [
            {
                "circle": m.circle.name,
                "role": m.role,
                "joined_at": _iso(m.joined_at),
                "left_at": _iso(m.left_at),
            }
            for m in memberships
        ],
        "threads": [
            {
                "circle": t.circle.name,
                "kind": t.kind,
                "title": t.title,
                "body": t.body,
                "takeaway": t.takeaway,
                "created_at": _iso(t.created_at),
                "edited_at": _iso(t.edited_at),
                "deleted_at": _iso(t.deleted_at),
            }
            for t in threads
        ],
        "perspectives": [
            {
                "circle": r.thread.circle.name,
                "thread_id": r.thread_id,
                "body": r.body,
                "created_at": _iso(r.created_at),
                "edited_at": _iso(r.edited_at),
                "deleted_at": _iso(r.deleted_at),
            }
            for r in replies
        ],
        "affirmations": [
            {"thread_id": a.thread_id, "perspective_id": a.reply_id, "created_at": _iso(a.created_at)}
            for a in affirmations
        ],
        "journal": [
            {"body": e.body, "created_at": _iso(e.created_at), "updated_at": _iso(e.updated_at)}
            for e in JournalEntry.objects.filter(author=user).order_by("created_at")
        ],
        "intentions": [
            {
                "text": i.text,
                "shared_with": i.circle.name if i.circle_id else None,
                "status": i.status,
                "nudge_after_days": i.nudge_after_days,
                "created_at": _iso(i.created_at),
                "reached_at": _iso(i.reached_at),
                "steps": [{"text": s.text, "created_at": _iso(s.created_at)} for s in i.steps.all()],
            }
            for i in intentions
        ],
        "concerns_raised": [
            {
                "reason": c.reason,
                "moment": c.moment,
                "created_at": _iso(c.created_at),
                "resolved": c.is_resolved,
            }
            for c in ConcernReport.objects.filter(reporter=user).order_by("created_at")
        ],
    }


def member_erase(*, user: User, keep_posts: bool) -> None:
    """Erase a person. Journal, intentions, affirmations and read markers go. Their threads and
    perspectives are either deleted (tombstones with no words, so others' perspectives stay
    readable) or kept and shown as "a former member". The account is anonymised and can no longer
    sign in; the row stays so history that counts people (attendance) still adds up."""
    with transaction.atomic():
        organisation = user.organisation
        old_email = user.email
        if user.is_org_admin and organisation is not None:
            others = User.objects.filter(organisation=organisation, is_org_admin=True, is_active=True)
            if not others.exclude(pk=user.pk).exists():
                raise ValidationError(
                    "You are the only admin of your organisation. Make someone else an admin first, "
                    "so the organisation is not left without one."
                )
        JournalEntry.objects.filter(author=user).delete()
        Intention.objects.filter(owner=user).delete()
        Affirmation.objects.filter(user=user).delete()
        ThreadRead.objects.filter(user=user).delete()
        ConcernReport.objects.filter(reporter=user).delete()
        if not keep_posts:
            Reply.objects.filter(author=user).update(body="", deleted_at=timezone.now())
            Affirmation.objects.filter(reply__author=user).delete()
            Affirmation.objects.filter(thread__author=user).delete()
            Thread.objects.filter(author=user).update(
                title="", body="", takeaway="", deleted_at=timezone.now()
            )
        Thread.objects.filter(author=user).update(author=None)
        Reply.objects.filter(author=user).update(author=None)
        Prompt.objects.filter(created_by=user).update(created_by=None)
        Membership.objects.filter(user=user, left_at__isnull=True).update(left_at=timezone.now())
        # Audit entries keep what happened but not who it was: their email goes from the subjects.
        AuditEntry.objects.filter(subject=old_email).update(subject="erased account")
        Invitation.objects.filter(email=old_email).delete()
        # Sign-in records name the email they were made with.
        for model in (AccessAttempt, AccessFailureLog, AccessLog):
            model.objects.filter(username__iexact=old_email).delete()
        user.email = f"erased-{user.pk}@invalid.alongside"
        user.display_name = FORMER_MEMBER
        user.pronouns = ""
        user.time_zone = ""
        user.team = None
        user.is_active = False
        user.is_facilitator = False
        user.is_org_admin = False
        user.quiet_hours_start = None
        user.quiet_hours_end = None
        user.password = make_password(None)
        user.save()
        user.managed_teams.clear()
        user.report_links.all().delete()
        user.manager_links.all().delete()
        if organisation is not None:
            audit(
                actor=None,
                action="account.erased",
                data={"kept_posts": keep_posts},
                organisation=organisation,
            )
