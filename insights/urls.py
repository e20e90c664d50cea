from django.urls import path

from insights import views

app_name = "insights"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("months/<str:month>/", views.overview, name="month"),
    path("months/<str:month>.csv", views.overview_csv, name="month-csv"),
    path("groups/<str:key>/", views.group, name="group"),
    path("groups/<str:key>.csv", views.group_csv, name="group-csv"),
    path("what-my-manager-sees/", views.my_team, name="my-team"),
]
