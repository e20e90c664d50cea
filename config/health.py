"""`GET /healthz/`: does this process reach the database, the channel layer and the broker?

For load balancers and container health checks, so it needs no sign-in and reveals nothing
but "ok" or "error" per dependency. Each check has a short timeout: a dead Redis must turn
into a quick 503, not a request that hangs until the balancer gives up.

`python -m config.health` is the container health check: with no argument it runs the
database and broker checks in-process (worker and beat have no HTTP port); with a URL it
asks a running web server for /healthz/.
"""

import asyncio
import contextlib
import logging
import os
import sys
import uuid

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from kombu import Connection

TIMEOUT_SECONDS = 2.0
logger = logging.getLogger(__name__)


def check_database() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone() == (1,)


async def check_channel_layer() -> bool:
    """A message sent to a channel of this process must come back: that proves the layer delivers.

    The channel is made (subscribed) before the send: a pub/sub layer drops a message nobody
    listens to. It lets go of a channel only when a receive on it is cancelled (that is how a
    consumer's channel ends, and what a timeout here does), so after an answer the check ends its
    channel the same way: a probe every few seconds must not leave a subscription behind.
    """
    layer = get_channel_layer()
    channel = await layer.new_channel("healthz.")
    message = {"type": "healthz.ping", "nonce": uuid.uuid4().hex}
    await layer.send(channel, message)
    answer = await layer.receive(channel)
    ending = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)
    ending.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await ending
    return answer == message


def check_broker() -> bool:
    url = settings.CELERY_BROKER_URL
    options = dict(settings.CELERY_BROKER_TRANSPORT_OPTIONS)
    if url.startswith("filesystem:"):
        # The filesystem transport "connects" to anything; what matters is the folders.
        folders = [options["data_folder_in"], options["data_folder_out"]]
        return all(os.path.isdir(path) and os.access(path, os.W_OK) for path in folders)
    # Socket timeouts as well as a connect timeout: a server that accepts and never answers
    # would otherwise keep this thread forever.
    options.update(socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS)
    with Connection(url, connect_timeout=TIMEOUT_SECONDS, transport_options=options) as conn:
        conn.ensure_connection(max_retries=0)
        return True


CHECKS = {"database": check_database, "broker": check_broker}


async def _run(name: str) -> str:
    if name == "channel_layer":
        call = check_channel_layer()
    else:
        # The database check stays on Django's request thread (its connection lives there); the
        # broker check gets its own thread, so a stuck socket cannot hold that thread up.
        call = sync_to_async(CHECKS[name], thread_sensitive=name == "database")()
    try:
        return "ok" if await asyncio.wait_for(call, TIMEOUT_SECONDS) else "error"
    except Exception:
        logger.warning("health check %s failed", name, exc_info=True)
        return "error"


async def statuses(names=("database", "channel_layer", "broker")) -> dict[str, str]:
    return dict(zip(names, await asyncio.gather(*(_run(name) for name in names)), strict=True))


@never_cache
@require_GET
async def healthz(request: HttpRequest) -> JsonResponse:
    result = await statuses()
    healthy = all(value == "ok" for value in result.values())
    return JsonResponse(result, status=200 if healthy else 503)


def probe(url: str) -> bool:
    """Ask a web server for /healthz/ with a Host header it accepts (it rejects any other)."""
    import urllib.request

    hosts = [host.lstrip(".*") for host in settings.ALLOWED_HOSTS if host.lstrip(".*")]
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"Give an http(s) URL, not {url!r}")
    request = urllib.request.Request(url, headers={"Host": hosts[0] if hosts else "localhost"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS * 3) as response:  # noqa: S310  # nosec B310  # scheme checked above: http(s) only
            return response.status == 200
    except OSError:
        return False


def main(argv: list[str]) -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    if argv:
        return 0 if probe(argv[0]) else 1
    result = asyncio.run(statuses(("database", "broker")))
    print(result)
    return 0 if all(value == "ok" for value in result.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
