from django.urls import path

from reflections import views

app_name = "reflections"

urlpatterns = [
    path("circles/<int:circle_pk>/threads/", views.thread_list, name="threads"),
    path("circles/<int:circle_pk>/threads/new/", views.thread_new, name="thread-new"),
    path("circles/<int:circle_pk>/concerns/", views.concern_list, name="concerns"),
    path("circles/<int:circle_pk>/concerns/new/", views.concern_new, name="concern-new"),
    path("circles/<int:circle_pk>/concerns/received/", views.concern_received, name="concern-received"),
    path("concerns/<int:pk>/resolve/", views.concern_resolve, name="concern-resolve"),
    path("threads/<int:pk>/", views.thread_detail, name="thread"),
    path("threads/<int:pk>/edit/", views.thread_edit, name="thread-edit"),
    path("threads/<int:pk>/delete/", views.thread_delete, name="thread-delete"),
    path("threads/<int:pk>/takeaway/", views.thread_takeaway, name="thread-takeaway"),
    path("threads/<int:pk>/affirm/", views.thread_affirm, name="thread-affirm"),
    path("threads/<int:pk>/perspectives/", views.reply_create, name="reply-create"),
    path("threads/<int:pk>/perspectives/after/", views.replies_after, name="replies-after"),
    path("perspectives/<int:pk>/edit/", views.reply_edit, name="reply-edit"),
    path("perspectives/<int:pk>/delete/", views.reply_delete, name="reply-delete"),
    path("perspectives/<int:pk>/affirm/", views.reply_affirm, name="reply-affirm"),
    path("prompts/", views.prompt_library, name="prompts"),
    path("prompts/<int:pk>/remove/", views.prompt_remove, name="prompt-remove"),
    path("journal/", views.journal, name="journal"),
    path("journal/<int:pk>/", views.journal_edit, name="journal-edit"),
    path("journal/<int:pk>/delete/", views.journal_delete, name="journal-delete"),
    path("moving-towards/", views.intention_list, name="intentions"),
    path("moving-towards/<int:pk>/", views.intention_detail, name="intention"),
    path("moving-towards/<int:pk>/steps/", views.intention_step, name="intention-step"),
    path("moving-towards/<int:pk>/reached/", views.intention_reached, name="intention-reached"),
    path("moving-towards/<int:pk>/delete/", views.intention_delete, name="intention-delete"),
    path("my-data/", views.my_data, name="my-data"),
    path("my-data/export.json", views.my_data_export, name="my-data-export"),
    path("my-data/erase/", views.my_data_erase, name="my-data-erase"),
]
