"""Every route, every persona: the answer must be the one tests/security/expected_access.py says.

Routes come from the URL resolver, so a route added without an entry in the table fails
`test_every_route_has_an_entry`. Each request runs inside a savepoint that is rolled back, so one
persona's allowed POST cannot change what the next route sees. A refused POST must change nothing.

The Django admin is for operators (is_staff) and none of the personas is one. One rule covers all
its routes, each asked by every persona: the answer is a redirect to the admin's sign-in page (the
sign-in page itself shows its form, sign-out goes back to the admin index, and a model's bare object
address only forwards to its change page). Anything else, an admin page above all, fails.
"""

import pytest
from django.apps import apps
from django.db import connection, transaction
from django.urls import reverse

from tests.security.expected_access import EXPECTED, GET, GET_POST, LOGIN, POST
from tests.security.routes import address, admin_address, all_routes
from tests.security.world import MEMBER, PERSONAS, build_world

pytestmark = pytest.mark.django_db

REFUSALS = {LOGIN, 400, 403, 404, 405, 410}
# Signing in writes the session table; nothing else may change when a request is refused.
UNWATCHED_TABLES = {"django_session"}


@pytest.fixture
def world(settings):
    # Nine people sign up: the deliberately slow production hasher would dominate the run.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return build_world()


def outcome(response):
    """LOGIN is a redirect to sign in that asks to come back (`next=`); signing out also lands on
    the sign-in page, without `next`, and counts as a plain 302."""
    location = response.get("Location", "")
    if response.status_code == 302 and location.startswith(reverse("accounts:login") + "?next="):
        return LOGIN
    return response.status_code


def database_rows():
    """Every row of every table but the session table, compared before and after a refused POST.
    On PostgreSQL one query digests them all; elsewhere the rows themselves are read."""
    models = [
        model
        for model in apps.get_models(include_auto_created=True)
        if model._meta.managed and not model._meta.proxy and model._meta.db_table not in UNWATCHED_TABLES
    ]
    if connection.vendor != "postgresql":
        return {model._meta.label: list(model.objects.order_by("pk").values()) for model in models}
    quote = connection.ops.quote_name
    digests = " UNION ALL ".join(
        f"SELECT {index}, count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "  # noqa: S608
        f"FROM {quote(model._meta.db_table)} t"
        for index, model in enumerate(models)
    )
    with connection.cursor() as cursor:
        cursor.execute(digests)
        return sorted(cursor.fetchall())


def sign_in(client, world, persona):
    client.logout()
    user = world.people[persona]
    if user is not None:
        client.force_login(user, backend="accounts.backends.UserBackend")


def ask(client, world, persona, method, url):
    """One request as `persona`, rolled back afterwards. Sign-in is renewed every time because
    one of the routes is sign-out. A server error is an outcome like any other (500), so one
    broken page shows up in the list of wrong answers instead of hiding the rest."""
    client.raise_request_exception = False
    with transaction.atomic():
        sign_in(client, world, persona)
        before = database_rows() if method == POST else None
        response = client.post(url) if method == "POST" else client.get(url)
        changed = before is not None and database_rows() != before
        transaction.set_rollback(True)
    return outcome(response), changed


def app_routes():
    return [route for route in all_routes() if not route.is_admin]


def test_every_route_has_an_entry():
    enumerated = {route.key for route in app_routes()}
    assert not enumerated - set(EXPECTED), "routes with no entry in tests/security/expected_access.py"
    assert not set(EXPECTED) - enumerated, "entries in tests/security/expected_access.py for no route"


def test_the_table_has_every_persona_for_every_route():
    for key, entry in EXPECTED.items():
        assert tuple(entry.outcomes) == PERSONAS, key
        assert entry.method in (GET, POST, GET_POST), key


@pytest.mark.parametrize("persona", PERSONAS)
def test_each_route_answers_the_persona_as_the_table_says(client, world, persona):
    wrong = []
    for route in app_routes():
        entry = EXPECTED[route.key]
        expected = entry.outcomes[persona]
        url = address(world, route)
        method = POST if entry.method == POST else GET
        got, changed = ask(client, world, persona, method, url)
        if got != expected:
            wrong.append(f"{method} {route.key} ({url}): expected {expected!r}, got {got!r}")
        if changed and expected in REFUSALS:
            wrong.append(f"{method} {route.key} ({url}): refused, yet the database changed")
        if entry.method == GET_POST and (entry.post or expected in REFUSALS):
            expected = entry.post[persona] if entry.post else expected
            got, changed = ask(client, world, persona, POST, url)
            if got != expected or (changed and expected in REFUSALS):
                wrong.append(
                    f"POST {route.key}: expected {expected!r} (a refusal changes nothing), got {got!r}"
                )
    assert not wrong, f"{persona}:\n" + "\n".join(wrong)


def test_post_only_routes_answer_get_with_405(client, world):
    post_only = [route for route in app_routes() if EXPECTED[route.key].method == POST]
    assert post_only
    for route in post_only:
        got, _ = ask(client, world, MEMBER, GET, address(world, route))
        assert got == 405, route.key


def admin_outcome(route, response) -> str:
    """What the admin gave a non-staff persona: its sign-in page and nothing else."""
    location = response.get("Location", "")
    if response.status_code == 302 and location.startswith(reverse("admin:login")):
        return "to admin sign-in"
    if route.key == "admin:login" and response.status_code == 200:
        return "admin sign-in form"
    if route.key == "admin:logout" and response.status_code == 302 and location == reverse("admin:index"):
        return "back to the admin index, which sends them to sign in"
    # Each model's bare object address (unnamed) only forwards to that object's change page,
    # which is a route of its own above.
    if route.key.startswith("unnamed ") and response.status_code == 302 and location.endswith("/change/"):
        return "forwarded to a change page"
    return f"{response.status_code} {location}"


@pytest.mark.parametrize("persona", PERSONAS)
def test_the_admin_site_turns_every_persona_away(client, world, persona):
    routes = [route for route in all_routes() if route.is_admin]
    assert len(routes) > 50  # the resolver really was walked into admin.site.urls
    sign_in(client, world, persona)
    wrong = []
    for route in routes:
        answer = admin_outcome(route, client.get(admin_address(route)))
        if answer[0].isdigit():
            wrong.append(f"{route.key} ({admin_address(route)}): {answer}")
    assert not wrong, "\n".join(wrong)


def test_the_admin_rule_can_tell_an_operator_in(client, world):
    """Otherwise the rule above would pass on an admin site that turned everyone away."""
    operator = world.people[MEMBER]
    operator.is_staff = operator.is_superuser = True
    operator.save()
    client.force_login(operator, backend="accounts.backends.UserBackend")
    assert client.get(reverse("admin:index")).status_code == 200
