"""Live perspectives on a thread page: the socket only rings the bell.

The server sends {"type": "reply.created", "reply": <id>}; the page fetches the rendered
perspectives newer than the last one it has over HTTP (access-checked again there). Membership is
checked on connect, before every inbound message is acted on, and before each event is forwarded,
so someone who leaves the circle stops hearing about it at once; removal from the circle,
deactivation and signing out also close the socket straight away (circles.sockets).
"""

import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from circles.models import Membership
from circles.sockets import ClosesWhenAccessEnds
from reflections.models import Thread
from reflections.services import thread_group, thread_mark_read

NOT_A_MEMBER = 4403


@database_sync_to_async
def _member_circle(user_id: int, thread_id: int) -> int | None:
    """The thread's circle id if the person is a current member of it, else None."""
    circle_id = Thread.objects.filter(pk=thread_id).values_list("circle_id", flat=True).first()
    if circle_id is None:
        return None
    member = Membership.objects.filter(circle_id=circle_id, user_id=user_id, left_at__isnull=True).exists()
    return circle_id if member else None


@database_sync_to_async
def _mark_read(user, thread_id: int) -> None:
    thread_mark_read(user=user, thread=Thread(pk=thread_id))


class ThreadConsumer(ClosesWhenAccessEnds, AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.user = self.scope.get("user")
        self.thread_id = int(self.scope["url_route"]["kwargs"]["pk"])
        self.group = thread_group(self.thread_id)
        if self.user is None or not self.user.is_authenticated:
            await self.close(code=NOT_A_MEMBER)
            return
        self.circle_id = await _member_circle(self.user.pk, self.thread_id)
        if self.circle_id is None:
            await self.close(code=NOT_A_MEMBER)
            return
        await self.join_groups(self.user.pk, self.group)
        await self.accept()

    async def disconnect(self, code):
        await self.leave_groups()

    async def receive_json(self, content, **kwargs):
        if await _member_circle(self.user.pk, self.thread_id) is None:
            await self.close(code=NOT_A_MEMBER)
            return
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "read":
            await _mark_read(self.user, self.thread_id)
            await self.send_json({"type": "read.saved"})
        else:
            await self.send_json({"type": "error", "message": "Unknown message type; use ping or read."})

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        # A malformed or binary frame gets an error reply, never a dropped socket.
        try:
            content = json.loads(text_data) if text_data else None
        except (ValueError, RecursionError):
            # RecursionError: JSON nested a few thousand levels deep, e.g. "[[[[…".
            content = None
        await self.receive_json(content)

    async def reply_created(self, event):
        if await _member_circle(self.user.pk, self.thread_id) is None:
            await self.close(code=NOT_A_MEMBER)
            return
        await self.send_json({"type": "reply.created", "reply": event["reply"]})
