"""ASGI entry point: HTTP through Django, WebSockets through Channels.

WebSockets are origin-checked against ALLOWED_HOSTS and authenticated by the Django session
(Channels' AuthMiddlewareStack, with the session layer below in place of its SessionMiddleware).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddleware  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from channels.sessions import CookieMiddleware, InstanceSessionWrapper  # noqa: E402

from config.routing import websocket_urlpatterns  # noqa: E402


class SocketSessionMiddleware:
    """Channels' SessionMiddleware for WebSockets: the Django session in the scope, the server's
    own `send` passed on. Channels' version wraps `send` to save the session when an HTTP
    response starts, which a WebSocket never sends, and paid for that check on every frame
    (two lazy-object lookups per message, every socket of a room broadcast)."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        wrapper = InstanceSessionWrapper(scope, send)
        await wrapper.resolve_session()
        return await self.inner(wrapper.scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            CookieMiddleware(SocketSessionMiddleware(AuthMiddleware(URLRouter(websocket_urlpatterns))))
        ),
    }
)
