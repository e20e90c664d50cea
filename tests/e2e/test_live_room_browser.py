"""Two people take turns in Chromium; the server is killed mid-round and both pages resync."""

import pytest
from playwright.sync_api import expect

from circles import live
from tests.circles.live_support import make_session, session_cookie
from tests.e2e.servers import AsgiServer
from tests.factories import make_circle, make_org, make_person

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Generous: the page may wait out several reconnect backoffs while the server restarts.
WAIT_MS = 45_000


@pytest.fixture
def server(transactional_db):
    server = AsgiServer().start()
    yield server
    server.stop()


def open_room(browser, server, user, session):
    context = browser.new_context(viewport={"width": 360, "height": 780})
    context.add_cookies([{"name": "sessionid", "value": session_cookie(user), "url": server.base_url}])
    page = context.new_page()
    page.goto(f"{server.base_url}/circles/sessions/{session.pk}/room/")
    return page


def expect_seq(page, seq: int) -> None:
    expect(page.locator("#room")).to_have_attribute("data-seq", str(seq), timeout=WAIT_MS)


def test_two_people_take_turns_and_resync_after_the_server_restarts(server, browser, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    org = make_org()
    fran = make_person(org, "Fran Facilitator")
    alice = make_person(org, "Alice Member")
    circle = make_circle(fran, members=[alice])
    session = make_session(circle, facilitator=fran)

    fran_page = open_room(browser, server, fran, session)
    alice_page = open_room(browser, server, alice, session)
    expect(fran_page.locator("#people li")).to_have_count(2, timeout=WAIT_MS)

    fran_page.get_by_role("button", name="Start the circle").click()
    fran_page.get_by_role("button", name="Take the piece").click()
    expect(alice_page.locator("#holder-line")).to_have_text(
        "Fran Facilitator has the talking piece.", timeout=WAIT_MS
    )
    expect(alice_page.locator("#timer")).to_be_visible()
    fran_page.get_by_role("button", name="I've finished").click()
    alice_page.get_by_role("button", name="Take the piece").click()
    expect(fran_page.locator("#holder-line")).to_have_text(
        "Alice Member has the talking piece.", timeout=WAIT_MS
    )
    expect(alice_page.locator("#announcer")).to_have_text("You have the talking piece.")

    # Mid-round, the server dies. Alice finishes and writes while it is down: both are kept
    # as pending commands and resent, once, when the page reconnects.
    server.kill()
    expect(alice_page.locator("#connection")).to_have_text("Reconnecting…", timeout=WAIT_MS)
    alice_page.get_by_role("button", name="I've finished").click()
    alice_page.get_by_role("textbox", name="Message").fill("Thank you for listening")
    alice_page.get_by_role("button", name="Send").click()
    server.start()

    for page, author in ((fran_page, "Alice Member"), (alice_page, "You")):
        expect(page.locator("#connection")).to_have_text("", timeout=WAIT_MS)
        expect(page.locator("#holder-line")).to_have_text("Nobody is speaking.", timeout=WAIT_MS)
        expect(page.locator("#messages li")).to_have_text(
            [f"{author}: Thank you for listening"], timeout=WAIT_MS
        )
    final = live.snapshot(session_id=session.pk, user_id=fran.pk)
    expect_seq(fran_page, final["seq"])
    expect_seq(alice_page, final["seq"])
    assert final["holder"] is None
    assert final["spoken"] == [fran.pk, alice.pk]
    assert [m["text"] for m in final["messages"]] == ["Thank you for listening"]
