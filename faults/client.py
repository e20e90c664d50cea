"""A live-room client that follows docs/live-protocol.md to the letter, and remembers everything.

Like room.js it (re)connects with backoff (0.5 s doubling to 15 s, each wait between half and all of
the ceiling), sends `sync` with the last seq it applied, resends every command without a reply
under the same id, applies events strictly in seq order, holds one past a gap and asks for the
missing ones. Unlike room.js it keeps the whole applied sequence, every ack and the timings, so a
run can be checked against the events the server stored.

On a drop it moves to the next server in its list, as a load balancer would send a reconnect to a
server that is up.
"""

import asyncio
import json
import random
import time
from collections import Counter

import websockets

# A refused or closed handshake of these codes will not get better by retrying.
FATAL_CLOSE = {4401, 4403, 4404, 4410}
PING_EVERY = 25.0
SYNC_RETRY = 2.0


class LiveClient:
    def __init__(
        self,
        name: str,
        servers: list,
        session_id: int,
        cookie: str,
        *,
        start_at: int = 0,
        rng: random.Random | None = None,
        on_event=None,
    ):
        self.name = name
        self.servers = servers
        self.session_id = session_id
        self.cookie = cookie
        self.server_index = start_at
        self.rng = rng or random.Random()
        self.on_event = on_event
        self.ws = None
        self.last_seq: int | None = None
        self.applied: list[dict] = []
        self.snapshots: list[int] = []
        self.held: dict[int, dict] = {}
        self.syncing = False
        self.sync_sent_at = 0.0
        self.pending: dict[str, dict] = {}
        self.acks: dict[str, dict] = {}
        self.extra_acks = 0
        self.errors: Counter[str] = Counter()
        self.failed: dict[str, str] = {}
        self.sent_log: list[tuple[float, str]] = []
        self.posted_at: dict[str, float] = {}
        self.broadcasts: list[float] = []
        self.resyncs: list[float] = []
        self.connect_failures = 0
        self.drops = 0
        self.dropped_at: float | None = None
        self.resync_due = False
        self.fatal: int | None = None
        self.stopping = False
        self.counter = 0
        self.caught_up = asyncio.Event()
        self._task: asyncio.Task | None = None

    # --- running -----------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        self.stopping = True
        if self.ws is not None:
            await self.ws.close()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 10)
            except TimeoutError:
                self._task.cancel()

    @property
    def connected(self) -> bool:
        return self.ws is not None and self.dropped_at is None

    async def _run(self) -> None:
        attempt = 0
        while not self.stopping:
            server = self.servers[self.server_index % len(self.servers)]
            opened = False
            try:
                async with websockets.connect(
                    server.ws_url(self.session_id),
                    origin=server.origin,
                    additional_headers={"Cookie": f"sessionid={self.cookie}"},
                    open_timeout=10,
                    max_queue=None,
                ) as ws:
                    opened = True
                    attempt = 0
                    self.ws = ws
                    await self._on_open(ws)
                    pinger = asyncio.create_task(self._ping(ws))
                    try:
                        async for frame in ws:
                            await self._on_frame(ws, frame)
                    finally:
                        pinger.cancel()
                    if ws.close_code in FATAL_CLOSE:
                        self.fatal = ws.close_code
            except asyncio.CancelledError:
                raise
            except websockets.exceptions.ConnectionClosed as closed:
                if closed.rcvd is not None and closed.rcvd.code in FATAL_CLOSE:
                    self.fatal = closed.rcvd.code
            except Exception:  # a refused connection, a failed handshake (500), a timeout: all retried
                if not opened:
                    self.connect_failures += 1
            self.ws = None
            if self.stopping or self.fatal is not None:
                return
            if opened:
                self.drops += 1
                self.dropped_at = self.dropped_at or time.monotonic()
                self.caught_up.clear()
            # The next attempt goes to the next server, as a load balancer would.
            self.server_index += 1
            ceiling = min(15.0, 0.5 * 2**attempt)
            attempt += 1
            await asyncio.sleep(self.rng.uniform(ceiling / 2, ceiling))

    async def _on_open(self, ws) -> None:
        self.syncing = True
        self.resync_due = self.dropped_at is not None
        await ws.send(json.dumps({"type": "sync", "last_seq": self.last_seq}))
        for frame in list(self.pending.values()):
            await self._send(ws, frame)

    async def _ping(self, ws) -> None:
        while True:
            await asyncio.sleep(PING_EVERY)
            await ws.send(json.dumps({"type": "ping"}))

    async def _send(self, ws, frame: dict) -> None:
        self.sent_log.append((time.monotonic(), frame["id"]))
        try:
            await ws.send(json.dumps(frame))
        except websockets.exceptions.ConnectionClosed:
            pass  # resent on the next connection; the reader notices the drop

    # --- commands ----------------------------------------------------------------------------

    def post(self) -> str:
        """Queue a message.post with a fresh id and send it now if connected. Returns the id."""
        self.counter += 1
        command_id = f"{self.name}.{self.counter}"
        frame = {"type": "message.post", "id": command_id, "text": command_id}
        self.pending[command_id] = frame
        self.posted_at[command_id] = time.monotonic()
        if self.ws is not None:
            asyncio.create_task(self._send(self.ws, frame))
        return command_id

    async def _retry_later(self, command_id: str) -> None:
        await asyncio.sleep(1.0)
        frame = self.pending.get(command_id)
        if frame is not None and self.ws is not None:
            await self._send(self.ws, frame)

    # --- receiving ---------------------------------------------------------------------------

    async def _on_frame(self, ws, frame: str) -> None:
        message = json.loads(frame)
        kind = message["type"]
        if kind == "event":
            self.broadcasts.append(time.monotonic())
            await self._apply(ws, message["event"])
        elif kind == "events":
            for event in message["events"]:
                await self._apply(ws, event)
            self._synced()
        elif kind == "snapshot":
            self._take_snapshot(message["snapshot"])
            self._synced()
        elif kind == "pong":
            if self.last_seq is not None and message["seq"] > self.last_seq and not self.held:
                # A bell we never heard (room.js does the same): ask for what we missed.
                self.syncing = True
                self.sync_sent_at = time.monotonic()
                await ws.send(json.dumps({"type": "sync", "last_seq": self.last_seq}))
        elif kind == "ack":
            if message["id"] in self.acks:
                self.extra_acks += 1
            else:
                self.acks[message["id"]] = {
                    "seq": message["seq"],
                    "duplicate": message["duplicate"],
                    "at": time.monotonic(),
                }
            self.pending.pop(message["id"], None)
        elif kind == "error":
            self.errors[message["code"]] += 1
            if message["code"] == "rate_limited":
                asyncio.create_task(self._retry_later(message["id"]))
            elif message["id"] in self.pending:
                self.failed[message["id"]] = message["code"]
                del self.pending[message["id"]]

    def _synced(self) -> None:
        self.syncing = False
        self._drain()
        if self.resync_due:
            self.resyncs.append(time.monotonic() - self.dropped_at)
            self.resync_due = False
        self.dropped_at = None
        self.caught_up.set()

    def _take_snapshot(self, snapshot: dict) -> None:
        if self.last_seq is None or snapshot["seq"] > self.last_seq:
            self.last_seq = snapshot["seq"]
            self.snapshots.append(snapshot["seq"])

    async def _apply(self, ws, event: dict) -> None:
        if self.last_seq is None or event["seq"] <= self.last_seq:
            return  # before our first snapshot, or already applied
        self.held[event["seq"]] = event
        self._drain()
        if self.held and (not self.syncing or time.monotonic() - self.sync_sent_at > SYNC_RETRY):
            # A gap: ask for what is missing; the held events follow once it is filled. Like
            # room.js, ask again on a later event if no answer came (a refused or lost sync).
            self.syncing = True
            self.sync_sent_at = time.monotonic()
            await ws.send(json.dumps({"type": "sync", "last_seq": self.last_seq}))

    def _drain(self) -> None:
        for seq in sorted(self.held):
            if seq <= self.last_seq:
                del self.held[seq]
            elif seq == self.last_seq + 1:
                event = self.held.pop(seq)
                self.applied.append(event)
                self.last_seq = seq
                if self.on_event is not None:
                    self.on_event(self, event)
            else:
                break


def check_against_store(clients: list[LiveClient], stored: list[dict]) -> dict:
    """Compare what every client applied, and every command acknowledged, with the stored events.

    lost: a seq the client should have applied (after its first snapshot, up to the last stored
    seq, outside any later snapshot's jump) but did not. duplicated: a seq applied twice.
    reordered: an applied seq not one more than the one before (other than a snapshot jump).
    mismatched: an applied event that differs from the stored row. The command checks use the
    unique text of each message.post.
    """
    by_seq = {row["seq"]: row for row in stored}
    last = stored[-1]["seq"] if stored else 0
    texts = Counter(row["text"] for row in stored if row["kind"] == "message.posted")
    figures = Counter(dict.fromkeys(("lost", "duplicated", "reordered", "mismatched", "behind_at_end"), 0))
    for client in clients:
        seqs = [event["seq"] for event in client.applied]
        jumps = set(client.snapshots)
        # A later snapshot replaces the events before it (the client was too far behind), so
        # those count as skipped, not lost; after the last snapshot every stored event is due.
        # Gaps before a later snapshot show up as `reordered` (an applied seq not following on).
        applied = set(seqs)
        for start, following in zip(client.snapshots, client.snapshots[1:], strict=False):
            figures["skipped_by_snapshot"] += sum(
                1 for n in range(start + 1, following + 1) if n not in applied
            )
        if client.snapshots:
            figures["lost"] += sum(1 for n in range(client.snapshots[-1] + 1, last + 1) if n not in applied)
        figures["duplicated"] += len(seqs) - len(set(seqs))
        previous = client.snapshots[0] if client.snapshots else 0
        for seq in seqs:
            if seq != previous + 1 and seq - 1 not in jumps:
                figures["reordered"] += 1
            previous = seq
        for event in client.applied:
            row = by_seq.get(event["seq"])
            text = event.get("message", {}).get("text", "")
            same = row is not None and (row["kind"], row["actor"], row["patch"], row["text"]) == (
                event["kind"],
                event["actor"],
                event["patch"],
                text,
            )
            figures["mismatched"] += not same
        figures["snapshots_after_first"] += max(0, len(client.snapshots) - 1)
        figures["behind_at_end"] += last - (client.last_seq or 0)
        # Every message.post carries its id as its text, so a command's event is found by its id.
        figures["acked_but_missing"] += sum(1 for command_id in client.acks if texts[command_id] == 0)
        figures["acked"] += len(client.acks)
        figures["unacknowledged_at_end"] += len(client.pending)
        figures["refused_commands"] += len(client.failed)
        for code, count in client.errors.items():
            figures[f"error_frames_{code}"] += count
    figures["commands_applied_twice"] = sum(1 for count in texts.values() if count > 1)
    figures["stored_events"] = len(stored)
    return dict(figures)
