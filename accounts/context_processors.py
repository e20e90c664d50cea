from functools import lru_cache

from django.urls import get_script_prefix, reverse


def capabilities(request):
    """Navigation by capability: each person sees the places their capabilities open."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    items, notifications_url = _places(user.is_org_admin, user.is_member, get_script_prefix())
    path = request.path
    return {
        "nav_items": [
            {
                "label": label,
                "url": url,
                "current": path == url or (url != "/" and path.startswith(url)),
                "badge": url == notifications_url,
            }
            for label, url in items
        ]
    }


@lru_cache(maxsize=16)
def _places(is_org_admin: bool, is_member: bool, script_prefix: str) -> tuple[tuple, str]:
    """The menu for one combination of capabilities: the same addresses on every page, reversed once
    (a dozen reverse() calls were a tenth of a millisecond a page)."""
    items = [("Home", reverse("home")), ("Circles", reverse("circles:circle-list"))]
    if is_org_admin:
        items.append(("People", reverse("accounts:people")))
        items.append(("Organisation", reverse("accounts:organisation")))
    # Managers reach their teams' insights from "what my manager sees": asking here whether
    # someone manages a team would cost a query on every page.
    items.append(("Insights", reverse("insights:overview" if is_org_admin else "insights:my-team")))
    if is_member:
        items.append(("Moving towards", reverse("reflections:intentions")))
    items.append(("Journal", reverse("reflections:journal")))
    items.append(("Prompts", reverse("reflections:prompts")))
    items.append(("My profile", reverse("accounts:profile")))
    items.append(("My data", reverse("reflections:my-data")))
    # The unread count is not read here (that would add a query to every page): badge.js asks for it.
    notifications_url = reverse("notifications:list")
    items.append(("Notifications", notifications_url))
    return tuple(items), notifications_url
