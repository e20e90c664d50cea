"""Security properties of the whole product (issue 8).

- Every response carries the CSP: each page of the demo walk for each persona, every redirect on
  the way, error pages (400, 403, 404, 405, 500) and static files.
- bandit finds nothing unwaived in the app packages, and every waiver names its test and a reason.
- Every WebSocket route refuses a handshake from a foreign Origin with DEBUG off.
- Signing out, deactivation by an admin (people pages) and removal from a circle (circle page)
  close the person's open sockets, of every kind, within the 5 s receive timeout.

`check --deploy` under production settings is tests/ops/test_settings.py's.
"""

import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.http import HttpResponse
from django.test import Client
from django.urls import include, path

from circles import live
from circles.models import Membership
from config.asgi import application
from config.routing import websocket_urlpatterns
from reflections import services as reflection_services
from tests.circles.live_support import RECEIVE_TIMEOUT, make_session
from tests.e2e.demo_site import Visit, build_demo, walk
from tests.factories import make_circle, make_org, make_person
from tests.ops.test_security_headers import assert_hardened

ROOT = Path(__file__).resolve().parents[2]
APP_PACKAGES = ["accounts", "circles", "reflections", "insights", "config"]
NOSEC = re.compile(r"#\s*nosec\b(?P<rest>.*)$")
WAIVER = re.compile(r"^(?P<ids>(\s+B\d{3})+)\s+#\s+\S.{5,}$")


def boom(request):
    raise RuntimeError("a bug, not the user's mistake")


def plain(request):
    return HttpResponse("ok")


# The product's URLs plus one view that fails and one that answers without a template.
urlpatterns = [path("test-boom/", boom), path("test-plain/", plain), path("", include("config.urls"))]


# --- CSP on every response ---------------------------------------------------------------------


def walk_with_headers(client: Client) -> tuple[list[Visit], int]:
    """The demo walk through the test client, checking every response on the way, redirects too."""
    responses = 0

    def fetch(page: str) -> Visit:
        nonlocal responses
        response = client.get(page)
        responses += 1
        assert_hardened(response)
        while response.status_code in (301, 302):
            page = response.headers["Location"]
            response = client.get(page)
            responses += 1
            assert_hardened(response)
        return Visit(path=page.split("?")[0], status=response.status_code, html=response.content.decode())

    return walk(fetch), responses


@pytest.mark.django_db
def test_every_page_of_the_demo_walk_carries_the_csp_for_every_persona(client, settings, record_property):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    counts = {}
    for persona, user in build_demo().items():
        client.logout()
        if user is not None:
            client.force_login(user, backend="accounts.backends.UserBackend")
        visits, responses = walk_with_headers(client)
        assert [v.path for v in visits if v.status != 200] == []
        counts[persona] = (len(visits), responses)
    record_property("pages_and_responses_per_persona", counts)
    print(f"\n(pages, responses) per persona {counts}")
    assert counts["anonymous"][0] >= 2
    assert all(pages >= 10 for persona, (pages, _) in counts.items() if persona != "anonymous"), counts


def assert_csp(response) -> None:
    """For responses made before the inner middleware runs (a refused Host, WhiteNoise's static
    files): no X-Frame-Options there, but the CSP (outermost) with frame-ancestors 'none' and nosniff."""
    assert response.headers["Content-Security-Policy"] == settings.CONTENT_SECURITY_POLICY
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_error_pages_and_static_files_carry_the_csp(client_for, people):
    member = client_for(people.member)
    # 403: a member on the organisation admin's people page.
    forbidden = member.get("/accounts/people/")
    assert forbidden.status_code == 403
    assert_hardened(forbidden)
    bad_host = Client().get("/accounts/sign-in/", headers={"host": "evil.example"})
    assert bad_host.status_code == 400
    assert_csp(bad_host)
    # A POST without its CSRF token is refused with Django's CSRF page.
    csrf = Client(enforce_csrf_checks=True).post("/accounts/sign-in/", {"username": "a", "password": "b"})
    assert csrf.status_code == 403
    assert_hardened(csrf)
    failing = Client(raise_request_exception=False).get("/test-boom/")
    assert failing.status_code == 500
    assert_hardened(failing)
    assert_hardened(Client().get("/test-plain/"))
    stylesheet = Client().get("/static/css/alongside.css")
    assert stylesheet.status_code == 200
    assert_csp(stylesheet)


# --- bandit ------------------------------------------------------------------------------------


def test_bandit_finds_nothing_unwaived_in_the_app_packages():
    result = subprocess.run(
        [sys.executable, "-m", "bandit", "-c", "pyproject.toml", "-r", *APP_PACKAGES, "-f", "json", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(result.stdout)
    findings = [
        f"{r['filename']}:{r['line_number']} {r['test_id']} {r['issue_text']}" for r in report["results"]
    ]
    assert findings == []
    assert report["errors"] == []
    assert report["metrics"]["_totals"]["loc"] > 5000, "bandit scanned the app, not an empty set"


def test_every_bandit_waiver_names_its_test_and_gives_a_reason():
    unexplained = []
    for package in APP_PACKAGES:
        for source in (ROOT / package).rglob("*.py"):
            for number, line in enumerate(source.read_text().splitlines(), 1):
                match = NOSEC.search(line)
                if match and not WAIVER.match(match["rest"]):
                    unexplained.append(f"{source.relative_to(ROOT)}:{number}: {line.strip()}")
    assert unexplained == [], "write `# nosec B123  # why it is safe here`"


# --- Sockets -----------------------------------------------------------------------------------


@pytest.fixture
def fresh_channel_layer():
    """Each async test runs in its own loop; a Redis layer's locks belong to the loop that made them."""
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture
def live_circle(transactional_db, settings, fresh_channel_layer):
    """A circle with its room open, a thread, the facilitator, a member and the organisation admin,
    each with a signed-in browser (a test Client whose session cookie the sockets reuse)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    org = make_org()
    facilitator = make_person(org, "Fran Facilitator", is_facilitator=True)
    member = make_person(org, "Alice Member")
    admin = make_person(org, "Ada Admin", is_org_admin=True)
    circle = make_circle(facilitator, members=[member])
    session = make_session(circle, facilitator=facilitator)
    thread = reflection_services.thread_create(
        author=member, circle=circle, kind="situation", title="A hard shift", body="It stayed with me."
    )
    browsers = {}
    for name, person in (("facilitator", facilitator), ("member", member), ("admin", admin)):
        browsers[name] = Client()
        browsers[name].force_login(person, backend="accounts.backends.UserBackend")
    return SimpleNamespace(
        circle=circle,
        member=member,
        membership=Membership.objects.get(circle=circle, user=member),
        browsers=browsers,
        routes={
            "room": f"/ws/circles/sessions/{session.pk}/room/",
            "thread": f"/ws/threads/{thread.pk}/",
            "badge": "/ws/notifications/",
        },
    )


# Each WebSocket route, by its pattern, and the name its path has in `live_circle.routes`.
ROUTES = {
    "ws/circles/sessions/<int:pk>/room/": "room",
    "ws/threads/<int:pk>/": "thread",
    "ws/notifications/": "badge",
}


def test_every_websocket_route_is_in_the_table():
    """A new route without an entry here fails: its origin check and closing must be tested too."""
    assert sorted(str(route.pattern) for route in websocket_urlpatterns) == sorted(ROUTES)


def socket(path_: str, browser: Client | None, origin: bytes = b"http://testserver") -> WebsocketCommunicator:
    headers = [(b"origin", origin), (b"host", b"testserver")]
    if browser is not None:
        headers.append((b"cookie", f"sessionid={browser.cookies['sessionid'].value}".encode()))
    return WebsocketCommunicator(application, path_, headers=headers)


async def opened(path_: str, browser: Client) -> WebsocketCommunicator:
    """A connected socket with what it says on opening (the room's nothing, the badge's count) read."""
    communicator = socket(path_, browser)
    connected, _ = await communicator.connect(timeout=RECEIVE_TIMEOUT)
    assert connected
    if path_ == "/ws/notifications/":
        assert (await communicator.receive_json_from(timeout=RECEIVE_TIMEOUT))["type"] == "badge"
    return communicator


@pytest.mark.parametrize("route", sorted(ROUTES.values()))
async def test_a_handshake_from_a_foreign_origin_is_refused_with_debug_off(live_circle, settings, route):
    settings.DEBUG = False
    path_ = live_circle.routes[route]
    foreign = socket(path_, live_circle.browsers["member"], origin=b"https://evil.example")
    refused, _ = await foreign.connect(timeout=RECEIVE_TIMEOUT)
    await foreign.disconnect()
    # The same person from the site's own origin is let in: the origin was the only difference.
    own = await opened(path_, live_circle.browsers["member"])
    await own.disconnect()
    assert refused is False


async def expect_closed(communicator: WebsocketCommunicator, code: int, reason: str) -> None:
    """The socket says why, then closes, within the receive timeout (5 s). Room events that were
    already on their way (someone's arrival) may come first."""
    message = await communicator.receive_json_from(timeout=RECEIVE_TIMEOUT)
    while message["type"] in ("event", "events", "snapshot"):
        message = await communicator.receive_json_from(timeout=RECEIVE_TIMEOUT)
    close = await communicator.receive_output(timeout=RECEIVE_TIMEOUT)
    await communicator.disconnect()
    assert message["type"] == "closed"
    assert message["code"] == reason
    assert close == {"type": "websocket.close", "code": code}


def post(browser: Client, url: str) -> int:
    return browser.post(url).status_code


@pytest.mark.parametrize("route", sorted(ROUTES.values()))
async def test_signing_out_closes_the_sockets_of_that_browser(live_circle, route):
    communicator = await opened(live_circle.routes[route], live_circle.browsers["member"])
    assert await database_sync_to_async(post)(live_circle.browsers["member"], "/accounts/sign-out/") == 302
    await expect_closed(communicator, live.CLOSE_SIGNED_OUT, "signed_out")


async def test_signing_out_of_one_browser_leaves_another_browser_connected(live_circle):
    def second_browser():
        browser = Client()
        browser.force_login(live_circle.member, backend="accounts.backends.UserBackend")
        return browser

    phone = await database_sync_to_async(second_browser)()
    on_phone = await opened(live_circle.routes["thread"], phone)
    on_laptop = await opened(live_circle.routes["thread"], live_circle.browsers["member"])
    await database_sync_to_async(post)(live_circle.browsers["member"], "/accounts/sign-out/")
    await expect_closed(on_laptop, live.CLOSE_SIGNED_OUT, "signed_out")
    await on_phone.send_json_to({"type": "ping"})
    pong = await on_phone.receive_json_from(timeout=RECEIVE_TIMEOUT)
    await on_phone.disconnect()
    assert pong == {"type": "pong"}


@pytest.mark.parametrize("route", sorted(ROUTES.values()))
async def test_deactivation_by_an_admin_closes_every_socket(live_circle, route):
    communicator = await opened(live_circle.routes[route], live_circle.browsers["member"])
    url = f"/accounts/people/{live_circle.member.pk}/deactivate/"
    assert await database_sync_to_async(post)(live_circle.browsers["admin"], url) == 302
    await expect_closed(communicator, live.CLOSE_REMOVED, "removed")


@pytest.mark.parametrize("route", ["room", "thread"])
async def test_removal_from_the_circle_closes_the_sockets_about_that_circle(live_circle, route):
    communicator = await opened(live_circle.routes[route], live_circle.browsers["member"])
    url = f"/circles/{live_circle.circle.pk}/members/{live_circle.membership.pk}/remove/"
    assert await database_sync_to_async(post)(live_circle.browsers["facilitator"], url) == 302
    await expect_closed(communicator, live.CLOSE_REMOVED, "removed")


async def test_removal_from_a_circle_leaves_the_badge_open(live_circle):
    """The badge is about the person, not a circle: they are still signed in and may use it."""
    badge = await opened(live_circle.routes["badge"], live_circle.browsers["member"])
    url = f"/circles/{live_circle.circle.pk}/members/{live_circle.membership.pk}/remove/"
    await database_sync_to_async(post)(live_circle.browsers["facilitator"], url)
    await badge.send_to(text_data="{}")
    reply = await badge.receive_json_from(timeout=RECEIVE_TIMEOUT)
    await badge.disconnect()
    assert reply["type"] == "error"
