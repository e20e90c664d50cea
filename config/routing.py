"""Every WebSocket route of the product, gathered from the apps that have live pages."""

from django.urls import path

from circles.notification_consumers import NotificationBadgeConsumer

websocket_urlpatterns: list = [
    path("ws/notifications/", NotificationBadgeConsumer.as_asgi()),
]
