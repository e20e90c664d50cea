"""Every socket of the product closes when its person may no longer use it.

Each consumer (session room, thread, notification badge) joins two groups for the person behind it:

- `live.user.<user id>`: removal from a circle and deactivation (circles.live sends there after commit);
- `auth.session.<digest>`: signing out of the browser the socket came from. The digest is a
  SHA-256 of the Django session key, so Redis never holds the key itself (it is a credential).

A force-close message is `{"type": "live.force_close", "circle_id": <id or None>, "reason": ...}`.
A socket about another circle ignores it; otherwise it sends `{"type": "closed", "code": <reason>,
"message": ...}` and closes with the code below (docs/live-protocol.md). Signing out of one browser
leaves the person's other browsers, which are still signed in, alone.
"""

import asyncio
import functools
import hashlib
import json
import logging

from asgiref.sync import async_to_sync
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.layers import get_channel_layer

from circles import live

logger = logging.getLogger(__name__)

# How long a socket can stay deaf after the channel layer forgot its groups (a Redis restart).
GROUP_REFRESH_SECONDS = 5.0

# reason -> (close code, what the page may show)
REASONS = {
    "removed": (live.CLOSE_REMOVED, "You are no longer in this circle."),
    "signed_out": (live.CLOSE_SIGNED_OUT, "You signed out."),
}


def session_group(session_key: str) -> str:
    return "auth.session." + hashlib.sha256(session_key.encode()).hexdigest()[:48]


def disconnect_session(session_key: str | None) -> None:
    """Close the sockets opened with this Django session (it is being signed out). Best effort: the
    session row is gone either way, so a reconnect is refused and the next message finds no person."""
    if not session_key:
        return
    try:
        async_to_sync(get_channel_layer().group_send)(
            session_group(session_key),
            {"type": "live.force_close", "circle_id": None, "reason": "signed_out"},
        )
    except Exception:
        logger.exception("Could not close the sockets of a signed-out session")


def on_user_logged_out(sender, request, user, **kwargs) -> None:
    """`user_logged_out` receiver: fires before Django flushes the session, so its key is still known."""
    session = getattr(request, "session", None)
    disconnect_session(session.session_key if session is not None else None)


class ClosesWhenAccessEnds:
    """Mixin for a Channels consumer. Call `join_groups(user_id, *groups)` once the handshake is
    allowed (the consumer's own groups plus the person's two above) and `leave_groups()` on
    disconnect; set `circle_id` to the circle the socket is about (None: no particular circle, so
    only person-wide closes reach it).

    Group memberships live in the channel layer. The Redis pub/sub layer subscribes again by
    itself after a Redis restart, but a layer that forgot a membership while the socket stayed
    open would leave it hearing nothing (no events, and no force-close on sign-out) while looking
    healthy, so each socket re-joins its groups every GROUP_REFRESH_SECONDS (for a group the
    process already subscribes to that costs no Redis call); the room client then sees the gap
    in sequence numbers and catches up.
    """

    circle_id: int | None = None
    joined_groups: tuple[str, ...] = ()
    _refresher: asyncio.Task | None = None

    async def __call__(self, scope, receive, send):
        """AsyncConsumer.__call__ with one long-lived reader per source (the socket, the channel
        layer) instead of Channels' await_many_dispatch, which starts a task and an asyncio.wait
        for every message: a room broadcast paid that once per socket. Each reader dispatches what
        it reads itself, under a lock, so messages are still handled one at a time, each source's
        in order, and a broadcast wakes one task per socket, not two."""
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
        self.base_send = send
        one_at_a_time = asyncio.Lock()
        ended = False

        async def pump(source) -> None:
            nonlocal ended
            while True:
                message = await source()
                async with one_at_a_time:
                    if ended:  # the other reader stopped the consumer while this one waited
                        return
                    try:
                        await self.dispatch(message)
                    except BaseException:
                        ended = True
                        raise

        readers = [asyncio.create_task(pump(receive)), asyncio.create_task(pump(self.channel_receive))]
        try:
            done, _ = await asyncio.wait(readers, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
        # StopConsumer is the consumer's way out; anything else (a failed handler, a broken channel
        # layer) is raised, as Channels would.
        for reader in done:
            error = reader.exception()
            if error is not None and not isinstance(error, StopConsumer):
                raise error

    async def dispatch(self, message: dict) -> None:
        # Channels' own dispatch first runs close_old_connections on Django's one sync thread,
        # for every message: a room broadcast cost one trip to that thread per socket, queued
        # behind every room's transactions. These consumers reach the database only through
        # database_sync_to_async, which closes old connections around each call itself.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def join_groups(self, user_id: int, *groups: str) -> None:
        personal = [live.user_group(user_id)]
        session = self.scope.get("session")
        if session is not None and session.session_key:
            personal.append(session_group(session.session_key))
        self.joined_groups = (*groups, *personal)
        await self._add_to_groups()
        self._refresher = asyncio.create_task(self._keep_groups())

    async def leave_groups(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            self._refresher = None
        groups, self.joined_groups = self.joined_groups, ()
        for group in groups:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def _add_to_groups(self) -> None:
        for group in self.joined_groups:
            await self.channel_layer.group_add(group, self.channel_name)

    async def _keep_groups(self) -> None:
        while True:
            await asyncio.sleep(GROUP_REFRESH_SECONDS)
            try:
                await self._add_to_groups()
            except Exception:  # the layer is down: try again next time, the socket stays up
                logger.warning("Could not refresh a socket's channel-layer groups", exc_info=True)

    async def live_force_close(self, message: dict) -> None:
        circle_id = message.get("circle_id")
        if circle_id is not None and circle_id != self.circle_id:
            return
        reason = message.get("reason", "removed")
        code, text = REASONS.get(reason, REASONS["removed"])
        await self.send(text_data=json.dumps({"type": "closed", "code": reason, "message": text}))
        await self.close(code=code)
