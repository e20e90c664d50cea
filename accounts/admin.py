from django.contrib import admin

from accounts.models import AuditEntry, CrisisLink, Invitation, LineManagementLink, Organisation, Team, User


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ["name", "time_zone", "anonymity_threshold"]


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = ["email", "display_name", "organisation", "is_active", "is_org_admin", "is_facilitator"]
    list_filter = ["organisation", "is_active", "is_org_admin", "is_facilitator"]
    search_fields = ["email", "display_name"]
    exclude = ["password"]
    filter_horizontal = ["managed_teams", "groups", "user_permissions"]


admin.site.register([Team, CrisisLink, LineManagementLink])


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "organisation", "created_at", "expires_at", "accepted_at", "revoked_at"]
    exclude = ["token_hash"]


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "organisation", "actor", "action", "subject"]
    readonly_fields = [f.name for f in AuditEntry._meta.fields]
