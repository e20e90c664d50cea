"""Every WebSocket route of the product, gathered from the apps that have live pages."""

from django.urls import path

from circles.notification_consumers import NotificationBadgeConsumer
from circles.routing import websocket_urlpatterns as circles_websockets
from reflections.routing import websocket_urlpatterns as reflections_websockets

websocket_urlpatterns: list = [
    *circles_websockets,
    path("ws/notifications/", NotificationBadgeConsumer.as_asgi()),
    *reflections_websockets,
]
