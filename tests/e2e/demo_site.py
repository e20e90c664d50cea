"""The demo organisation as a site to walk: who signs in, which links a walk follows, the walk itself.

Used by the accessibility check (Chromium + axe-core) and the security headers check (test client):
both visit every page reachable from each persona's home by following same-origin links, breadth
first, GET only, and never a link that signs out, erases, exports or downloads.
"""

import importlib
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlsplit

from django.apps import apps
from django.utils import timezone

from config.demo import seed_demo

# The demo personas worth signing in as (keys of accounts.demo.PEOPLE), plus nobody at all.
PERSONAS = {
    "anonymous": None,
    "member": "member",
    "facilitator": "facilitator",
    "manager": "manager",
    "org admin": "admin",
}
# Links a walk leaves alone: they end the visit, destroy or hand over data, or are not pages.
NOT_FOLLOWED = re.compile(
    r"sign-out|logout|erase|export|download|unsubscribe|\.ics$|\.csv$|\.json$|^/admin/|^/static/"
)
# The data migrations a transactional test's flush takes away; the demo needs them back.
SHIPPED_DATA = [
    ("circles.migrations.0002_default_ips_template", "create_default_template"),
    ("reflections.migrations.0002_seed_ips_prompts", "seed_prompts"),
]


def build_demo() -> dict:
    """Seed the demo organisation (as `manage.py seed_demo` does) and return {persona: user or None}.

    Each circle's next session is moved to start in five minutes, as if the demo were opened just
    before it: join buttons show and the live rooms are part of the walk."""
    from circles.models import CircleSession
    from insights.services import rollups_rebuild

    for module, function in SHIPPED_DATA:
        getattr(importlib.import_module(module), function)(apps, None)
    demo = seed_demo()
    now = timezone.now()
    for circle in demo.organisation.circles.all():
        upcoming = circle.sessions.filter(starts_at__gt=now, status=CircleSession.Status.SCHEDULED)
        session = upcoming.order_by("starts_at").first()
        if session is not None:
            length = session.ends_at - session.starts_at
            session.starts_at = now + timedelta(minutes=5)
            session.ends_at = session.starts_at + length
            session.save(update_fields=["starts_at", "ends_at"])
    # What the nightly task would have built by now, so managers see their summaries filled in.
    rollups_rebuild(organisation=demo.organisation)
    return {persona: demo.people[key] if key else None for persona, key in PERSONAS.items()}


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def links_in(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.hrefs


def page_key(url: str, base_url: str) -> str | None:
    """The path a walk would visit for this href, or None when it stays off it. Query strings are
    dropped: they pick a prompt or a page of the same template (51 prompt links lead to one form)."""
    absolute, _fragment = urldefrag(urljoin(base_url, url))
    parts = urlsplit(absolute)
    base = urlsplit(base_url)
    if parts.scheme not in {"http", "https"} or parts.netloc != base.netloc:
        return None
    if NOT_FOLLOWED.search(parts.path):
        return None
    return parts.path


@dataclass
class Visit:
    path: str
    status: int
    html: str


def walk(fetch: Callable[[str], Visit], start: str = "/", base_url: str = "http://testserver") -> list[Visit]:
    """Breadth-first over same-origin links. `fetch(path)` GETs a page (following redirects) and
    returns what was shown; each distinct path is visited once."""
    seen = {start}
    queue = deque([start])
    visits = []
    while queue:
        visit = fetch(queue.popleft())
        visits.append(visit)
        for href in links_in(visit.html):
            key = page_key(href, urljoin(base_url, visit.path))
            if key is not None and key not in seen:
                seen.add(key)
                queue.append(key)
    return visits
