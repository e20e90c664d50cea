"""The session room socket: authorise, join the groups, translate frames into circles.live calls.

No rules live here. Every inbound frame is checked (size, rate, JSON, type, fields) and answered:
an `ack` for an applied command, an `error` for anything refused; the socket stays open unless
the person is no longer allowed in. See docs/live-protocol.md.
"""

import json
import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from circles import live
from circles.sockets import ClosesWhenAccessEnds

logger = logging.getLogger(__name__)

# Built once: wrapping a function inspects it, and every command and ping goes through here.
_write_on_db_thread = database_sync_to_async(live.with_deferred_broadcasts)


class SessionRoomConsumer(ClosesWhenAccessEnds, AsyncWebsocketConsumer):
    joined = False

    async def connect(self):
        user = self.scope["user"]
        self.session_id = int(self.scope["url_route"]["kwargs"]["pk"])
        if not user.is_authenticated:
            # Closing before accept refuses the handshake: the browser never gets a socket.
            await self.close(code=live.CLOSE_SIGNED_OUT)
            return
        self.user_id = user.pk
        entry = await database_sync_to_async(live.room_entry)(
            user_id=self.user_id, session_id=self.session_id
        )
        if entry.close_code is not None:
            await self.close(code=entry.close_code)
            return
        self.circle_id = entry.circle_id
        self.bucket = live.TokenBucket()
        await self.join_groups(self.user_id, live.room_group(self.session_id))
        self.joined = True
        await self.accept()
        await self.write(
            live.connection_open,
            session_id=self.session_id,
            user_id=self.user_id,
            channel_name=self.channel_name,
        )

    async def disconnect(self, code):
        if not self.joined:
            return
        self.joined = False
        await self.leave_groups()
        await self.write(live.connection_close, channel_name=self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        message_id = None
        try:
            message = live.parse_frame(text_data)
            message_id = live.message_id(message)
            if not self.bucket.take():
                raise live.LiveError(
                    "rate_limited", "That's a lot of messages at once. Please wait a moment."
                )
            await self.dispatch_message(message)
        except live.LiveError as error:
            await self.send_json(
                {"type": "error", "id": message_id, "code": error.code, "message": error.message}
            )
            if error.close_code is not None:
                await self.close(code=error.close_code)

    async def dispatch_message(self, message: dict) -> None:
        kind = message["type"]
        if kind == "sync":
            reply = await database_sync_to_async(live.catch_up)(
                session_id=self.session_id, user_id=self.user_id, last_seq=live.parse_last_seq(message)
            )
            await self.send_json(reply)
        elif kind == "ping":
            seq = await self.write(
                live.heartbeat,
                session_id=self.session_id,
                user_id=self.user_id,
                channel_name=self.channel_name,
            )
            await self.send_json({"type": "pong", "id": live.message_id(message), "seq": seq})
        else:
            command = live.parse_command(message)
            result = await self.write(
                live.perform, session_id=self.session_id, user_id=self.user_id, command=command
            )
            await self.send_json({"type": "ack", "id": command.client_id, **result})

    async def write(self, function, **kwargs):
        """Call a circles.live write on the sync thread, then send the bells its commits rang.

        Sent from here rather than from the sync thread, which would otherwise wait for Redis
        after every commit while the other rooms' commands queue behind it. A bell that cannot be
        sent is logged; the clients catch up from the seq gap or the next pong.
        """
        result, bells = await _write_on_db_thread(function, **kwargs)
        for group, message in bells:
            try:
                await self.channel_layer.group_send(group, message)
            except Exception:
                logger.exception("Could not broadcast to %s", group)
        return result

    async def send_json(self, content: dict) -> None:
        await self.send(text_data=json.dumps(content, separators=(",", ":")))

    async def live_event(self, message):
        # Serialised once in circles.live.broadcast for every socket in the room, and handed
        # straight to the server: this runs once per socket per event.
        await self.base_send({"type": "websocket.send", "text": message["text"]})
