"""Reads for reflections, always scoped to a person who has already been let in by access.py.

Each function runs a fixed number of queries whatever the number of threads, perspectives or
affirmations, so pages cost the same with one reply as with a thousand.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import Count, F, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.utils import timezone

from accounts.models import User
from circles.models import Circle
from config.prepared import PreparedQuery
from reflections.models import (
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

THREADS_PER_PAGE = 20
REPLIES_PER_PAGE = 20
JOURNAL_PER_PAGE = 20


# Names only, oldest first (Affirmation's ordering), written out: through the ORM, compiling
# this query (an IN of twenty ids, a join) cost three times what running it did, a tenth of the
# thread page. `targets` is built below from placeholders only.
_AFFIRMATION_NAMES = (
    "SELECT a.thread_id, a.reply_id, a.user_id, u.display_name FROM reflections_affirmation a "
    "JOIN accounts_user u ON u.id = a.user_id WHERE {targets} ORDER BY a.created_at, a.id"
)


def _attach_affirmations(user: User, *, thread: Thread | None = None, replies=()) -> None:
    """Set `affirmed_by` (names, oldest affirmation first) and `viewer_affirmed` on the thread and
    each perspective, from one query of names: no model instances, which the thread page's twenty
    perspectives and their affirmations made its largest cost."""
    posts = {("reply", reply.pk): reply for reply in replies}
    if thread is not None:
        posts[("thread", thread.pk)] = thread
    for post in posts.values():
        post.affirmed_by, post.viewer_affirmed = [], False
    if not posts:
        return
    targets, params = [], []
    if replies:
        targets.append(f"a.reply_id IN ({', '.join(['%s'] * len(replies))})")
        params.extend(reply.pk for reply in replies)
    if thread is not None:
        targets.append("a.thread_id = %s")
        params.append(thread.pk)
    with connection.cursor() as cursor:
        cursor.execute(_AFFIRMATION_NAMES.format(targets=" OR ".join(targets)), params)
        rows = cursor.fetchall()
    viewer_id = user.pk  # once: request.user is a lazy proxy, a look-up through it costs a call
    for thread_id, reply_id, user_id, name in rows:
        post = posts[("thread", thread_id) if thread_id else ("reply", reply_id)]
        post.affirmed_by.append(name)
        post.viewer_affirmed = post.viewer_affirmed or user_id == viewer_id


def _search(threads: QuerySet, query: str) -> QuerySet:
    """Threads whose title, text or perspectives match. Postgres ranks words; elsewhere a substring."""
    query = query.strip()
    if not query:
        return threads
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchVector

        search = SearchQuery(query, search_type="websearch", config="english")
        in_replies = (
            Reply.objects.filter(deleted_at__isnull=True)
            .annotate(document=SearchVector("body", config="english"))
            .filter(document=search)
            .values("thread_id")
        )
        return threads.annotate(document=SearchVector("title", "body", "takeaway", config="english")).filter(
            Q(document=search) | Q(pk__in=in_replies)
        )
    in_replies = Reply.objects.filter(deleted_at__isnull=True, body__icontains=query).values("thread_id")
    return threads.filter(
        Q(title__icontains=query)
        | Q(body__icontains=query)
        | Q(takeaway__icontains=query)
        | Q(pk__in=in_replies)
    )


def threads_for_circle(*, user: User, circle: Circle, query: str = "", page: int | str = 1) -> Page:
    """A page of the circle's threads, newest activity first, each with its perspective count and
    `last_read_at` for this person (None: never opened)."""
    last_read = ThreadRead.objects.filter(thread=OuterRef("pk"), user=user).values("last_read_at")[:1]
    threads = (
        Thread.objects.filter(circle=circle)
        .select_related("author")
        .annotate(
            reply_count=Count("replies", filter=Q(replies__deleted_at__isnull=True)),
            last_read_at=Subquery(last_read),
        )
        .order_by("-last_activity_at", "-id")
    )
    threads = _search(threads, query)
    return Paginator(threads, THREADS_PER_PAGE).get_page(page)


def is_unread(thread: Thread) -> bool:
    return thread.last_read_at is None or thread.last_activity_at > thread.last_read_at


@dataclass(frozen=True)
class ThreadPage:
    thread: Thread
    replies: Page
    previous_read_at: datetime | None


def thread_page(*, user: User, thread: Thread, page: int | str | None = None) -> ThreadPage:
    """The thread with a page of perspectives (the last page unless asked), affirmations with names,
    and when this person last read it, so newer perspectives can be marked."""
    paginator = Paginator(_ThreadReplies(thread.pk), REPLIES_PER_PAGE)
    replies_page = paginator.get_page(page if page else paginator.num_pages)
    read = _READ_MARKER.fetch(thread.pk, user.pk)
    previous = read[0].last_read_at if read else None
    _attach_affirmations(user, thread=thread, replies=replies_page.object_list)
    _mark_for_viewer(user, replies_page.object_list, previous_read_at=previous)
    return ThreadPage(thread=thread, replies=replies_page, previous_read_at=previous)


# Written out or compiled once (config/prepared.py): the thread page reads them on every view, and
# through the ORM compiling each cost more than running it.
_REPLY_COUNT = "SELECT COUNT(*) FROM reflections_reply WHERE thread_id = %s"  # tombstones count too
_READ_MARKER = PreparedQuery(
    lambda thread_id, user_id: ThreadRead.objects.filter(thread_id=thread_id, user_id=user_id).only(
        "last_read_at"
    )
)

_REPLY_LIST_FIELDS = (
    "thread_id",
    "author_id",
    "body",
    "created_at",
    "edited_at",
    "deleted_at",
    "author__display_name",
)


def _replies_shown(thread_id: int) -> QuerySet:
    """A thread's perspectives with what the list shows, authors' names only: the other columns
    of twenty users cost a quarter of the query."""
    return Reply.objects.filter(thread_id=thread_id).select_related("author").only(*_REPLY_LIST_FIELDS)


_REPLIES_SHOWN = PreparedQuery(_replies_shown)


class _ThreadReplies:
    """A thread's perspectives as Paginator reads them: count() and one slice, a query each."""

    def __init__(self, thread_id: int):
        self.thread_id = thread_id

    def count(self) -> int:
        with connection.cursor() as cursor:
            cursor.execute(_REPLY_COUNT, [self.thread_id])
            return cursor.fetchone()[0]

    def __getitem__(self, page: slice) -> list[Reply]:
        return _REPLIES_SHOWN.fetch(self.thread_id, limit=page.stop - page.start, offset=page.start)


def _mark_for_viewer(user: User, replies, *, previous_read_at: datetime | None) -> None:
    """Set what the perspective list shows this person: `is_own`, `is_new` (written by someone
    else since their previous visit) and `can_edit` (their own, within the edit window)."""
    now, viewer_id = timezone.now(), user.pk
    for reply in replies:
        reply.is_own = reply.author_id == viewer_id
        reply.is_new = bool(previous_read_at and reply.created_at > previous_read_at and not reply.is_own)
        reply.can_edit = reply.is_own and now < reply.editable_until()


def post_affirmations(*, user: User, post: Thread | Reply) -> Thread | Reply:
    """The post with its affirmations' names and `viewer_affirmed`, for the affirm fragment."""
    if isinstance(post, Thread):
        _attach_affirmations(user, thread=post)
    else:
        _attach_affirmations(user, replies=[post])
    return post


def replies_after(*, user: User, thread: Thread, after_id: int, limit: int = REPLIES_PER_PAGE) -> list[Reply]:
    """Perspectives newer than `after_id`: what a live page missed."""
    replies = list(_replies_shown(thread.pk).filter(pk__gt=after_id).order_by("created_at", "id")[:limit])
    _attach_affirmations(user, replies=replies)
    _mark_for_viewer(user, replies, previous_read_at=None)
    return replies


def reply_page_number(reply: Reply) -> int:
    earlier = Reply.objects.filter(thread_id=reply.thread_id).filter(
        Q(created_at__lt=reply.created_at) | Q(created_at=reply.created_at, pk__lt=reply.pk)
    )
    return earlier.count() // REPLIES_PER_PAGE + 1


@dataclass(frozen=True)
class PromptGroup:
    task: str
    label: str
    prompts: list[Prompt]


def prompts_for_organisation(organisation_id: int | None) -> list[PromptGroup]:
    """The prompt library by IPS task, ours first then the organisation's own. Session-template
    rounds can offer these as suggestions for their prompt text."""
    prompts = Prompt.objects.filter(Q(organisation__isnull=True) | Q(organisation_id=organisation_id))
    grouped: dict[str, list[Prompt]] = {task.value: [] for task in Task}
    for prompt in prompts.order_by(F("organisation_id").asc(nulls_first=True), "id"):
        grouped[prompt.task].append(prompt)
    return [PromptGroup(task=task.value, label=task.label, prompts=grouped[task.value]) for task in Task]


def journal_for_user(*, user: User, page: int | str = 1) -> Page:
    return Paginator(JournalEntry.objects.filter(author=user), JOURNAL_PER_PAGE).get_page(page)


def intentions_for_user(user: User) -> list[Intention]:
    """A person's own intentions still being moved towards, with their steps: for the intentions
    page and for the live room's check-in round, where each member sees only their own."""
    return list(
        Intention.objects.filter(owner=user, status=Intention.Status.ACTIVE)
        .select_related("circle")
        .prefetch_related(Prefetch("steps", queryset=IntentionStep.objects.order_by("created_at", "id")))
        .order_by("-updated_at", "-id")
    )


def reached_intentions_for_user(user: User) -> list[Intention]:
    return list(
        Intention.objects.filter(owner=user, status=Intention.Status.REACHED)
        .select_related("circle")
        .order_by("-reached_at", "-id")
    )


def intentions_shared_in_circle(circle: Circle) -> list[Intention]:
    """What current members have chosen to share with this circle."""
    return list(
        Intention.objects.filter(
            circle=circle,
            status=Intention.Status.ACTIVE,
            owner__memberships__circle=circle,
            owner__memberships__left_at__isnull=True,
        )
        .select_related("owner")
        .order_by("-updated_at", "-id")
    )


def intentions_needing_nudge(*, now: datetime | None = None) -> QuerySet:
    """Active intentions not updated for longer than their owner's nudge setting: what the
    reminders send a gentle note about."""
    now = now or timezone.now()
    due = Q()
    for choice in Intention.Nudge:
        if choice.value:
            due |= Q(nudge_after_days=choice.value, updated_at__lt=now - timedelta(days=choice.value))
    return Intention.objects.filter(due, status=Intention.Status.ACTIVE, owner__is_active=True)


def concerns_for_circle(circle: Circle) -> list[ConcernReport]:
    return list(
        ConcernReport.objects.filter(circle=circle).select_related(
            "reporter", "resolved_by", "thread", "reply"
        )
    )


def open_concern_count(circle: Circle) -> int:
    return ConcernReport.objects.filter(circle=circle, resolved_at__isnull=True).count()
