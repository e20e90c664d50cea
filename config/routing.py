"""Every WebSocket route of the product, gathered from the apps that have live pages."""

websocket_urlpatterns: list = []
