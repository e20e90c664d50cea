"""Builders and socket helpers shared by the live room tests."""

from datetime import timedelta

from channels.testing import WebsocketCommunicator
from django.test import Client
from django.utils import timezone

from circles.models import CircleSession
from config.asgi import application

RECEIVE_TIMEOUT = 5


def make_session(circle, *, starts_in=timedelta(minutes=5), minutes=60, **fields) -> CircleSession:
    starts_at = timezone.now() + starts_in
    fields.setdefault("occurrence_date", starts_at.date())
    return CircleSession.objects.create(
        circle=circle,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=minutes),
        **fields,
    )


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user, backend="accounts.backends.UserBackend")
    return client.cookies["sessionid"].value


def room_path(session) -> str:
    return f"/ws/circles/sessions/{session.pk}/room/"


def communicator(
    cookie: str | None, session, *, origin: bytes = b"http://testserver"
) -> WebsocketCommunicator:
    headers = [(b"origin", origin), (b"host", b"testserver")]
    if cookie:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    return WebsocketCommunicator(application, room_path(session), headers=headers)


class Socket:
    """A connected communicator that sorts what arrives: replies by id, events in order."""

    def __init__(self, comm: WebsocketCommunicator):
        self.comm = comm
        self.events: list[dict] = []
        self.counter = 0

    async def send(self, type_: str, *, id_: str | None = None, **fields) -> str:
        self.counter += 1
        id_ = id_ or f"c{self.counter}"
        await self.comm.send_json_to({"type": type_, "id": id_, **fields})
        return id_

    async def next(self) -> dict:
        message = await self.comm.receive_json_from(timeout=RECEIVE_TIMEOUT)
        if message["type"] == "event":
            self.events.append(message["event"])
        return message

    async def reply(self, id_: str | None = None, types=("ack", "error", "pong")) -> dict:
        """Read until the reply with this id (or of these types), keeping events that arrive first."""
        while True:
            message = await self.next()
            if message["type"] in types and (id_ is None or message.get("id") == id_):
                return message

    async def command(self, type_: str, **fields) -> dict:
        return await self.reply(await self.send(type_, **fields))

    async def event(self, kind: str) -> dict:
        for event in self.events:
            if event["kind"] == kind:
                self.events.remove(event)
                return event
        while True:
            message = await self.next()
            if message["type"] == "event" and message["event"]["kind"] == kind:
                self.events.remove(message["event"])
                return message["event"]

    async def snapshot(self) -> dict:
        await self.comm.send_json_to({"type": "sync", "last_seq": None})
        return (await self.reply(types=("snapshot",)))["snapshot"]


async def join(cookie: str, session) -> Socket:
    comm = communicator(cookie, session)
    connected, code = await comm.connect(timeout=RECEIVE_TIMEOUT)
    assert connected, code
    return Socket(comm)
