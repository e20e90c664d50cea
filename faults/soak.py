"""`python -m faults.soak --minutes 30 --clients 200 --circles 25`: a long steady run.

Every person of every circle holds one protocol client (faults.client) on one server process (a
pool of 10 connections, Redis channel layer) for the whole run; each circle's members take turns
posting a message every `--message-every` seconds, and signed-in HTTP requests (home, circle
page, room page, /healthz/) run alongside at `--http-rate` per second. Measured:
- fan-out latency: from a message being posted to each member applying its event, p50/p99;
- the server's RSS, sampled every 10 s: growth from the first sample (all clients connected, after
  a warm-up) to the last;
- errors: error frames, dropped or refused sockets, commands never acknowledged, HTTP answers
  other than 200, and, per circle at the end, anything lost/duplicated/reordered (faults.client).
Targets: fan-out p99 < 1 s, memory growth < 15 %, 0 errors. Needs Postgres and Redis
(DATABASE_URL, REDIS_URL); a fresh database is made and dropped.
"""

import argparse
import asyncio
import http.client
import json
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from faults import rig
from faults.client import LiveClient, check_against_store
from faults.scenarios import check, percentile, result

WARM_UP = 30.0
SAMPLE_EVERY = 10.0


class Soak:
    def __init__(
        self, rooms: list[rig.Room], server: rig.AsgiServer, *, message_every: float, http_rate: float
    ):
        self.rooms, self.server = rooms, server
        self.message_every, self.http_rate = message_every, http_rate
        self.rng = random.Random()
        self.latencies: list[float] = []
        self.http = Counter()
        self.http_latencies: list[float] = []
        self.rss: list[tuple[float, int]] = []
        self.by_room: list[list[LiveClient]] = []
        self.senders: dict[str, LiveClient] = {}
        self.fences: list[int | None] = []  # per room, from the settle at the end

    def _on_event(self, client: LiveClient, event: dict) -> None:
        text = event.get("message", {}).get("text", "")
        sender = self.senders.get(text.split(".", 1)[0])
        if sender is not None and text in sender.posted_at:
            self.latencies.append(time.monotonic() - sender.posted_at[text])

    async def connect(self) -> None:
        for r, room in enumerate(self.rooms):
            members = []
            for i, cookie in enumerate(room.cookies):
                client = LiveClient(f"r{r}p{i}", [self.server], room.session, cookie, on_event=self._on_event)
                self.senders[client.name] = client
                members.append(client)
                client.start()
                await asyncio.sleep(0.05)  # a steady arrival, not a handshake storm
            self.by_room.append(members)
        everyone = [c for members in self.by_room for c in members]
        await asyncio.wait_for(asyncio.gather(*(c.caught_up.wait() for c in everyone)), 300)

    async def _talk(self, members: list[LiveClient]) -> None:
        await asyncio.sleep(self.rng.uniform(0, self.message_every))
        turn = 0
        while True:
            members[turn % len(members)].post()
            turn += 1
            await asyncio.sleep(self.rng.uniform(0.5, 1.5) * self.message_every)

    def _get(self, path: str, cookie: str) -> tuple[int, float]:
        began = time.monotonic()
        conn = http.client.HTTPConnection(rig.HOST, self.server.port, timeout=30)
        try:
            conn.request("GET", path, headers={"Cookie": f"sessionid={cookie}"})
            response = conn.getresponse()
            response.read()
            return response.status, time.monotonic() - began
        finally:
            conn.close()

    async def _browse(self) -> None:
        while True:
            room = self.rng.choice(self.rooms)
            cookie = self.rng.choice(room.cookies)
            path = self.rng.choice(
                ["/", f"/circles/{room.circle}/", f"/circles/sessions/{room.session}/room/", "/healthz/"]
            )
            try:
                status, seconds = await asyncio.to_thread(self._get, path, cookie)
                self.http[status] += 1
                self.http_latencies.append(seconds)
            except OSError:
                self.http["failed"] += 1
            await asyncio.sleep(self.rng.expovariate(self.http_rate))

    async def _sample(self) -> None:
        while True:
            self.rss.append((time.monotonic(), self.server.rss()))
            await asyncio.sleep(SAMPLE_EVERY)

    async def run(self, minutes: float) -> dict:
        began = time.monotonic()
        await self.connect()
        connected_after = time.monotonic() - began
        tasks = [asyncio.create_task(self._talk(m)) for m in self.by_room]
        tasks += [asyncio.create_task(self._browse()) for _ in range(2)]
        # Memory is first read once traffic has warmed the server (imports, templates, pool).
        await asyncio.sleep(WARM_UP)
        tasks.append(asyncio.create_task(self._sample()))
        await asyncio.sleep(minutes * 60)
        for task in tasks:
            task.cancel()
        self.rss.append((time.monotonic(), self.server.rss()))
        self.fences = await asyncio.gather(*(self._settle(m) for m in self.by_room))
        await asyncio.gather(*(c.close() for m in self.by_room for c in m))
        settled = sum(fence is not None for fence in self.fences)
        return {"connect_seconds": round(connected_after, 1), "settled_rooms": settled}

    async def _settle(self, members: list[LiveClient]) -> int | None:
        """The room's fence seq once every member has it, else None."""
        deadline = time.monotonic() + 60
        while any(c.pending for c in members) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        fence = members[0].post()
        while fence not in members[0].acks and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        if fence not in members[0].acks:
            return None
        seq = members[0].acks[fence]["seq"]
        while time.monotonic() < deadline:
            if all((c.last_seq or 0) >= seq for c in members):
                return seq
            await asyncio.sleep(0.2)
        return None


def soak(*, minutes: float, clients: int, circles: int, message_every: float, http_rate: float) -> dict:
    per_circle = max(2, clients // circles)
    with rig.migrated_database() as database, rig.log_folder("faults-soak-") as folder:
        rooms = rig.seed(database, circles=circles, per_circle=per_circle)
        server = rig.AsgiServer(
            database,
            rig.redis_url(),
            prefix=f"soak{random.randrange(10**6)}",
            log=Path(folder) / "server.log",
        )
        try:
            server.start()
            run = Soak(rooms, server, message_every=message_every, http_rate=http_rate)
            figures = asyncio.run(run.run(minutes))
        finally:
            server.stop()
        integrity = Counter()
        for room, members, fence in zip(rooms, run.by_room, run.fences, strict=True):
            # Events after the fence are the closing sockets' own presence.left: nobody can have them.
            stored = rig.stored_events(database, room.session)
            stored = [event for event in stored if fence is None or event["seq"] <= fence]
            integrity.update(check_against_store(members, stored))
    everyone = [c for m in run.by_room for c in m]
    first, last = run.rss[0][1], run.rss[-1][1]
    growth = 100 * (last - first) / first
    p99 = percentile(run.latencies, 0.99)
    http_errors = sum(n for status, n in run.http.items() if status != 200)
    socket_errors = {
        "error_frames": sum(sum(c.errors.values()) for c in everyone),
        "drops": sum(c.drops for c in everyone),
        "refused_connects": sum(c.connect_failures for c in everyone),
        "fatal_closes": sum(1 for c in everyone if c.fatal is not None),
    }
    integrity_errors = sum(
        integrity[k]
        for k in (
            "lost",
            "duplicated",
            "reordered",
            "mismatched",
            "behind_at_end",
            "acked_but_missing",
            "commands_applied_twice",
            "unacknowledged_at_end",
            "refused_commands",
        )
    )
    errors = sum(socket_errors.values()) + http_errors + integrity_errors
    figures.update(
        deliveries=len(run.latencies),
        fanout_p50_ms=round(1000 * statistics.median(run.latencies), 1) if run.latencies else None,
        fanout_p99_ms=round(1000 * p99, 1) if p99 is not None else None,
        fanout_max_ms=round(1000 * max(run.latencies), 1) if run.latencies else None,
        messages=int(integrity["acked"]),
        http_requests=sum(run.http.values()),
        http_statuses=dict(run.http),
        http_p95_ms=round(1000 * percentile(run.http_latencies, 0.95), 1) if run.http_latencies else None,
        rss_first_mb=round(first / 2**20, 1),
        rss_last_mb=round(last / 2**20, 1),
        rss_max_mb=round(max(r for _, r in run.rss) / 2**20, 1),
        rss_growth_pct=round(growth, 1),
        **socket_errors,
        integrity_errors=integrity_errors,
        integrity_figures={k: v for k, v in integrity.items() if v and k not in ("acked", "stored_events")},
    )
    checks = [
        check("errors (socket, HTTP, integrity)", errors, "0", errors == 0),
        check("fan-out p99", figures["fanout_p99_ms"], "< 1000 ms", p99 is not None and p99 < 1, timing=True),
        check(
            "server RSS growth, first to last sample",
            figures["rss_growth_pct"],
            "< 15 %",
            growth < 15,
            timing=True,
        ),
    ]
    params = {
        "minutes": minutes,
        "clients": per_circle * circles,
        "circles": circles,
        "message_every_s": message_every,
        "http_rate_per_s": http_rate,
    }
    return result("soak", params, figures, checks)


def main(argv: list[str]) -> int:
    from faults.run import describe

    parser = argparse.ArgumentParser(prog="python -m faults.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--circles", type=int, default=25)
    parser.add_argument(
        "--message-every", type=float, default=3.0, help="seconds between messages per circle"
    )
    parser.add_argument(
        "--http-rate", type=float, default=2.0, help="HTTP requests per second per browser (2 run)"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    began = time.monotonic()
    outcome = soak(
        minutes=args.minutes,
        clients=args.clients,
        circles=args.circles,
        message_every=args.message_every,
        http_rate=args.http_rate,
    )
    outcome["seconds"] = round(time.monotonic() - began, 1)
    print(describe(outcome) + f"\n   took {outcome['seconds']} s", flush=True)
    if args.json:
        args.json.write_text(json.dumps(outcome, indent=2) + "\n")
    return 0 if all(c["met"] for c in outcome["checks"]) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
