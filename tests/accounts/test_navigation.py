"""The menu follows each person's capabilities (accounts/context_processors.py)."""

import pytest
from django.test import RequestFactory
from django.urls import reverse

from accounts.context_processors import capabilities
from tests.factories import make_org, make_person


def _menu(user, path="/"):
    request = RequestFactory().get(path)
    request.user = user
    return {item["label"]: item for item in capabilities(request)["nav_items"]}


@pytest.mark.django_db
def test_each_person_sees_the_places_their_capabilities_open():
    organisation = make_org()
    admin = make_person(organisation, is_org_admin=True, is_member=False)
    member = make_person(organisation, is_member=True)

    admins_menu, members_menu = _menu(admin), _menu(member)  # one after the other: kept apart

    assert {"People", "Organisation"} <= admins_menu.keys()
    assert "Moving towards" not in admins_menu
    assert admins_menu["Insights"]["url"] == reverse("insights:overview")
    assert "Moving towards" in members_menu
    assert not {"People", "Organisation"} & members_menu.keys()
    assert members_menu["Insights"]["url"] == reverse("insights:my-team")
    assert _menu(admin).keys() == admins_menu.keys()


@pytest.mark.django_db
def test_the_current_place_and_the_notification_badge_are_marked():
    member = make_person(make_org(), is_member=True)
    menu = _menu(member, path=reverse("reflections:journal"))
    assert menu["Journal"]["current"] and not menu["Circles"]["current"]
    assert not menu["Home"]["current"]  # "/" is current only on the home page itself
    assert [label for label, item in menu.items() if item["badge"]] == ["Notifications"]


def test_no_menu_for_someone_signed_out():
    from django.contrib.auth.models import AnonymousUser

    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    assert capabilities(request) == {}
