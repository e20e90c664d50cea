"""The perspective list and the "This resonated" block, built in Python.

A thread page shows twenty perspectives. Through the template engine each one cost about 90 µs
(some 26 variable look-ups, an include and a dozen tags), most of the page's render. Built with
`format_html` the twenty cost 1.15 ms; as f-strings with an explicit `escape` of every value
from a person and every address, 0.44 ms (format_html escapes each argument, our own markup
included, through Django's lazy wrappers). The markup lives here only: the thread page, the
fragment a live page fetches and the htmx answer to "This resonated" all come through these
two tags.

Both need the posts as reflections.selectors gives them (`affirmed_by`, `viewer_affirmed`, and
for perspectives `is_own`, `is_new`, `can_edit`) and, for perspectives, the addresses
reflections.views._with_reply_urls sets.
"""

from html import escape

from django import template
from django.template.defaulttags import CsrfTokenNode
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString

from circles.templatetags.session_times import date_and_time, iso_utc
from reflections.text import render_text

register = template.Library()

_CSRF_INPUT = CsrfTokenNode()


@register.simple_tag(takes_context=True)
def perspectives(context, replies, thread) -> SafeString:
    """Every perspective as an `<article>`, times in the viewer's own time zone."""
    viewer = context["user"]
    csrf_input = _CSRF_INPUT.render(context)
    concern_url = reverse("reflections:concern-new", args=[thread.circle_id])
    with timezone.override(viewer.zone):
        articles = (_perspective(reply, viewer.pk, csrf_input, concern_url) for reply in replies)
        return SafeString("".join(articles))  # nosec B703  # every value escaped in _perspective


@register.simple_tag(takes_context=True)
def affirm(context, post, url: str) -> SafeString:
    """The "This resonated" button (not on one's own or a deleted post) and who it resonated with."""
    return SafeString(_affirm(post, url, context["user"].pk, _CSRF_INPUT.render(context)))  # nosec B703  # as above


# The builders below return finished markup as plain str. Every value from a person (names) and
# every address goes through `escape`; the rest is our markup, the CSRF input Django made, or
# text render_text already sanitised.


def _perspective(reply, viewer_id: int, csrf_input: str, concern_url: str) -> str:
    pk = reply.pk
    marks = ""
    if reply.edited_at and not reply.is_deleted:
        marks += ' <span class="edited">(edited)</span>'
    if reply.is_new:
        marks += ' <span class="badge new">New</span>'
    author = escape(reply.author.display_name) if reply.author else "A former member"
    header = (
        f'<header><span id="reply-{pk}-by" class="author">{author}</span> <time '
        f'datetime="{iso_utc(reply.created_at)}">{date_and_time(reply.created_at)}</time>{marks}</header>'
    )
    if reply.is_deleted:
        content = '<p class="tombstone">This perspective was deleted by the person who wrote it.</p>'
    else:
        actions = (
            _own_actions(reply, csrf_input)
            if reply.is_own
            else f'<a href="{escape(concern_url)}?reply={pk}">Raise a concern</a>'
        )
        content = (
            f'<div class="text">{render_text(reply.body)}</div>'
            f"{_affirm(reply, reply.affirm_url, viewer_id, csrf_input)}"
            f'<div class="actions">{actions}</div>'
        )
    unread = " unread" if reply.is_new else ""
    return (
        f'<article class="reply{unread}" id="reply-{pk}" data-reply-id="{pk}" '
        f'aria-labelledby="reply-{pk}-by">'
        f"{header}{content}</article>\n"
    )


def _own_actions(reply, csrf_input: str) -> str:
    edit = f'<a href="{escape(reply.edit_url)}">Edit</a> ' if reply.can_edit else ""
    return (
        f'{edit}<form method="post" action="{escape(reply.delete_url)}">{csrf_input}'
        '<button type="submit" class="link-button">Delete</button></form>'
    )


def _affirm(post, url: str, viewer_id: int, csrf_input: str) -> str:
    button = ""
    if post.author_id != viewer_id and not post.is_deleted:
        url = escape(url)
        pressed = "true" if post.viewer_affirmed else "false"
        button = (
            f'<form method="post" action="{url}" hx-post="{url}" hx-target="closest .affirm" '
            f'hx-swap="outerHTML">{csrf_input}<button type="submit" class="secondary" '
            f'aria-pressed="{pressed}">This resonated</button></form>'
        )
    names = ""
    if post.affirmed_by:
        names = (
            f'<p class="affirmed-by" role="status">Resonated with {len(post.affirmed_by)}: '
            f"{escape(', '.join(post.affirmed_by))}</p>"
        )
    return f'<div class="affirm">{button}{names}</div>'
