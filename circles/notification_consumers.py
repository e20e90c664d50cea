"""The notification badge socket: a signed-in person hears their unread count, nothing else.

The origin is checked by config.asgi (AllowedHostsOriginValidator) and the person comes from the
Django session. The count is sent on connect and whenever `circles.notifications` pushes one
after a commit; the socket takes no commands, and says so to anything sent to it. Signing out or
being deactivated closes it (circles.sockets).
"""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from circles import notifications
from circles.sockets import ClosesWhenAccessEnds

CLOSE_SIGNED_OUT = 4401


class NotificationBadgeConsumer(ClosesWhenAccessEnds, AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.close(code=CLOSE_SIGNED_OUT)
            return
        await self.join_groups(user.pk, notifications.badge_group(user.pk))
        await self.accept()
        count = await database_sync_to_async(notifications.unread_count)(user=user)
        await self.send_json({"type": "badge", "count": count})

    async def disconnect(self, code):
        await self.leave_groups()

    async def receive(self, text_data=None, bytes_data=None):
        await self.send_json({"type": "error", "message": "This connection only sends your unread count."})

    async def badge_count(self, event):
        await self.send_json({"type": "badge", "count": int(event["count"])})
