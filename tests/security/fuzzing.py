"""Hypothesis settings and a socket driver shared by the fuzz and matrix tests."""

import asyncio
import json

from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from config.asgi import application

TIMEOUT = 10


def fuzz_settings(examples: int):
    """Fixed examples (derandomize) so CI runs the same inputs every time, nothing stored between
    runs, no deadline on a loaded machine. The function-scoped fixtures are safe to share between
    examples: each example rolls its own changes back (forms) or works on one long-lived socket."""
    return hypothesis_settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )


class FuzzSocket:
    """One communicator driven from a private event loop, so Hypothesis's synchronous examples
    can share it. Counts what was sent and what came back."""

    def __init__(self, path: str, cookie: str):
        self.loop = asyncio.new_event_loop()
        headers = [
            (b"origin", b"http://testserver"),
            (b"host", b"testserver"),
            (b"cookie", f"sessionid={cookie}".encode()),
        ]
        self.comm = WebsocketCommunicator(application, path, headers=headers)
        self.sent = 0
        self.replies: dict[str, int] = {}

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    def connect(self) -> None:
        connected, code = self.run(self.comm.connect(timeout=TIMEOUT))
        assert connected, code

    async def _reply(self) -> dict:
        """The next frame that answers a client frame; events and badge pushes are passed over."""
        while True:
            output = await self.comm.receive_output(timeout=TIMEOUT)
            assert output["type"] == "websocket.send", f"the socket closed: {output}"
            message = json.loads(output["text"])
            if message.get("type") not in ("event", "badge"):
                return message

    async def _exchange(self, batch) -> None:
        for kind, payload in batch:
            # send_input, not send_to: send_to refuses an empty frame, which a client can send.
            await self.comm.send_input({"type": "websocket.receive", kind: payload})
            self.sent += 1
            reply = await self._reply()
            key = reply.get("code") or reply.get("type")
            self.replies[key] = self.replies.get(key, 0) + 1

    def exchange(self, batch) -> None:
        self.run(self._exchange(batch))

    def ping(self) -> dict:
        async def ping():
            await self.comm.send_to(text_data=json.dumps({"type": "ping", "id": "last"}))
            return await self._reply()

        return self.run(ping())

    def close(self) -> None:
        self.run(self.comm.disconnect())
        self.loop.close()
