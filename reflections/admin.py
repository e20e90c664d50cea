"""Only the prompt library is in the Django admin. Threads, perspectives, journal entries,
intentions and concerns are members' words: no admin page shows them, by design."""

from django.contrib import admin

from reflections.models import Prompt


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ["text", "task", "organisation"]
    list_filter = ["task"]
