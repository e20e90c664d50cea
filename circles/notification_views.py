"""The notifications page and the one-click unsubscribe link from reminder emails."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from circles import digest, notifications, reminders


@login_required
@require_http_methods(["GET"])
def notification_list(request: HttpRequest) -> HttpResponse:
    page = notifications.notifications_page(user=request.user, page=request.GET.get("page"))
    return render(
        request,
        "circles/notifications.html",
        {"page": page, "weekly_digest": digest.weekly_digest_wanted(user=request.user)},
    )


@login_required
@require_POST
def notification_read(request: HttpRequest, pk: int) -> HttpResponse:
    # Only the person's own notifications match: anyone else's id is a 404, as if it did not exist.
    if not notifications.notification_mark_read(user=request.user, notification_id=pk):
        if not request.user.notifications.filter(pk=pk).exists():
            raise Http404
    # `next` comes from the page the person clicked on: only a path on this site, never a view name
    # (redirect() would try to reverse one) or another site.
    next_url = request.POST.get("next", "")
    if not (next_url.startswith("/") and url_has_allowed_host_and_scheme(next_url, allowed_hosts=None)):
        next_url = reverse("notifications:list")
    return redirect(next_url)


@login_required
@require_POST
def notifications_read_all(request: HttpRequest) -> HttpResponse:
    notifications.notifications_mark_all_read(user=request.user)
    messages.success(request, "All caught up: every notification is marked read.")
    return redirect("notifications:list")


@login_required
@require_POST
def digest_preference(request: HttpRequest) -> HttpResponse:
    wanted = request.POST.get("weekly_digest") == "on"
    digest.digest_set(user=request.user, weekly_digest=wanted)
    messages.success(
        request, "We'll send you a weekly digest." if wanted else "No more weekly digests: that's saved."
    )
    return redirect("notifications:list")


# Mail clients POST the one-click unsubscribe (RFC 8058) with no cookie and no CSRF token: the
# signed token in the address is the authority, and it can only ever switch reminder emails off.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    if reminders.unsubscribe_user_id(token) is None:
        return render(request, "circles/unsubscribe.html", {"state": "invalid"}, status=400)
    if request.method == "GET":
        return render(request, "circles/unsubscribe.html", {"state": "confirm", "token": token})
    reminders.reminder_emails_stop(token=token)
    return render(request, "circles/unsubscribe.html", {"state": "done"})
