"""Who may see or do what with reflections. Views and consumers call these first.

A thread, perspective or concern belongs to a circle, and only the circle's current members
reach it: everyone else (another organisation, an admin or manager who is not a member) gets
404 and learns nothing. Inside the circle, changing a post needs its author, and concerns need
the circle's facilitator role: 403. Journal entries and intentions are their owner's alone: 404
for anyone else, because even their existence is private.
"""

from django.core.exceptions import PermissionDenied
from django.http import Http404

from accounts.models import User
from circles.access import get_circle_for_user
from circles.models import Circle
from config.prepared import PreparedQuery
from reflections.models import ConcernReport, Intention, JournalEntry, Prompt, Reply, Thread

# Every thread page and thread action starts here: compiled once (config/prepared.py).
_THREAD = PreparedQuery(lambda pk: Thread.objects.select_related("author", "prompt").filter(pk=pk))


def get_thread_for_user(user: User, pk: int, *, write: bool = False) -> Thread:
    """The thread, with `.circle` carrying the viewer's membership. `write` means "as its author"."""
    try:
        thread = _THREAD.get(pk)
    except Thread.DoesNotExist:
        raise Http404("No such thread.") from None
    thread.circle = get_circle_for_user(user, thread.circle_id)
    if write and thread.author_id != user.pk:
        raise PermissionDenied("Only the person who started this thread can change it.")
    return thread


def get_reply_for_user(user: User, pk: int, *, write: bool = False) -> Reply:
    """The perspective, with `.thread.circle` resolved. `write` means "as its author"."""
    thread_id = Reply.objects.filter(pk=pk).values_list("thread_id", flat=True).first()
    if thread_id is None:
        raise Http404("No such perspective.")
    thread = get_thread_for_user(user, thread_id)
    reply = Reply.objects.select_related("author").get(pk=pk)
    reply.thread = thread
    if write and reply.author_id != user.pk:
        raise PermissionDenied("Only the person who wrote this perspective can change it.")
    return reply


def get_circle_for_concerns(user: User, pk: int) -> Circle:
    """The circle whose concerns the user may see and resolve: its facilitators only."""
    circle = get_circle_for_user(user, pk)
    if not circle.viewer_membership.is_circle_facilitator:
        raise PermissionDenied("Only this circle's facilitators see its concerns.")
    return circle


def get_concern_for_user(user: User, pk: int, *, write: bool = False) -> ConcernReport:
    circle_id = ConcernReport.objects.filter(pk=pk).values_list("circle_id", flat=True).first()
    if circle_id is None:
        raise Http404("No such concern.")
    circle = get_circle_for_concerns(user, circle_id)
    concern = ConcernReport.objects.get(pk=pk)
    concern.circle = circle
    return concern


def get_journal_entry_for_user(user: User, pk: int, *, write: bool = False) -> JournalEntry:
    entry = JournalEntry.objects.filter(pk=pk, author_id=user.pk).first()
    if entry is None:
        raise Http404("No such journal entry.")
    return entry


def get_intention_for_user(user: User, pk: int, *, write: bool = False) -> Intention:
    intention = Intention.objects.filter(pk=pk, owner_id=user.pk).select_related("circle").first()
    if intention is None:
        raise Http404("No such intention.")
    return intention


def can_manage_prompts(user: User) -> bool:
    return bool(user.organisation_id and (user.is_facilitator or user.is_org_admin))


def check_can_manage_prompts(user: User) -> None:
    if not can_manage_prompts(user):
        raise PermissionDenied("Facilitators and organisation admins can add prompts.")


def get_prompt_for_user(user: User, pk: int, *, write: bool = False) -> Prompt:
    """A prompt the user can use: ours or their organisation's. Writing needs an own-organisation one."""
    prompt = Prompt.objects.filter(pk=pk).first()
    if prompt is None or prompt.organisation_id not in (None, user.organisation_id):
        raise Http404("No such prompt.")
    if write:
        check_can_manage_prompts(user)
        if prompt.organisation_id is None:
            raise PermissionDenied("The prompts that come with Alongside can't be removed.")
    return prompt
