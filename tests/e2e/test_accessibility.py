"""axe-core on every page reachable from the demo data, for each persona: 0 WCAG 2.2 A/AA violations.

The demo is seeded on the test database and served by config.server (the live rooms need their sockets).
Each persona's walk starts at their home and follows same-origin links breadth first
(tests/e2e/demo_site.py says which are left alone). axe-core comes from node_modules (package.json
pins it; `npm ci` installs it) and is injected into each page, which needs the CSP bypassed for
the test's own script only.
"""

from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from circles.models import CircleSession, Membership
from tests.circles.live_support import session_cookie
from tests.e2e.demo_site import PERSONAS, Visit, build_demo, walk
from tests.e2e.servers import ROOT, AsgiServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
WCAG_22_A_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
# Each page is checked at two widths: the layout changes below 40em (navigation wraps, tables scroll).
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 360, "height": 780}}
WAIT_MS = 30_000
# Each violation comes back as one line per element: the selector and the first thing to fix.
RUN_AXE = """async (tags) => {
  const options = {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]};
  const results = await axe.run(document, options);
  return results.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => n.target.join(" ") + "  " + n.failureSummary.split("\\n").slice(1, 2).join("")),
  }));
}"""


@pytest.fixture
def demo(transactional_db):
    return build_demo()


@pytest.fixture
def cookies(demo):
    """Signed-in sessions made before Chromium starts, so no ORM call runs inside Playwright's loop."""
    return {persona: session_cookie(user) if user else None for persona, user in demo.items()}


@pytest.fixture
def room(demo):
    """The facilitator persona's circle session that is about to start, with one of its members:
    who takes part in the mid-round check. Made before Chromium starts, like the cookies."""
    facilitator = demo["facilitator"]
    led = Membership.objects.filter(user=facilitator, role=Membership.Role.FACILITATOR, left_at=None)
    session = (
        CircleSession.objects.filter(circle__in=led.values("circle"), starts_at__gt=timezone.now())
        .order_by("starts_at")
        .first()
    )
    member = (
        Membership.objects.filter(circle=session.circle, role=Membership.Role.MEMBER, left_at=None)
        .select_related("user")
        .first()
        .user
    )
    return SimpleNamespace(
        path=f"/circles/sessions/{session.pk}/room/",
        cookies={"facilitator": session_cookie(facilitator), "member": session_cookie(member)},
    )


@pytest.fixture
def server(demo):
    server = AsgiServer().start()
    yield server
    server.stop()


def axe_violations(page) -> list[dict]:
    page.add_script_tag(path=str(AXE))
    return page.evaluate(RUN_AXE, WCAG_22_A_AA)


def check_page(page, label: str) -> list[str]:
    """axe-core on the page as it stands, at every width: one line per offending element."""
    page.add_script_tag(path=str(AXE))
    problems = []
    for width, viewport in VIEWPORTS.items():
        page.set_viewport_size(viewport)
        for violation in page.evaluate(RUN_AXE, WCAG_22_A_AA):
            problems += [
                f"{label} ({width}) [{violation['id']}, {violation['impact']}] {node}"
                for node in violation["nodes"]
            ]
    return problems


def wait_for_live_room(page) -> None:
    """An open room is built by room.js from the socket's snapshot: check it once it is there."""
    if page.locator('script[src*="circles/room.js"]').count():
        page.locator("#room[data-seq]").wait_for(state="attached", timeout=WAIT_MS)


def audit_persona(browser, server, cookie: str | None) -> tuple[list[Visit], list[str]]:
    """Walk one persona's site, checking each page at every width; return (pages, violations as lines)."""
    context = browser.new_context(bypass_csp=True)
    if cookie is not None:
        context.add_cookies([{"name": "sessionid", "value": cookie, "url": server.base_url}])
    page = context.new_page()
    problems: list[str] = []

    def fetch(path: str) -> Visit:
        response = page.goto(server.base_url + path, wait_until="load")
        shown = urlsplit(page.url).path
        wait_for_live_room(page)
        problems.extend(check_page(page, shown))
        return Visit(path=shown, status=response.status, html=page.content())

    visits = walk(fetch, base_url=server.base_url)
    context.close()
    return visits, problems


def test_every_demo_page_has_no_wcag_22_a_or_aa_violations_for_any_persona(
    cookies, server, browser, record_property
):
    assert Path(AXE).exists(), "axe-core is missing: run `npm ci` (package.json pins it)"
    report, problems, failed = {}, [], []
    for persona, cookie in cookies.items():
        visits, found = audit_persona(browser, server, cookie)
        report[persona] = len(visits)
        problems += [f"{persona}: {line}" for line in found]
        failed += [f"{persona}: {visit.status} {visit.path}" for visit in visits if visit.status != 200]
    record_property("pages_per_persona", report)
    print(f"\npages per persona {report}, violations {len(problems)}")
    # Every persona reaches more than their own home; the walk is not quietly stuck on one page.
    assert report["anonymous"] >= 2
    assert all(report[persona] >= 10 for persona in PERSONAS if persona != "anonymous"), report
    assert failed == []
    assert problems == [], "\n".join(problems)


def test_live_room_mid_round_has_no_wcag_22_a_or_aa_violations(room, server, browser):
    """The walk sees each room as it opens; this sees one mid-round, with the piece held, the timer
    running, a hand up and a message, for the facilitator and for a member."""
    pages = {}
    for who, cookie in room.cookies.items():
        context = browser.new_context(bypass_csp=True)
        context.add_cookies([{"name": "sessionid", "value": cookie, "url": server.base_url}])
        pages[who] = context.new_page()
        pages[who].goto(server.base_url + room.path)
        wait_for_live_room(pages[who])
    facilitator, member = pages["facilitator"], pages["member"]
    expect(facilitator.locator("#people li")).to_have_count(2, timeout=WAIT_MS)
    facilitator.get_by_role("button", name="Start the circle").click()
    facilitator.get_by_role("button", name="Take the piece").click()
    expect(member.locator("#timer")).to_be_visible(timeout=WAIT_MS)
    member.get_by_role("button", name="Raise my hand").click()
    member.get_by_role("textbox", name="Message").fill("Thank you for bringing this")
    member.get_by_role("button", name="Send").click()
    for page in pages.values():
        expect(page.locator("#messages li")).to_have_count(1, timeout=WAIT_MS)
    problems = [line for who, page in pages.items() for line in check_page(page, f"{who} {room.path}")]
    assert problems == [], "\n".join(problems)


def test_the_check_would_catch_a_violation(server, browser):
    """The canary: the same injection and rule set reports an image without alt text and an
    unlabelled field, so a clean result above means clean pages, not a check that never ran."""
    page = browser.new_context(bypass_csp=True).new_page()
    page.goto(server.base_url + "/accounts/sign-in/")
    page.evaluate(
        """() => {
      document.querySelector("main").insertAdjacentHTML("beforeend", '<img src="/x.png"><input type="text">');
    }"""
    )
    found = {violation["id"] for violation in axe_violations(page)}
    assert {"image-alt", "label"} <= found
