"""Reflection pages. Each view resolves access first, then validates a form, calls one service and
responds; every form works without JavaScript (POST, redirect, GET) and htmx swaps the same fragments.
"""

import json

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from circles.access import get_circle_for_user
from reflections import selectors, services
from reflections.access import (
    can_manage_prompts,
    check_can_manage_prompts,
    get_circle_for_concerns,
    get_concern_for_user,
    get_intention_for_user,
    get_journal_entry_for_user,
    get_prompt_for_user,
    get_reply_for_user,
    get_thread_for_user,
)
from reflections.forms import (
    ConcernForm,
    EraseForm,
    IntentionForm,
    JournalEntryForm,
    PromptForm,
    ReachedForm,
    ReplyForm,
    ResolveForm,
    SearchForm,
    StepForm,
    TakeawayForm,
    ThreadEditForm,
    ThreadForm,
)
from reflections.models import Thread


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _apply(form, error: ValidationError) -> None:
    """Hand a service's ValidationError back to the form: per field where it names one."""
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


def _id(value) -> int | None:
    """A row id from a query or form value, or None. str.isdigit() alone lets in "²" and "٣", which
    int() refuses or reads, and thousands of digits, which int() refuses: ids are ASCII, 18 digits
    at most."""
    value = str(value or "")
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else None


def _thread_url(thread: Thread, anchor: str = "") -> str:
    return reverse("reflections:thread", args=[thread.pk]) + (f"#{anchor}" if anchor else "")


def _reply_url(reply) -> str:
    """The thread page that holds this perspective, scrolled to it."""
    page = selectors.reply_page_number(reply)
    return reverse("reflections:thread", args=[reply.thread_id]) + f"?page={page}#reply-{reply.pk}"


# A perspective's own addresses, as attributes the perspective list reads.
REPLY_URLS = {
    "affirm_url": "reflections:reply-affirm",
    "edit_url": "reflections:reply-edit",
    "delete_url": "reflections:reply-delete",
}
_ID_PLACEHOLDER = 987654321


def _with_reply_urls(replies) -> None:
    """Set each perspective's addresses. reverse() costs about 30 µs a call and a thread page shows
    twenty perspectives with two or three each, so each route is reversed once and filled in."""
    patterns = {
        attribute: reverse(name, args=[_ID_PLACEHOLDER]).replace(str(_ID_PLACEHOLDER), "{}")
        for attribute, name in REPLY_URLS.items()
    }
    for reply in replies:
        for attribute, pattern in patterns.items():
            setattr(reply, attribute, pattern.format(reply.pk))


def _thread_page(request: HttpRequest, thread: Thread, *, view=None, reply_form=None, takeaway_form=None):
    """The thread page; after a refused form, the same page with that form's errors and text."""
    view = view or selectors.thread_page(user=request.user, thread=thread, page=request.GET.get("page"))
    _with_reply_urls(view.replies.object_list)
    context = {
        "circle": thread.circle,
        "thread": thread,
        "view": view,
        "reply_form": reply_form or ReplyForm(),
        "takeaway_form": takeaway_form or TakeawayForm(initial={"takeaway": thread.takeaway}),
        "now": timezone.now(),
    }
    return render(request, "reflections/thread_detail.html", context)


# --- Threads in a circle ---------------------------------------------------------------------


@login_required
@require_GET
def thread_list(request: HttpRequest, circle_pk: int) -> HttpResponse:
    circle = get_circle_for_user(request.user, circle_pk)
    search = SearchForm(request.GET)
    query = search.cleaned_data["q"] if search.is_valid() else ""
    page = selectors.threads_for_circle(
        user=request.user, circle=circle, query=query, page=request.GET.get("page", 1)
    )
    for thread in page:
        thread.unread = selectors.is_unread(thread)
    context = {"circle": circle, "page": page, "search": search, "query": query}
    if _is_htmx(request) and request.headers.get("HX-Target") == "thread-results":
        return render(request, "reflections/_thread_results.html", context)
    context["shared_intentions"] = selectors.intentions_shared_in_circle(circle)
    if circle.viewer_membership.is_circle_facilitator:
        context["open_concerns"] = selectors.open_concern_count(circle)
    return render(request, "reflections/thread_list.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def thread_new(request: HttpRequest, circle_pk: int) -> HttpResponse:
    circle = get_circle_for_user(request.user, circle_pk)
    form = ThreadForm(
        request.POST or None,
        organisation_id=circle.organisation_id,
        initial={"prompt": request.GET.get("prompt")},
    )
    if request.method == "POST" and form.is_valid():
        try:
            thread = services.thread_create(author=request.user, circle=circle, **form.cleaned_data)
        except ValidationError as error:
            _apply(form, error)
        else:
            return redirect(_thread_url(thread))
    prompt = None
    prompt_id = _id(form["prompt"].value())
    if prompt_id is not None:
        prompt = form.fields["prompt"].queryset.filter(pk=prompt_id).first()
    context = {
        "circle": circle,
        "form": form,
        "prompt": prompt,
        "prompts": selectors.prompts_for_organisation(circle.organisation_id),
    }
    return render(request, "reflections/thread_new.html", context)


@login_required
@require_GET
def thread_detail(request: HttpRequest, pk: int) -> HttpResponse:
    thread = get_thread_for_user(request.user, pk)
    # Render first: the page marks what is newer than the previous visit, then the visit is recorded.
    view = selectors.thread_page(user=request.user, thread=thread, page=request.GET.get("page"))
    response = _thread_page(request, thread, view=view)
    services.thread_mark_read(user=request.user, thread=thread, last_read_at=view.previous_read_at)
    return response


@login_required
@require_http_methods(["GET", "POST"])
def thread_edit(request: HttpRequest, pk: int) -> HttpResponse:
    thread = get_thread_for_user(request.user, pk, write=True)
    form = ThreadEditForm(request.POST or None, initial={"title": thread.title, "body": thread.body})
    if request.method == "POST" and form.is_valid():
        try:
            services.thread_edit(thread=thread, **form.cleaned_data)
        except ValidationError as error:
            _apply(form, error)
        else:
            return redirect(_thread_url(thread))
    return render(
        request, "reflections/post_edit.html", {"circle": thread.circle, "thread": thread, "form": form}
    )


@login_required
@require_POST
def thread_delete(request: HttpRequest, pk: int) -> HttpResponse:
    thread = get_thread_for_user(request.user, pk, write=True)
    services.thread_delete(thread=thread)
    messages.success(request, "Your thread was deleted. Perspectives others shared stay, under a note.")
    return redirect(_thread_url(thread))


@login_required
@require_POST
def thread_takeaway(request: HttpRequest, pk: int) -> HttpResponse:
    thread = get_thread_for_user(request.user, pk, write=True)
    form = TakeawayForm(request.POST)
    if form.is_valid():
        try:
            services.thread_set_takeaway(thread=thread, **form.cleaned_data)
        except ValidationError as error:
            _apply(form, error)
        else:
            return redirect(_thread_url(thread, "takeaway"))
    return _thread_page(request, thread, takeaway_form=form)


@login_required
@require_POST
def thread_affirm(request: HttpRequest, pk: int) -> HttpResponse:
    thread = get_thread_for_user(request.user, pk)
    try:
        services.affirmation_toggle(user=request.user, thread=thread)
    except ValidationError as error:
        messages.info(request, error.messages[0])
    if _is_htmx(request):
        post = selectors.post_affirmations(user=request.user, post=thread)
        return render(request, "reflections/_affirm.html", {"post": post, "url": request.path})
    return redirect(_thread_url(thread))


# --- Perspectives ------------------------------------------------------------------------------


@login_required
@require_POST
def reply_create(request: HttpRequest, pk: int) -> HttpResponse:
    thread = get_thread_for_user(request.user, pk)
    form = ReplyForm(request.POST)
    if form.is_valid():
        try:
            reply = services.reply_create(author=request.user, thread=thread, **form.cleaned_data)
        except ValidationError as error:
            _apply(form, error)
        else:
            return redirect(_reply_url(reply))
    return _thread_page(request, thread, reply_form=form)


@login_required
@require_GET
def replies_after(request: HttpRequest, pk: int) -> HttpResponse:
    """The perspectives newer than ?after=<id>, as the fragment the live page appends."""
    thread = get_thread_for_user(request.user, pk)
    after = _id(request.GET.get("after", "0"))
    if after is None:
        return HttpResponse("after must be a perspective id", status=400, content_type="text/plain")
    replies = selectors.replies_after(user=request.user, thread=thread, after_id=after)
    _with_reply_urls(replies)
    services.thread_mark_read(user=request.user, thread=thread)
    context = {"thread": thread, "replies": replies}
    return render(request, "reflections/_replies.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def reply_edit(request: HttpRequest, pk: int) -> HttpResponse:
    reply = get_reply_for_user(request.user, pk, write=True)
    form = ReplyForm(request.POST or None, initial={"body": reply.body})
    if request.method == "POST" and form.is_valid():
        try:
            services.reply_edit(reply=reply, **form.cleaned_data)
        except ValidationError as error:
            _apply(form, error)
        else:
            return redirect(_reply_url(reply))
    context = {"circle": reply.thread.circle, "thread": reply.thread, "reply": reply, "form": form}
    return render(request, "reflections/post_edit.html", context)


@login_required
@require_POST
def reply_delete(request: HttpRequest, pk: int) -> HttpResponse:
    reply = get_reply_for_user(request.user, pk, write=True)
    services.reply_delete(reply=reply)
    messages.success(request, "Your perspective was deleted.")
    return redirect(_thread_url(reply.thread, f"reply-{reply.pk}"))


@login_required
@require_POST
def reply_affirm(request: HttpRequest, pk: int) -> HttpResponse:
    reply = get_reply_for_user(request.user, pk)
    try:
        services.affirmation_toggle(user=request.user, reply=reply)
    except ValidationError as error:
        messages.info(request, error.messages[0])
    if _is_htmx(request):
        post = selectors.post_affirmations(user=request.user, post=reply)
        return render(request, "reflections/_affirm.html", {"post": post, "url": request.path})
    return redirect(_thread_url(reply.thread, f"reply-{reply.pk}"))


# --- Concerns --------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def concern_new(request: HttpRequest, circle_pk: int) -> HttpResponse:
    circle = get_circle_for_user(request.user, circle_pk)
    about = {}
    # The post, if any, is resolved through the same access rules, so a guessed id from another
    # circle is a 404 rather than a way to learn whether it exists.
    thread_id, reply_id = _id(request.GET.get("thread")), _id(request.GET.get("reply"))
    if reply_id is not None:
        about["reply"] = get_reply_for_user(request.user, reply_id)
    elif thread_id is not None:
        about["thread"] = get_thread_for_user(request.user, thread_id)
    post = about.get("reply") or about.get("thread")
    if post is not None and (getattr(post, "circle", None) or post.thread.circle).pk != circle.pk:
        raise Http404("No such post in this circle.")
    form = ConcernForm(request.POST or None)
    if post is not None:
        del form.fields["moment"]
    if request.method == "POST" and form.is_valid():
        try:
            services.concern_report(reporter=request.user, circle=circle, **about, **form.cleaned_data)
        except ValidationError as error:
            _apply(form, error)
        else:
            return redirect("reflections:concern-received", circle_pk=circle.pk)
    return render(request, "reflections/concern_new.html", {"circle": circle, "form": form, "post": post})


@login_required
@require_GET
def concern_received(request: HttpRequest, circle_pk: int) -> HttpResponse:
    circle = get_circle_for_user(request.user, circle_pk)
    return render(request, "reflections/concern_received.html", {"circle": circle})


@login_required
@require_GET
def concern_list(request: HttpRequest, circle_pk: int) -> HttpResponse:
    circle = get_circle_for_concerns(request.user, circle_pk)
    context = {
        "circle": circle,
        "concerns": selectors.concerns_for_circle(circle),
        "resolve_form": ResolveForm(),
    }
    return render(request, "reflections/concern_list.html", context)


@login_required
@require_POST
def concern_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    concern = get_concern_for_user(request.user, pk, write=True)
    form = ResolveForm(request.POST)
    if form.is_valid():
        services.concern_resolve(actor=request.user, concern=concern, **form.cleaned_data)
        messages.success(request, "Marked as resolved.")
    return redirect("reflections:concerns", circle_pk=concern.circle_id)


# --- Prompt library --------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def prompt_library(request: HttpRequest) -> HttpResponse:
    if not request.user.organisation_id:
        raise Http404("No organisation.")
    form = PromptForm(request.POST or None)
    if request.method == "POST":
        check_can_manage_prompts(request.user)
        if form.is_valid():
            try:
                services.prompt_add(actor=request.user, **form.cleaned_data)
            except ValidationError as error:
                _apply(form, error)
            else:
                messages.success(request, "Your prompt was added to the library.")
                return redirect("reflections:prompts")
    context = {
        "prompts": selectors.prompts_for_organisation(request.user.organisation_id),
        "form": form,
        "can_manage": can_manage_prompts(request.user),
    }
    return render(request, "reflections/prompt_library.html", context)


@login_required
@require_POST
def prompt_remove(request: HttpRequest, pk: int) -> HttpResponse:
    prompt = get_prompt_for_user(request.user, pk, write=True)
    services.prompt_remove(actor=request.user, prompt=prompt)
    messages.success(request, "The prompt was removed.")
    return redirect("reflections:prompts")


# --- Journal ---------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def journal(request: HttpRequest) -> HttpResponse:
    form = JournalEntryForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.journal_entry_add(author=request.user, **form.cleaned_data)
        except ValidationError as error:
            _apply(form, error)
        else:
            return redirect("reflections:journal")
    page = selectors.journal_for_user(user=request.user, page=request.GET.get("page", 1))
    return render(request, "reflections/journal.html", {"form": form, "page": page})


@login_required
@require_http_methods(["GET", "POST"])
def journal_edit(request: HttpRequest, pk: int) -> HttpResponse:
    entry = get_journal_entry_for_user(request.user, pk, write=True)
    form = JournalEntryForm(request.POST or None, initial={"body": entry.body})
    if request.method == "POST" and form.is_valid():
        try:
            services.journal_entry_edit(entry=entry, **form.cleaned_data)
        except ValidationError as error:
            _apply(form, error)
        else:
            return redirect("reflections:journal")
    return render(request, "reflections/journal_edit.html", {"form": form, "entry": entry})


@login_required
@require_POST
def journal_delete(request: HttpRequest, pk: int) -> HttpResponse:
    entry = get_journal_entry_for_user(request.user, pk, write=True)
    services.journal_entry_delete(entry=entry)
    messages.success(request, "The entry was deleted.")
    return redirect("reflections:journal")


# --- Moving towards --------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def intention_list(request: HttpRequest) -> HttpResponse:
    form = IntentionForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            services.intention_add(owner=request.user, **form.cleaned_data)
        except ValidationError as error:
            _apply(form, error)
        else:
            return redirect("reflections:intentions")
    context = {
        "form": form,
        "active": selectors.intentions_for_user(request.user),
        "reached": selectors.reached_intentions_for_user(request.user),
    }
    return render(request, "reflections/intention_list.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def intention_detail(request: HttpRequest, pk: int) -> HttpResponse:
    intention = get_intention_for_user(request.user, pk, write=request.method == "POST")
    form = IntentionForm(
        request.POST or None,
        user=request.user,
        initial={
            "text": intention.text,
            "circle": intention.circle,
            "nudge_after_days": intention.nudge_after_days,
        },
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.intention_update(intention=intention, **form.cleaned_data)
        except ValidationError as error:
            _apply(form, error)
        else:
            messages.success(request, "Saved.")
            return redirect("reflections:intention", pk=intention.pk)
    context = {"intention": intention, "form": form, "step_form": StepForm(), "reached_form": ReachedForm()}
    return render(request, "reflections/intention_detail.html", context)


@login_required
@require_POST
def intention_step(request: HttpRequest, pk: int) -> HttpResponse:
    intention = get_intention_for_user(request.user, pk, write=True)
    form = StepForm(request.POST)
    if form.is_valid():
        try:
            services.intention_step_add(intention=intention, **form.cleaned_data)
        except ValidationError as error:
            _apply(form, error)
        else:
            messages.success(request, "Step noted. Small steps count.")
            return redirect("reflections:intention", pk=intention.pk)
    context = {
        "intention": intention,
        "form": IntentionForm(
            user=request.user, initial={"text": intention.text, "circle": intention.circle}
        ),
        "step_form": form,
        "reached_form": ReachedForm(),
    }
    return render(request, "reflections/intention_detail.html", context)


@login_required
@require_POST
def intention_reached(request: HttpRequest, pk: int) -> HttpResponse:
    intention = get_intention_for_user(request.user, pk, write=True)
    form = ReachedForm(request.POST)
    if form.is_valid():
        try:
            celebration = services.intention_mark_reached(intention=intention, **form.cleaned_data)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return redirect("reflections:intention", pk=intention.pk)
        messages.success(request, "You reached it. That's worth celebrating.")
        if celebration is not None:
            return redirect(_thread_url(celebration))
        return redirect("reflections:intentions")
    messages.error(request, " ".join(error for errors in form.errors.values() for error in errors))
    return redirect("reflections:intention", pk=intention.pk)


@login_required
@require_POST
def intention_delete(request: HttpRequest, pk: int) -> HttpResponse:
    intention = get_intention_for_user(request.user, pk, write=True)
    services.intention_delete(intention=intention)
    messages.success(request, "The intention was removed.")
    return redirect("reflections:intentions")


# --- Your data -------------------------------------------------------------------------------


@login_required
@require_GET
def my_data(request: HttpRequest) -> HttpResponse:
    return render(request, "reflections/my_data.html", {"erase_form": EraseForm()})


@login_required
@require_GET
def my_data_export(request: HttpRequest) -> HttpResponse:
    data = services.member_data_export(request.user)
    response = HttpResponse(json.dumps(data, indent=2, ensure_ascii=False), content_type="application/json")
    response["Content-Disposition"] = 'attachment; filename="alongside-my-data.json"'
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def my_data_erase(request: HttpRequest) -> HttpResponse:
    form = EraseForm(request.POST)
    if form.is_valid():
        try:
            services.member_erase(user=request.user, keep_posts=form.cleaned_data["posts"] == EraseForm.KEEP)
        except ValidationError as error:
            _apply(form, error)
        else:
            logout(request)
            return render(request, "reflections/erased.html")
    return render(request, "reflections/my_data.html", {"erase_form": form})
