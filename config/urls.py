from django.contrib import admin
from django.urls import include, path

from circles.views import home
from config.health import healthz

urlpatterns = [
    path("", home, name="home"),
    path("accounts/", include("accounts.urls")),
    path("circles/", include("circles.urls")),
    path("", include("reflections.urls")),
    path("insights/", include("insights.urls")),
    path("notifications/", include("circles.notification_urls")),
    path("admin/", admin.site.urls),
    path("healthz/", healthz, name="healthz"),
]
