"""Operator views of the schedule. Circle content (reflections, chat) is not registered here."""

from django.contrib import admin

from circles.models import (
    AwayPeriod,
    Circle,
    CircleSession,
    CoverRequest,
    Membership,
    SessionTemplate,
    TemplateRound,
)


class TemplateRoundInline(admin.TabularInline):
    model = TemplateRound
    extra = 0


@admin.register(SessionTemplate)
class SessionTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "organisation"]
    inlines = [TemplateRoundInline]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Circle)
class CircleAdmin(admin.ModelAdmin):
    list_display = ["name", "organisation", "frequency", "time_zone", "start_date", "archived_at"]
    list_filter = ["organisation", "frequency"]
    search_fields = ["name"]
    raw_id_fields = ["created_by"]
    inlines = [MembershipInline]


@admin.register(CircleSession)
class CircleSessionAdmin(admin.ModelAdmin):
    list_display = ["circle", "starts_at", "status", "facilitator", "moved", "revision"]
    list_filter = ["status", "moved"]
    list_select_related = ["circle", "facilitator"]
    raw_id_fields = ["circle", "facilitator"]
    date_hierarchy = "starts_at"


@admin.register(CoverRequest)
class CoverRequestAdmin(admin.ModelAdmin):
    list_display = ["session", "requested_by", "accepted_by", "accepted_at"]
    list_select_related = ["session__circle", "requested_by", "accepted_by"]
    raw_id_fields = ["session", "requested_by", "accepted_by"]


@admin.register(AwayPeriod)
class AwayPeriodAdmin(admin.ModelAdmin):
    list_display = ["user", "starts_on", "ends_on"]
    raw_id_fields = ["user"]
