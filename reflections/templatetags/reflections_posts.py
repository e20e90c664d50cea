"""The perspective list and the "This resonated" block, built in Python.

A thread page shows twenty perspectives. Through the template engine each one cost about 90 µs
(some 26 variable look-ups, an include and a dozen tags), most of the page's render; built with
`format_html`, as Django admin's change list builds its rows, the twenty cost about 0.7 ms in
all instead of 1.9 ms. The markup lives here only: the thread page, the fragment a live page
fetches and the htmx answer to "This resonated" all come through these two tags.

Both need the posts as reflections.selectors gives them (`affirmed_by`, `viewer_affirmed`, and
for perspectives `is_own`, `is_new`, `can_edit`) and, for perspectives, the addresses
reflections.views._with_reply_urls sets.
"""

from django import template
from django.template.defaulttags import CsrfTokenNode
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
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
        return format_html_join(
            "", "{}", ((_perspective(reply, viewer.pk, csrf_input, concern_url),) for reply in replies)
        )


@register.simple_tag(takes_context=True)
def affirm(context, post, url: str) -> SafeString:
    """The "This resonated" button (not on one's own or a deleted post) and who it resonated with."""
    return _affirm(post, url, context["user"].pk, _CSRF_INPUT.render(context))


def _perspective(reply, viewer_id: int, csrf_input: str, concern_url: str) -> SafeString:
    marks = SafeString("")
    if reply.edited_at and not reply.is_deleted:
        marks += SafeString(' <span class="edited">(edited)</span>')
    if reply.is_new:
        marks += SafeString(' <span class="badge new">New</span>')
    header = format_html(
        '<header><span id="reply-{}-by" class="author">{}</span> <time datetime="{}">{}</time>{}</header>',
        reply.pk,
        reply.author.display_name if reply.author else "A former member",
        iso_utc(reply.created_at),
        date_and_time(reply.created_at),
        marks,
    )
    if reply.is_deleted:
        content = SafeString(
            '<p class="tombstone">This perspective was deleted by the person who wrote it.</p>'
        )
    else:
        content = format_html(
            '<div class="text">{}</div>{}<div class="actions">{}</div>',
            render_text(reply.body),
            _affirm(reply, reply.affirm_url, viewer_id, csrf_input),
            _own_actions(reply, csrf_input)
            if reply.is_own
            else format_html('<a href="{}?reply={}">Raise a concern</a>', concern_url, reply.pk),
        )
    return format_html(
        '<article class="reply{0}" id="reply-{1}" data-reply-id="{1}" aria-labelledby="reply-{1}-by">'
        "{2}{3}</article>\n",
        " unread" if reply.is_new else "",
        reply.pk,
        header,
        content,
    )


def _own_actions(reply, csrf_input: str) -> SafeString:
    edit = format_html('<a href="{}">Edit</a> ', reply.edit_url) if reply.can_edit else ""
    return format_html(
        '{}<form method="post" action="{}">{}'
        '<button type="submit" class="link-button">Delete</button></form>',
        edit,
        reply.delete_url,
        csrf_input,
    )


def _affirm(post, url: str, viewer_id: int, csrf_input: str) -> SafeString:
    button = ""
    if post.author_id != viewer_id and not post.is_deleted:
        button = format_html(
            '<form method="post" action="{0}" hx-post="{0}" hx-target="closest .affirm" hx-swap="outerHTML">'
            '{1}<button type="submit" class="secondary" aria-pressed="{2}">This resonated</button></form>',
            url,
            csrf_input,
            "true" if post.viewer_affirmed else "false",
        )
    names = ""
    if post.affirmed_by:
        names = format_html(
            '<p class="affirmed-by" role="status">Resonated with {}: {}</p>',
            len(post.affirmed_by),
            ", ".join(post.affirmed_by),
        )
    return format_html('<div class="affirm">{}{}</div>', button, names)
