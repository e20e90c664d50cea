import pytest
from django.urls import reverse

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_member_signs_in_by_email_in_any_case(client, people):
    response = client.post(
        reverse("accounts:login"), {"username": people.member.email.upper(), "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response.url == reverse("home")


def test_anonymous_visitor_is_sent_to_sign_in_from_home(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login"))


def test_wrong_password_gets_generic_message(client, people):
    response = client.post(reverse("accounts:login"), {"username": people.member.email, "password": "nope"})
    assert response.status_code == 200
    assert "did not match an active account" in response.content.decode()


def test_sign_in_is_throttled_after_five_failures_with_the_same_generic_message(client, people):
    for _ in range(5):
        client.post(reverse("accounts:login"), {"username": people.member.email, "password": "wrong"})
    response = client.post(reverse("accounts:login"), {"username": people.member.email, "password": PASSWORD})
    assert response.status_code == 429
    assert "did not match an active account" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_deactivated_person_cannot_sign_in(client, people):
    people.member.is_active = False
    people.member.save()
    response = client.post(reverse("accounts:login"), {"username": people.member.email, "password": PASSWORD})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_every_response_carries_the_strict_csp(client):
    response = client.get(reverse("accounts:login"))
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
