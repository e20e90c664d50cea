"""New perspectives reach open thread pages through the channel layer, only for members."""

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client

from config.asgi import application
from reflections import services
from reflections.consumers import NOT_A_MEMBER
from tests.reflections.conftest import leave

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]
TIMEOUT = 20  # a bound on waiting, not a timing assertion: the test machine is shared


def cookie_for(user) -> str:
    client = Client()
    client.force_login(user, backend="accounts.backends.UserBackend")
    return client.cookies["sessionid"].value


def socket(cookie: str | None, thread, origin: bytes = b"http://testserver") -> WebsocketCommunicator:
    headers = [(b"origin", origin), (b"host", b"testserver")]
    if cookie:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    return WebsocketCommunicator(application, f"/ws/threads/{thread.pk}/", headers=headers)


async def sync(fn, *args, **kwargs):
    from asgiref.sync import sync_to_async

    return await sync_to_async(fn, thread_sensitive=True)(*args, **kwargs)


async def test_a_member_hears_about_a_new_perspective(circle_people, thread):
    communicator = socket(await sync(cookie_for, circle_people.bea), thread)
    connected, _ = await communicator.connect()
    try:
        assert connected
        reply = await sync(
            services.reply_create, author=circle_people.facilitator, thread=thread, body="Live one"
        )
        assert await communicator.receive_json_from(timeout=TIMEOUT) == {
            "type": "reply.created",
            "reply": reply.pk,
        }
    finally:
        await communicator.disconnect()


@pytest.mark.parametrize("who", ["outsider", "admin", "manager", "other_facilitator"])
async def test_people_outside_the_circle_are_refused(who, circle_people, thread):
    communicator = socket(await sync(cookie_for, getattr(circle_people, who)), thread)
    connected, code = await communicator.connect()
    try:
        assert not connected and code == NOT_A_MEMBER
    finally:
        await communicator.disconnect()


async def test_anonymous_visitors_are_refused(circle_people, thread):
    communicator = socket(None, thread)
    connected, _ = await communicator.connect()
    assert not connected
    await communicator.disconnect()


async def test_a_foreign_origin_is_refused(circle_people, thread):
    communicator = socket(await sync(cookie_for, circle_people.bea), thread, origin=b"https://evil.example")
    connected, _ = await communicator.connect()
    assert not connected
    await communicator.disconnect()


async def test_bad_messages_get_an_error_not_a_dropped_socket(circle_people, thread):
    communicator = socket(await sync(cookie_for, circle_people.bea), thread)
    await communicator.connect()
    try:
        await communicator.send_to(text_data="not json")
        assert (await communicator.receive_json_from(timeout=TIMEOUT))["type"] == "error"
        await communicator.send_json_to({"type": "launch"})
        assert (await communicator.receive_json_from(timeout=TIMEOUT))["type"] == "error"
        await communicator.send_json_to({"type": "ping"})
        assert await communicator.receive_json_from(timeout=TIMEOUT) == {"type": "pong"}
    finally:
        await communicator.disconnect()


async def test_someone_who_leaves_the_circle_stops_hearing(circle_people, thread):
    communicator = socket(await sync(cookie_for, circle_people.bea), thread)
    await communicator.connect()
    try:
        await sync(leave, circle_people.bea, circle_people.circle)
        await sync(
            services.reply_create, author=circle_people.facilitator, thread=thread, body="After leaving"
        )
        output = await communicator.receive_output(timeout=TIMEOUT)
        assert output == {"type": "websocket.close", "code": NOT_A_MEMBER}
    finally:
        await communicator.disconnect()


async def test_a_message_from_someone_who_left_closes_their_socket(circle_people, thread):
    communicator = socket(await sync(cookie_for, circle_people.bea), thread)
    await communicator.connect()
    try:
        await sync(leave, circle_people.bea, circle_people.circle)
        await communicator.send_json_to({"type": "ping"})
        assert await communicator.receive_output(timeout=TIMEOUT) == {
            "type": "websocket.close",
            "code": NOT_A_MEMBER,
        }
    finally:
        await communicator.disconnect()
