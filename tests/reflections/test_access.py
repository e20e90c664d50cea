"""Every reflections route, for every persona: who gets in, who gets 404, who gets 403."""

from dataclasses import dataclass

import pytest
from django.urls import reverse

from reflections import services
from reflections.models import Prompt

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    target: str  # which object the URL is about
    ok: int  # status for someone allowed in
    data: tuple = ()


# "circle": members of the circle; "author": the thread's author (others in the circle get 403);
# "facilitator": the circle's facilitators (members get 403); "own": only the owner (others 404);
# "self": any signed-in person, about themselves.
ROUTES = [
    Route("threads", "get", "circle", 200),
    Route("thread-new", "get", "circle", 200),
    Route("thread-new", "post", "circle", 302, (("kind", "reflection"), ("title", "Hello"), ("body", "Hi"))),
    Route("concern-new", "get", "circle", 200),
    Route("concern-new", "post", "circle", 302, (("moment", "Check-in"), ("reason", "Worried"))),
    Route("concern-received", "get", "circle", 200),
    Route("concerns", "get", "facilitator", 200),
    Route("concern-resolve", "post", "facilitator-concern", 302, (("note", "Talked"),)),
    Route("thread", "get", "thread", 200),
    Route("thread-affirm", "post", "thread", 302),
    Route("reply-create", "post", "thread", 302, (("body", "A thought"),)),
    Route("replies-after", "get", "thread", 200),
    Route("thread-edit", "get", "author", 200),
    Route("thread-edit", "post", "author", 302, (("title", "New title"), ("body", "x"))),
    Route("thread-takeaway", "post", "author", 302, (("takeaway", "Be gentle"),)),
    Route("thread-delete", "post", "author", 302),
    Route("reply-affirm", "post", "reply", 302),
    Route("reply-edit", "get", "reply-author", 200),
    Route("reply-edit", "post", "reply-author", 302, (("body", "Edited"),)),
    Route("reply-delete", "post", "reply-author", 302),
    Route("journal", "get", "self", 200),
    Route("journal", "post", "self", 302, (("body", "Dear diary"),)),
    Route("journal-edit", "get", "own-journal", 200),
    Route("journal-edit", "post", "own-journal", 302, (("body", "Changed"),)),
    Route("journal-delete", "post", "own-journal", 302),
    Route("intentions", "get", "self", 200),
    Route("intentions", "post", "self", 302, (("text", "Rest more"), ("nudge_after_days", "14"))),
    Route("intention", "get", "own-intention", 200),
    Route("intention", "post", "own-intention", 302, (("text", "Rest"), ("nudge_after_days", "7"))),
    Route("intention-step", "post", "own-intention", 302, (("text", "Took lunch"),)),
    Route("intention-reached", "post", "own-intention", 302),
    Route("intention-delete", "post", "own-intention", 302),
    Route("prompts", "get", "self", 200),
    Route("prompts", "post", "prompt-manager", 302, (("task", "connection"), ("text", "What connects us?"))),
    Route("prompt-remove", "post", "org-prompt", 302),
    Route("my-data", "get", "self", 200),
    Route("my-data-export", "get", "self", 200),
]

OTHER_METHOD = {"get": "post", "post": "get"}


@pytest.fixture
def world(circle_people, thread, reply):
    p = circle_people
    p.thread, p.reply = thread, reply
    p.concern = services.concern_report(reporter=p.bea, circle=p.circle, moment="Check-in", reason="Worried")
    p.journal = services.journal_entry_add(author=p.member, body="Private words")
    p.intention = services.intention_add(owner=p.member, text="Rest more", circle=None, nudge_after_days=14)
    p.prompt = Prompt.objects.create(
        organisation=p.org, task="connection", text="Ours", created_by=p.facilitator
    )
    return p


def url_for(route: Route, w) -> str:
    pk = {
        "circle": w.circle.pk,
        "facilitator": w.circle.pk,
        "facilitator-concern": w.concern.pk,
        "thread": w.thread.pk,
        "author": w.thread.pk,
        "reply": w.reply.pk,
        "reply-author": w.reply.pk,
        "own-journal": w.journal.pk,
        "own-intention": w.intention.pk,
        "org-prompt": w.prompt.pk,
    }.get(route.target)
    if route.name in {"threads", "thread-new", "concern-new", "concern-received", "concerns"}:
        return reverse(f"reflections:{route.name}", kwargs={"circle_pk": pk})
    return reverse(f"reflections:{route.name}", args=[pk] if pk is not None else [])


def allowed(route: Route, w):
    """The person for whom this route is the happy path."""
    return {
        "facilitator": w.facilitator,
        "facilitator-concern": w.facilitator,
        "reply": w.member,
        "reply-author": w.bea,
        "prompt-manager": w.facilitator,
        "org-prompt": w.facilitator,
    }.get(route.target, w.member)


def call(client, route: Route, url: str, method: str | None = None):
    method = method or route.method
    return getattr(client, method)(url, dict(route.data)) if method == "post" else client.get(url)


def ids(route: Route) -> str:
    return f"{route.method}-{route.name}"


@pytest.mark.parametrize("route", ROUTES, ids=ids)
def test_the_right_person_gets_the_happy_path(route, world, client_for):
    response = call(client_for(allowed(route, world)), route, url_for(route, world))
    assert response.status_code == route.ok, response.content[:500]


@pytest.mark.parametrize("route", ROUTES, ids=ids)
def test_anonymous_visitors_are_sent_to_sign_in(route, world, client):
    response = call(client, route, url_for(route, world))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


# Routes that answer both GET and POST (a form page) are checked with PUT below instead.
GET_AND_POST = {r.name for r in ROUTES if r.method == "get"} & {r.name for r in ROUTES if r.method == "post"}


@pytest.mark.parametrize("route", [r for r in ROUTES if r.name not in GET_AND_POST], ids=ids)
def test_the_wrong_method_gets_405(route, world, client_for):
    client = client_for(allowed(route, world))
    response = call(client, route, url_for(route, world), OTHER_METHOD[route.method])
    assert response.status_code == 405


@pytest.mark.parametrize(
    "route", [r for r in ROUTES if r.name in GET_AND_POST and r.method == "get"], ids=ids
)
def test_form_pages_refuse_put_with_405(route, world, client_for):
    assert client_for(allowed(route, world)).put(url_for(route, world)).status_code == 405


CIRCLE_TARGETS = {"circle", "facilitator", "facilitator-concern", "thread", "author", "reply", "reply-author"}


@pytest.mark.parametrize("route", [r for r in ROUTES if r.target in CIRCLE_TARGETS], ids=ids)
@pytest.mark.parametrize("who", ["outsider", "admin", "manager", "other_facilitator"])
def test_people_outside_the_circle_get_404_whatever_their_role(route, who, world, client_for):
    response = call(client_for(getattr(world, who)), route, url_for(route, world))
    assert response.status_code == 404


@pytest.mark.parametrize("route", [r for r in ROUTES if r.target in CIRCLE_TARGETS], ids=ids)
def test_someone_who_left_the_circle_gets_404(route, world, client_for):
    from tests.reflections.conftest import leave

    person = allowed(route, world)
    leave(person, world.circle)
    assert call(client_for(person), route, url_for(route, world)).status_code == 404


@pytest.mark.parametrize(
    "route",
    [r for r in ROUTES if r.target in {"author", "reply-author", "facilitator", "facilitator-concern"}],
    ids=ids,
)
def test_members_without_the_capability_get_403(route, world, client_for):
    # The thread's author is `member`, the perspective's is `bea`: each is the wrong person for the other.
    person = world.bea if route.target in {"author", "facilitator", "facilitator-concern"} else world.member
    assert call(client_for(person), route, url_for(route, world)).status_code == 403


@pytest.mark.parametrize("route", [r for r in ROUTES if r.target.startswith("own-")], ids=ids)
@pytest.mark.parametrize("who", ["bea", "facilitator", "admin", "manager", "outsider"])
def test_private_things_are_404_for_everyone_but_their_owner(route, who, world, client_for):
    assert call(client_for(getattr(world, who)), route, url_for(route, world)).status_code == 404


@pytest.mark.parametrize("who", ["member", "manager"])
def test_people_who_are_neither_facilitator_nor_admin_cannot_add_or_remove_prompts(who, world, client_for):
    client = client_for(getattr(world, who))
    add = client.post(reverse("reflections:prompts"), {"task": "connection", "text": "Hello"})
    remove = client.post(reverse("reflections:prompt-remove", args=[world.prompt.pk]))
    assert (add.status_code, remove.status_code) == (403, 403)
    assert Prompt.objects.filter(pk=world.prompt.pk).exists()


def test_another_organisations_prompt_is_404(world, client_for):
    response = client_for(world.outsider).post(reverse("reflections:prompt-remove", args=[world.prompt.pk]))
    assert response.status_code == 404


def test_the_prompts_we_ship_cannot_be_removed(world, client_for):
    shipped = Prompt.objects.filter(organisation=None).first()
    response = client_for(world.admin).post(reverse("reflections:prompt-remove", args=[shipped.pk]))
    assert response.status_code == 403


def test_a_report_about_a_post_from_another_circle_is_404(world, client_for):
    other = services.thread_create(
        author=world.other_facilitator,
        circle=world.other_circle,
        kind="reflection",
        title="Elsewhere",
        body="",
    )
    url = reverse("reflections:concern-new", kwargs={"circle_pk": world.circle.pk}) + f"?thread={other.pk}"
    assert client_for(world.member).get(url).status_code == 404


@pytest.mark.parametrize("route", ["reflections:thread", "reflections:threads", "circles:circle-detail"])
def test_an_id_beyond_any_column_is_404_not_a_server_error(world, client_for, route):
    """These routes read through compiled queries (config/prepared.py), which skip the ORM's own
    handling of ids no 64-bit column can hold."""
    assert client_for(world.member).get(reverse(route, args=[2**64])).status_code == 404
