from django.urls import path

from reflections.consumers import ThreadConsumer

websocket_urlpatterns = [path("ws/threads/<int:pk>/", ThreadConsumer.as_asgi())]
