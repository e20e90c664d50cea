"""The live-room faults: a killed ASGI server, a restarted Redis, a restarted Postgres.

Each scenario builds its own world (a throwaway database, its own channel-layer prefix, servers
it starts itself), drives a session with protocol clients that keep posting messages, injects
the fault, lets traffic settle, and compares every client's applied sequence and every
acknowledged command with the events Postgres stored. It returns a result (see `result`).
"""

import asyncio
import random
import secrets
import statistics
import time
from pathlib import Path

from faults import rig
from faults.client import LiveClient, check_against_store


def check(what: str, value, target: str, met: bool, *, timing: bool = False) -> dict:
    """One line of a result. `timing` checks are reported, never asserted by the test suite."""
    return {"what": what, "value": value, "target": target, "met": bool(met), "timing": timing}


def result(fault: str, params: dict, figures: dict, checks: list[dict]) -> dict:
    return {"fault": fault, "params": params, "figures": figures, "checks": checks}


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# What every live fault checks against the store: each must be 0 (faults.client explains each).
INTEGRITY = {
    "events lost": ("lost",),
    "events duplicated": ("duplicated",),
    "events reordered": ("reordered",),
    "applied events differing from stored": ("mismatched",),
    "clients behind the stored events at the end": ("behind_at_end",),
    "acknowledged commands missing from the store": ("acked_but_missing",),
    "commands applied twice": ("commands_applied_twice",),
    "commands never acknowledged": ("unacknowledged_at_end", "refused_commands"),
}


def integrity_checks(figures: dict) -> list[dict]:
    counts = {what: sum(figures.get(key, 0) for key in keys) for what, keys in INTEGRITY.items()}
    return [check(what, count, "0", count == 0) for what, count in counts.items()]


class Drive:
    """Protocol clients in one room, each posting a message every `every` seconds (jittered)."""

    def __init__(self, room: rig.Room, servers: list, *, clients: int, every: float, seed: int):
        self.rng = random.Random(seed)
        self.every = every
        self.fence_seq: int | None = None  # set by settle()
        self.clients = [
            LiveClient(
                f"c{i}",
                servers,
                room.session,
                room.cookies[i],
                start_at=i,
                rng=random.Random(seed * 1000 + i),
            )
            for i in range(clients)
        ]
        self.traffic: list[asyncio.Task] = []

    async def start(self, timeout: float = 60) -> None:
        for client in self.clients:
            client.start()
        await asyncio.wait_for(asyncio.gather(*(c.caught_up.wait() for c in self.clients)), timeout)
        self.traffic = [asyncio.create_task(self._post(c)) for c in self.clients]

    async def _post(self, client: LiveClient) -> None:
        await asyncio.sleep(self.rng.uniform(0, self.every))
        while True:
            client.post()
            await asyncio.sleep(self.rng.uniform(0.5 * self.every, 1.5 * self.every))

    async def all_connected(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(c.connected and c.caught_up.is_set() for c in self.clients):
                return True
            await asyncio.sleep(0.05)
        return False

    async def settle(self, timeout: float = 120) -> bool:
        """Stop posting, wait for every reply, then post one fence message and wait until every
        client has it: a client that missed a bell only learns of it from a later event."""
        for task in self.traffic:
            task.cancel()
        deadline = time.monotonic() + timeout
        while any(c.pending for c in self.clients) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        fence = self.clients[0].post()
        while fence not in self.clients[0].acks and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        if fence not in self.clients[0].acks:
            return False
        target = self.fence_seq = self.clients[0].acks[fence]["seq"]
        while time.monotonic() < deadline:
            if all((c.last_seq or 0) >= target for c in self.clients):
                return True
            await asyncio.sleep(0.1)
        return False

    async def close(self) -> None:
        for task in self.traffic:
            task.cancel()
        await asyncio.gather(*(c.close() for c in self.clients))

    def verify(self, database: str, session_id: int) -> dict:
        """Events after the fence are the teardown's own (a closing socket's presence.left, stored
        once no client listens): no client can have them, so they are not counted as lost."""
        stored = rig.stored_events(database, session_id)
        if self.fence_seq is not None:
            stored = [row for row in stored if row["seq"] <= self.fence_seq]
        return check_against_store(self.clients, stored)

    def resyncs(self) -> list[float]:
        return [seconds for c in self.clients for seconds in c.resyncs]


def _prefix() -> str:
    return f"faults{secrets.token_hex(3)}"


# --- the ASGI server killed ----------------------------------------------------------------------


def asgi_kill(*, short: bool = False, seed: int | None = None) -> dict:
    """Two ASGI server processes behind a client-side "load balancer"; one is SIGKILLed, restarted, then
    the other, `kills` times in all. Every kill after the first hits every client."""
    kills, clients = (3, 6) if short else (20, 12)
    seed = seed if seed is not None else random.randrange(10**6)
    with rig.throwaway_database() as database, rig.log_folder("faults-asgi-") as folder:
        room = rig.template_room()
        prefix = _prefix()
        servers = [
            rig.AsgiServer(database, rig.redis_url(), prefix=prefix, log=Path(folder) / f"server{n}.log")
            for n in (0, 1)
        ]
        try:
            for server in servers:
                server.start(wait=False)
            for server in servers:
                server.wait_listening()
            figures = asyncio.run(_asgi_kill(room, servers, kills=kills, clients=clients, seed=seed))
        finally:
            for server in servers:
                server.stop()
        figures.update(figures.pop("_drive").verify(database, room.session))
    resyncs = figures.pop("resync_seconds")
    p95 = percentile(resyncs, 0.95)
    figures.update(
        resyncs=len(resyncs),
        resync_p50_s=round(statistics.median(resyncs), 3) if resyncs else None,
        resync_p95_s=round(p95, 3) if p95 is not None else None,
        resync_max_s=round(max(resyncs), 3) if resyncs else None,
    )
    checks = [
        *integrity_checks(figures),
        check(
            "every client resynced after every kill that hit it",
            figures["resyncs"],
            f"= drops ({figures['drops']})",
            figures["resyncs"] == figures["drops"],
        ),
        check(
            "resync p95 (drop to caught up)",
            figures["resync_p95_s"],
            "<= 3 s",
            p95 is not None and p95 <= 3.0,
            timing=True,
        ),
    ]
    return result(
        "asgi_kill", {"kills": kills, "clients": clients, "servers": 2, "seed": seed}, figures, checks
    )


async def _asgi_kill(room, servers, *, kills: int, clients: int, seed: int) -> dict:
    # A message every ~4 s from each of 12 people is a busy room (3 commands a second, all taking
    # the room's lock); faster, a loaded 2-core machine falls behind and the backlog, not the
    # fault, decides the figures.
    drive = Drive(room, servers, clients=clients, every=4.0, seed=seed)
    await drive.start()
    rng = random.Random(seed)
    restart_seconds = []
    try:
        for kill in range(kills):
            # Traffic flows for a moment, then the server most clients are on dies mid-stream.
            await asyncio.sleep(rng.uniform(1.0, 2.5))
            on = [sum(1 for c in drive.clients if c.connected and c.server_index % 2 == n) for n in (0, 1)]
            victim = servers[0 if on[0] >= on[1] else 1]
            victim.kill()
            began = time.monotonic()
            await asyncio.to_thread(victim.start)
            restart_seconds.append(time.monotonic() - began)
            if not await drive.all_connected(60):
                raise RuntimeError(f"clients did not all reconnect after kill {kill + 1}")
        settled = await drive.settle()
    finally:
        await drive.close()
    return {
        "settled": settled,
        "drops": sum(c.drops for c in drive.clients),
        "resync_seconds": drive.resyncs(),
        "restart_p50_s": round(statistics.median(restart_seconds), 2),
        "_drive": drive,
    }


# --- Redis restarted -----------------------------------------------------------------------------


def redis_restart(*, short: bool = False, seed: int | None = None, outage: float = 2.0) -> dict:
    """A private redis-server (no persistence, as in docker-compose.yml) is killed and started again
    on the same port while one server serves the room. Every client must be live again (receiving
    new events as they happen, not only on request) within 10 s, with nothing lost."""
    clients = 6 if short else 12
    seed = seed if seed is not None else random.randrange(10**6)
    with rig.throwaway_database() as database, rig.log_folder("faults-redis-") as folder:
        room = rig.template_room()
        redis = rig.RedisServer(Path(folder) / "redis.log").start()
        server = rig.AsgiServer(database, redis.url, prefix=_prefix(), log=Path(folder) / "server.log")
        try:
            server.start()
            figures = asyncio.run(
                _redis_restart(room, server, redis, clients=clients, outage=outage, seed=seed)
            )
        finally:
            server.stop()
            redis.kill()
        drive = figures.pop("_drive")
        figures.update(drive.verify(database, room.session))
    live = figures.pop("live_again_seconds")
    never = sum(1 for seconds in live if seconds is None)
    slowest = max((s for s in live if s is not None), default=None)
    figures.update(clients_never_live_again=never, live_again_max_s=round(slowest, 2) if slowest else None)
    checks = [
        check("clients never live again", never, "0", never == 0),
        *integrity_checks(figures),
        check(
            "slowest client live again after Redis is back",
            figures["live_again_max_s"],
            "<= 10 s",
            never == 0 and slowest is not None and slowest <= 10,
            timing=True,
        ),
    ]
    params = {"clients": clients, "outage_s": outage, "seed": seed}
    return result("redis_restart", params, figures, checks)


async def _redis_restart(room, server, redis, *, clients: int, outage: float, seed: int) -> dict:
    drive = Drive(room, [server], clients=clients, every=0.5, seed=seed)
    await drive.start()
    try:
        await asyncio.sleep(3)
        redis.kill()
        await asyncio.sleep(outage)
        await asyncio.to_thread(redis.start)
        back = time.monotonic()
        # Live again = a new event arrives as a broadcast, the way a page learns of a change.
        deadline = back + 30
        while time.monotonic() < deadline:
            if all(any(t > back for t in c.broadcasts) for c in drive.clients):
                break
            await asyncio.sleep(0.1)
        live = [next((t - back for t in c.broadcasts if t > back), None) for c in drive.clients]
        await asyncio.sleep(2)
        settled = await drive.settle()
    finally:
        await drive.close()
    return {
        "settled": settled,
        "drops": sum(c.drops for c in drive.clients),
        "live_again_seconds": live,
        "_drive": drive,
    }


# --- Postgres restarted --------------------------------------------------------------------------


def postgres_restart(*, short: bool = False, seed: int | None = None) -> dict:
    """A private Postgres cluster is crashed (immediate stop) and started again while clients keep
    posting. Nothing may be acknowledged while it is down, and every acknowledged command's event
    must be there afterwards."""
    clients = 6 if short else 12
    outage = 5.0
    seed = seed if seed is not None else random.randrange(10**6)
    cluster = rig.PostgresCluster()
    with rig.log_folder("faults-pg-") as folder:
        try:
            cluster.create()
            with rig.throwaway_database(cluster.url()) as database:
                room = rig.template_room()
                server = rig.AsgiServer(
                    database, rig.redis_url(), prefix=_prefix(), log=Path(folder) / "server.log"
                )
                try:
                    server.start()
                    figures = asyncio.run(
                        _postgres_restart(room, server, cluster, clients=clients, outage=outage, seed=seed)
                    )
                finally:
                    server.stop()
                drive = figures.pop("_drive")
                figures.update(drive.verify(database, room.session))
        finally:
            cluster.destroy()
    checks = [
        check(
            "commands acknowledged while Postgres was down",
            figures["acked_during_outage"],
            "0",
            figures["acked_during_outage"] == 0,
        ),
        check(
            "commands sent while Postgres was down",
            figures["sent_during_outage"],
            "> 0",
            figures["sent_during_outage"] > 0,
        ),
        *integrity_checks(figures),
    ]
    params = {"clients": clients, "outage_s": outage, "seed": seed}
    return result("postgres_restart", params, figures, checks)


async def _postgres_restart(room, server, cluster, *, clients: int, outage: float, seed: int) -> dict:
    drive = Drive(room, [server], clients=clients, every=0.7, seed=seed)
    await drive.start()
    try:
        await asyncio.sleep(3)
        await asyncio.to_thread(cluster.crash)
        down = time.monotonic()
        await asyncio.sleep(outage)
        up = time.monotonic()
        await asyncio.to_thread(cluster.start)
        recovered = await drive.all_connected(60)
        await asyncio.sleep(2)
        settled = await drive.settle()
    finally:
        await drive.close()
    acked_during = sum(1 for c in drive.clients for ack in c.acks.values() if down <= ack["at"] <= up)
    sent_during = sum(1 for c in drive.clients for at, _ in c.sent_log if down <= at <= up)
    queued_during = sum(1 for c in drive.clients for at in c.posted_at.values() if down <= at <= up)
    return {
        "settled": settled,
        "recovered": recovered,
        "drops": sum(c.drops for c in drive.clients),
        "acked_during_outage": acked_during,
        "sent_during_outage": sent_during,
        "posted_during_outage": queued_during,
        "connect_failures": sum(c.connect_failures for c in drive.clients),
        "_drive": drive,
    }
