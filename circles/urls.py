from django.urls import path

from circles import cohort_views, room_views, views

app_name = "circles"

urlpatterns = [
    path("", views.circle_list, name="circle-list"),
    path("new/", views.circle_create, name="circle-create"),
    path("<int:pk>/", views.circle_detail, name="circle-detail"),
    path("<int:pk>/edit/", views.circle_edit, name="circle-edit"),
    path("<int:pk>/archive/", views.circle_archive, name="circle-archive"),
    path("<int:pk>/members/add/", views.member_add, name="member-add"),
    path("<int:pk>/members/<int:membership_pk>/remove/", views.member_remove, name="member-remove"),
    path("<int:pk>/leave/", views.circle_leave, name="circle-leave"),
    path("<int:pk>/rota/", views.rota_opt, name="rota-opt"),
    path("sessions/past/", views.past_sessions, name="past-sessions"),
    path("sessions/<int:pk>/", views.session_detail, name="session-detail"),
    path("sessions/<int:pk>/change/", views.session_change, name="session-change"),
    path("sessions/<int:pk>/room/", room_views.session_room, name="session-room"),
    path("sessions/<int:pk>/cover/", views.cover_request, name="cover-request"),
    path("sessions/<int:pk>/session.ics", views.session_ics, name="session-ics"),
    path("cover/<int:pk>/accept/", views.cover_accept, name="cover-accept"),
    path("away/", views.away, name="away"),
    path("away/<int:pk>/delete/", views.away_delete, name="away-delete"),
    path("calendar/", views.calendar_settings, name="calendar"),
    path("calendar/<str:token>.ics", views.calendar_feed, name="calendar-feed"),
    path("templates/", views.template_list, name="template-list"),
    path("templates/new/", views.template_create, name="template-create"),
    path("templates/<int:pk>/", views.template_detail, name="template-detail"),
    path("templates/<int:pk>/edit/", views.template_edit, name="template-edit"),
    path("templates/<int:pk>/copy/", views.template_copy, name="template-copy"),
    path("cohorts/", cohort_views.cohort_list, name="cohort-list"),
    path("cohorts/new/", cohort_views.cohort_create, name="cohort-create"),
    path("cohorts/<int:pk>/", cohort_views.cohort_detail, name="cohort-detail"),
    path("cohorts/<int:pk>/edit/", cohort_views.cohort_edit, name="cohort-edit"),
    path("cohorts/<int:pk>/plan/", cohort_views.cohort_plan, name="cohort-plan"),
    path("cohorts/<int:pk>/publish/", cohort_views.cohort_publish, name="cohort-publish"),
    path("cohorts/<int:pk>/keep-apart/", cohort_views.keep_apart_add, name="cohort-keep-apart"),
    path(
        "cohorts/<int:pk>/keep-apart/<int:pair_pk>/delete/",
        cohort_views.keep_apart_delete,
        name="cohort-keep-apart-delete",
    ),
    path("cohorts/<int:pk>/unavailable/", cohort_views.unavailable_add, name="cohort-unavailable"),
    path(
        "cohorts/<int:pk>/unavailable/<int:row_pk>/delete/",
        cohort_views.unavailable_delete,
        name="cohort-unavailable-delete",
    ),
]
