"""Live room fan-out: N rooms x 8 sockets against a minimal raw `websockets` broadcast server.

Both servers run as their own process in the same run, measured the same way:
- saturation: every room keeps one message in flight (the next goes when the sender sees its own
  message come back); messages per second over the phase. Ours refuses more than 5 messages a
  second per socket (bursts of 20): a refused message is resent after a second with the same id,
  as the room's client does, and the resends are counted;
- latency at half of our saturation: open-loop sends at that rate spread over the rooms, every
  delivery timed from send to receipt (p50/p99), delivered/sent counted, and the server's CPU
  seconds (/proc utime+stime) divided by deliveries;
- memory per idle socket: server RSS with every socket open minus RSS before, per socket.

Ours goes the whole way: message.post over the socket, one transaction writing the event,
group_send on commit through Redis, each consumer forwarding to its tab. It is served as
docker-compose serves the web process (config.server, a Postgres pool of DB_POOL_MAX_SIZE or 10). Needs
Postgres and Redis (DATABASE_URL / REDIS_URL or the loopback defaults); a fresh database is made
and dropped. BENCH_LIVE_SECONDS sets each phase's length, BENCH_LIVE_RATE a fixed rate for the
latency phase (to compare two versions at the same load). Run alone with
`python -m bench.run live`.
"""

import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import websockets

from config.server import command as server_command

ROOT = Path(__file__).resolve().parent.parent
ROOMS = int(os.environ.get("BENCH_LIVE_ROOMS", "8"))
PER_ROOM = 8
PHASE_SECONDS = float(os.environ.get("BENCH_LIVE_SECONDS", "15"))
# The latency phase's rate in messages/s; by default half of our measured saturation. A fixed
# rate compares two versions at the same load when their saturations differ.
FIXED_RATE = float(os.environ.get("BENCH_LIVE_RATE") or 0)
ADMIN_URL = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

RAW_SERVER = """
import asyncio, sys, websockets
rooms = {}
async def handler(ws):
    members = rooms.setdefault(ws.request.path, set())
    members.add(ws)
    try:
        async for message in ws:
            websockets.broadcast(members, message)
    finally:
        members.discard(ws)
async def main():
    async with websockets.serve(handler, "127.0.0.1", int(sys.argv[1])):
        await asyncio.Future()
asyncio.run(main())
"""

SEED = """
import json, sys
from datetime import timedelta
import django
django.setup()
from django.test import Client
from django.utils import timezone
from accounts.models import User
from circles.models import CircleSession
from tests.factories import make_circle, make_org

org = make_org("Bench Trust")
rooms = []
for r in range(int(sys.argv[1])):
    people = [User.objects.create_user(f"p{r}-{i}@bench.example", None, display_name=f"P{r}-{i}",
              organisation=org) for i in range(int(sys.argv[2]))]
    circle = make_circle(people[0], name=f"Circle {r}", members=people[1:])
    now = timezone.now()
    session = CircleSession.objects.create(circle=circle, occurrence_date=now.date(), starts_at=now,
                                           ends_at=now + timedelta(hours=2), facilitator=people[0])
    cookies = []
    for person in people:
        client = Client()
        client.force_login(person, backend="accounts.backends.UserBackend")
        cookies.append(client.cookies["sessionid"].value)
    rooms.append({"session": session.pk, "cookies": cookies})
print(json.dumps(rooms))
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(process: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class Target:
    """One server under test and how to speak to it."""

    def __init__(self, name, process, port, rooms, ours):
        self.name, self.process, self.port, self.rooms, self.ours = name, process, port, rooms, ours

    def url(self, room) -> str:
        if self.ours:
            return f"ws://127.0.0.1:{self.port}/ws/circles/sessions/{room['session']}/room/"
        return f"ws://127.0.0.1:{self.port}/room/{room['session']}"

    def outgoing(self, stamp: str, client_id: str) -> str:
        if self.ours:
            return json.dumps({"type": "message.post", "id": client_id, "text": stamp})
        return json.dumps({"t": stamp})

    def read(self, frame: str) -> tuple[str | None, str | None]:
        """The stamp of a delivered message, and the id of a message refused as rate-limited."""
        message = json.loads(frame)
        if not self.ours:
            return message["t"], None
        if message.get("type") == "event" and message["event"]["kind"] == "message.posted":
            return message["event"]["message"]["text"], None
        if message.get("type") == "error" and message.get("code") == "rate_limited":
            return None, message.get("id")
        return None, None


class Run:
    def __init__(self, target: Target):
        self.target = target
        self.latencies: list[float] = []
        self.delivered = 0
        self.echoes: dict[str, asyncio.Event] = {}
        self.refusals: dict[str, asyncio.Event] = {}
        self.resent = 0
        # Only deliveries of the current phase's messages count (late ones from before do not).
        self.phase = ":sat"

    async def listen(self, ws):
        async for frame in ws:
            stamp, refused = self.target.read(frame)
            if refused in self.refusals:
                self.refusals[refused].set()
            if stamp is None:
                continue
            if self.phase not in stamp:
                continue
            self.delivered += 1
            self.latencies.append(time.time() - float(stamp.split(":")[0]))
            waiter = self.echoes.get(stamp)
            if waiter is not None:
                waiter.set()

    async def connect_all(self, rooms):
        sockets = []
        for room in rooms:
            members = []
            for cookie in room["cookies"]:
                ws = await websockets.connect(
                    self.target.url(room),
                    origin=f"http://127.0.0.1:{self.target.port}",
                    additional_headers={"Cookie": f"sessionid={cookie}"},
                    open_timeout=60,
                    max_queue=None,
                )
                members.append(ws)
            sockets.append(members)
        return sockets

    async def saturate(self, sockets, seconds: float) -> float:
        sent = 0
        stop = time.monotonic() + seconds

        async def drive(members):
            nonlocal sent
            n = 0
            while time.monotonic() < stop:
                n += 1
                stamp = f"{time.time()}:sat:{secrets.token_hex(4)}"
                client_id = secrets.token_hex(6)
                self.echoes[stamp] = done = asyncio.Event()
                while True:
                    self.refusals[client_id] = refused = asyncio.Event()
                    await members[n % PER_ROOM].send(self.target.outgoing(stamp, client_id))
                    waits = [asyncio.ensure_future(done.wait()), asyncio.ensure_future(refused.wait())]
                    await asyncio.wait(waits, timeout=30, return_when=asyncio.FIRST_COMPLETED)
                    for waiting in waits:
                        waiting.cancel()
                    if done.is_set():
                        break
                    if not refused.is_set():
                        raise TimeoutError(f"{stamp} was neither delivered nor refused in 30 s")
                    # Over the per-socket rate limit: as the room's client does, wait a second
                    # and resend the same id.
                    self.resent += 1
                    await asyncio.sleep(1)
                del self.echoes[stamp], self.refusals[client_id]
                sent += 1

        began = time.monotonic()
        await asyncio.gather(*(drive(m) for m in sockets))
        return sent / (time.monotonic() - began)

    async def steady(self, sockets, rate: float, seconds: float) -> int:
        interval = len(sockets) / rate
        sent = 0

        async def drive(members, offset):
            nonlocal sent
            await asyncio.sleep(offset)
            start = time.monotonic()
            n = 0
            while time.monotonic() - start < seconds:
                n += 1
                stamp = f"{time.time()}:steady:{n}"
                await members[n % PER_ROOM].send(self.target.outgoing(stamp, secrets.token_hex(6)))
                sent += 1
                await asyncio.sleep(max(0.0, start + n * interval - time.monotonic()))

        await asyncio.gather(*(drive(m, i * interval / len(sockets)) for i, m in enumerate(sockets)))
        return sent


async def measure(target: Target, half_rate: float | None) -> dict:
    pid = target.process.pid
    run = Run(target)
    # The first room warms the server up (imports, database connections, thread pool), so memory
    # is read after it and the rest of the rooms are what is counted per socket.
    sockets = await run.connect_all(target.rooms[:1])
    await asyncio.sleep(2)
    idle_before = rss_bytes(pid)
    sockets += await run.connect_all(target.rooms[1:])
    await asyncio.sleep(2)  # let presence events settle before the idle reading
    per_socket = (rss_bytes(pid) - idle_before) / ((ROOMS - 1) * PER_ROOM)
    listeners = [asyncio.create_task(run.listen(ws)) for members in sockets for ws in members]
    saturation = await run.saturate(sockets, PHASE_SECONDS)
    rate = half_rate or FIXED_RATE or saturation / 2
    run.latencies.clear()
    run.delivered = 0
    run.phase = ":steady:"
    cpu_before = cpu_seconds(pid)
    sent = await run.steady(sockets, rate, PHASE_SECONDS)
    # Drain: wait until deliveries stop growing (bounded), so late ones count as delivered.
    for _ in range(50):
        seen = run.delivered
        await asyncio.sleep(0.2)
        if run.delivered == seen and seen >= sent * PER_ROOM:
            break
    cpu = cpu_seconds(pid) - cpu_before
    for task in listeners:
        task.cancel()
    for members in sockets:
        for ws in members:
            await ws.close()
    latencies = sorted(run.latencies)
    return {
        "saturation": saturation,
        "resent": run.resent,
        "rate": rate,
        "sent": sent,
        "delivered": run.delivered,
        "cpu_per_delivery_ms": 1000 * cpu / max(run.delivered, 1),
        "p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan"),
        "rss_per_socket_kb": per_socket / 1024,
    }


def start(command, env, port) -> subprocess.Popen:
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_listening(process, port)
    return process


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run() -> list[dict]:
    database = f"bench_live_{secrets.token_hex(4)}"
    admin = psycopg.conninfo.conninfo_to_dict(ADMIN_URL.replace("postgres://", "postgresql://", 1))
    admin["dbname"] = "postgres"
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": REDIS_URL,
        "CHANNEL_PREFIX": database,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    pool_size = env.pop("DB_POOL_MAX_SIZE", "") or "10"
    processes = []
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
        )
        seeded = subprocess.run(
            [sys.executable, "-c", SEED, str(ROOMS), str(PER_ROOM)],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        rooms = json.loads(seeded.stdout.strip().splitlines()[-1])
        ours_port, raw_port = free_port(), free_port()
        # The pool is for the web process only, as docker-compose.yml sets it: without it every
        # database_sync_to_async call opens (and closes) its own Postgres connection.
        web_env = {**env, "DB_POOL_MAX_SIZE": pool_size}
        ours = start(
            server_command("127.0.0.1", ours_port),
            web_env,
            ours_port,
        )
        processes.append(ours)
        raw = start([sys.executable, "-c", RAW_SERVER, str(raw_port)], env, raw_port)
        processes.append(raw)
        mine = asyncio.run(measure(Target("ours", ours, ours_port, rooms, True), None))
        # The raw server is driven at the same rate as ours, so CPU per delivery compares like with like.
        base = asyncio.run(measure(Target("raw", raw, raw_port, rooms, False), mine["rate"]))
    finally:
        for process in processes:
            stop(process)
        with psycopg.connect(**admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    label = f"{ROOMS} rooms x {PER_ROOM} sockets"
    load = f"{FIXED_RATE:g} msg/s" if FIXED_RATE else "half our saturation"
    detail = {
        "our saturation msg/s": round(mine["saturation"], 1),
        "rate-limited resends": mine["resent"],
        "raw saturation msg/s": round(base["saturation"], 1),
        "rate msg/s": round(mine["rate"], 1),
    }
    return [
        {
            "name": f"live fan-out CPU per delivered message ({label})",
            "unit": "ms CPU",
            "value": round(mine["cpu_per_delivery_ms"], 3),
            "baseline_name": "raw websockets broadcast",
            "baseline_value": round(base["cpu_per_delivery_ms"], 3),
            "ratio": round(mine["cpu_per_delivery_ms"] / base["cpu_per_delivery_ms"], 2),
            "target": "ratio <= 4",
            "detail": detail,
        },
        {
            "name": f"live fan-out p99 latency at {load} ({label})",
            "unit": "ms",
            "value": round(mine["p99_ms"], 1),
            "baseline_name": "raw websockets broadcast",
            "baseline_value": round(base["p99_ms"], 1),
            "ratio": round(mine["p99_ms"] / base["p99_ms"], 2),
            "target": "<= 25",
            "detail": {"our p50 ms": round(mine["p50_ms"], 1), "raw p50 ms": round(base["p50_ms"], 1)},
        },
        {
            "name": f"live fan-out delivered/sent ({label})",
            "unit": "fraction",
            "value": round(mine["delivered"] / (mine["sent"] * PER_ROOM), 4),
            "baseline_name": "raw websockets broadcast",
            "baseline_value": round(base["delivered"] / (base["sent"] * PER_ROOM), 4),
            "ratio": round(
                (mine["delivered"] / (mine["sent"] * PER_ROOM))
                / (base["delivered"] / (base["sent"] * PER_ROOM)),
                4,
            ),
            "target": ">= 1",
        },
        {
            "name": "live memory per idle socket",
            "unit": "KiB",
            "value": round(mine["rss_per_socket_kb"], 1),
            "baseline_name": "raw websockets broadcast",
            "baseline_value": round(base["rss_per_socket_kb"], 1),
            "ratio": round(mine["rss_per_socket_kb"] / max(base["rss_per_socket_kb"], 0.1), 2),
            "target": "ratio <= 3",
        },
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
