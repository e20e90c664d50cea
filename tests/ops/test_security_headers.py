"""Every response carries the strict CSP and the security headers, error pages included."""

import re
from pathlib import Path

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def assert_hardened(response):
    csp = response.headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in response.headers["Permissions-Policy"]


def test_sign_in_page_is_hardened(client):
    response = client.get(reverse("accounts:login"))
    assert response.status_code == 200
    assert_hardened(response)


def test_redirect_to_sign_in_is_hardened(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert_hardened(response)


def test_signed_in_home_is_hardened(client_for, people):
    response = client_for(people.member).get(reverse("home"))
    assert response.status_code == 200
    assert_hardened(response)


def test_not_found_page_is_hardened(client_for, people):
    response = client_for(people.member).get("/no-such-page/")
    assert response.status_code == 404
    assert_hardened(response)


def test_wrong_method_response_is_hardened(client):
    response = client.post(reverse("healthz"))
    assert response.status_code == 405
    assert_hardened(response)


def test_health_check_json_is_hardened(client):
    assert_hardened(client.get(reverse("healthz")))


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
STYLE_ATTRIBUTE = re.compile(r"<[^>]*\sstyle\s*=", re.IGNORECASE)
HANDLER_ATTRIBUTE = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)
STYLE_ELEMENT = re.compile(r"<style[\s>]", re.IGNORECASE)


@pytest.mark.parametrize(
    "template", sorted(TEMPLATES.rglob("*.html")), ids=lambda path: str(path.relative_to(TEMPLATES))
)
def test_template_has_nothing_the_csp_would_block(template):
    source = template.read_text()
    assert not INLINE_SCRIPT.search(source), "inline <script>: load an ES module from /static/ instead"
    assert not STYLE_ELEMENT.search(source), "<style> element: put the rules in a stylesheet"
    assert not STYLE_ATTRIBUTE.search(source), "style= attribute: use a class"
    assert not HANDLER_ATTRIBUTE.search(source), "on*= handler: attach listeners from a module"
