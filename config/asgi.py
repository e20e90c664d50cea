"""ASGI entry point: HTTP through Django, WebSockets through Channels.

WebSockets are origin-checked against ALLOWED_HOSTS and authenticated by the Django session.
"""

import os

import autobahn.util
from django.core.asgi import get_asgi_application

# autobahn (under daphne) builds the arguments of a debug log line, coloured through click, for
# every frame it sends, whether or not debug logging is on: about a tenth of the live fan-out's
# CPU (docs/performance.md). Without click it builds plain text.
autobahn.util._HAS_CLICK = False

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from config.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
