"""Insights pages and their CSV exports. Each view: access, then one audit call, then the page.

The pages accept no query parameters except `page`: the slices are fixed (group × calendar
month), so anything else is refused with 400 rather than quietly ignored.
"""

import csv

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import get_script_prefix
from django.utils.dateformat import format as format_date
from django.views.decorators.http import require_GET

from insights import privacy, selectors, services
from insights.access import get_group_for_user, get_insights_for_user, get_member_view_for_user

# Spreadsheet programs run a cell that starts with one of these as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _extra_params(request: HttpRequest, allowed: tuple[str, ...] = ()) -> HttpResponse | None:
    unexpected = sorted(set(request.GET) - set(allowed))
    if unexpected:
        return HttpResponseBadRequest(
            "Insights come in fixed slices (team and calendar month) and take no filters: "
            + ", ".join(unexpected)
        )
    return None


def _csv_text(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def _csv_response(filename: str, rows: list[privacy.Row]) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow(["Group", "Month", *(column.heading for column in privacy.COLUMNS)])
    for row in rows:
        writer.writerow([_csv_text(row.label), f"{row.month:%Y-%m}", *(cell.text for cell in row.cells)])
    return response


def _month_html(scope: selectors.Scope, month, page, total: privacy.Row | None, month_label: str) -> str:
    """The month's navigation, chart and table, rendered once per scope, month and page.

    The HTML is kept with the suppressed table it shows (`selectors.RECENT`, under the scope's
    key, so under the rollups' version and the visible groups): it holds nothing else.
    """

    def render_fragment() -> str:
        charted = [*page.object_list, total] if total else page.object_list
        context = {
            "scope": scope,
            "month": month,
            "page": page,
            "total": total,
            "columns": privacy.COLUMNS,
            "month_label": month_label,
            "chart_bars": [(row.label, row.cell("share_taking_part")) for row in charted],
        }
        return render_to_string("insights/_month.html", context)

    key = scope.cache_key
    return selectors.RECENT.get(
        ("month-html", *key, month, page.number, get_script_prefix()) if key else None, render_fragment
    )


def _trend_context(scope: selectors.Scope, group: privacy.Group | None, rows: list[privacy.Row]) -> dict:
    return {
        "scope": scope,
        "group": group,
        "rows": rows,
        "columns": privacy.COLUMNS,
        # The chart reads left to right in time; the table puts the newest month first.
        "chart_bars": [
            (format_date(row.month, "M Y"), row.cell("share_taking_part")) for row in reversed(rows)
        ],
    }


@login_required
@require_GET
def overview(request: HttpRequest, month: str | None = None) -> HttpResponse:
    scope, month = get_insights_for_user(request.user, month)
    if refused := _extra_params(request, allowed=("page",)):
        return refused
    page, total = selectors.month_summary(scope, month, request.GET.get("page"))
    month_label = format_date(month, "F Y")
    services.insights_view_record(
        actor=request.user,
        action="insights.viewed",
        subject=f"Insights for {month_label}",
        data={"slice": "month", "month": f"{month:%Y-%m}", "page": page.number, "format": "html"},
    )
    context = {
        "scope": scope,
        "page": page,
        "total": total,
        "month_key": f"{month:%Y-%m}",
        "month_label": month_label,
        "month_html": _month_html(scope, month, page, total, month_label),
    }
    return render(request, "insights/overview.html", context)


@login_required
@require_GET
def overview_csv(request: HttpRequest, month: str) -> HttpResponse:
    scope, month = get_insights_for_user(request.user, month)
    if refused := _extra_params(request):
        return refused
    rows = selectors.month_export(scope, month)
    services.insights_view_record(
        actor=request.user,
        action="insights.exported",
        subject=f"Insights for {format_date(month, 'F Y')} (CSV)",
        data={"slice": "month", "month": f"{month:%Y-%m}", "format": "csv"},
    )
    return _csv_response(f"insights-{month:%Y-%m}.csv", rows)


@login_required
@require_GET
def group(request: HttpRequest, key: str) -> HttpResponse:
    scope, group = get_group_for_user(request.user, key)
    if refused := _extra_params(request):
        return refused
    rows = selectors.group_trend(scope, group)
    services.insights_view_record(
        actor=request.user,
        action="insights.viewed",
        subject=f"Insights trend for {group.label}",
        data={"slice": "group", "group": group.key, "format": "html"},
    )
    return render(request, "insights/group.html", _trend_context(scope, group, rows))


@login_required
@require_GET
def group_csv(request: HttpRequest, key: str) -> HttpResponse:
    scope, group = get_group_for_user(request.user, key)
    if refused := _extra_params(request):
        return refused
    rows = selectors.group_trend(scope, group)
    services.insights_view_record(
        actor=request.user,
        action="insights.exported",
        subject=f"Insights trend for {group.label} (CSV)",
        data={"slice": "group", "group": group.key, "format": "csv"},
    )
    return _csv_response(f"insights-{group.key}.csv", rows)


@login_required
@require_GET
def my_team(request: HttpRequest) -> HttpResponse:
    scope, group = get_member_view_for_user(request.user)
    if refused := _extra_params(request):
        return refused
    rows = selectors.group_trend(scope, group) if group else []
    services.insights_view_record(
        actor=request.user,
        action="insights.viewed",
        subject="What my manager sees",
        data={"slice": "member", "group": group.key if group else "", "format": "html"},
    )
    return render(request, "insights/my_team.html", _trend_context(scope, group, rows))
