from django.urls import path

from circles.consumers import SessionRoomConsumer

websocket_urlpatterns = [
    path("ws/circles/sessions/<int:pk>/room/", SessionRoomConsumer.as_asgi()),
]
