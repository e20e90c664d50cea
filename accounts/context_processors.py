from django.urls import reverse


def capabilities(request):
    """Navigation by capability: each person sees the places their capabilities open."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    items = [("Home", reverse("home")), ("Circles", reverse("circles:circle-list"))]
    if user.is_org_admin:
        items.append(("People", reverse("accounts:people")))
        items.append(("Organisation", reverse("accounts:organisation")))
    # Managers reach their teams' insights from "what my manager sees": asking here whether
    # someone manages a team would cost a query on every page.
    items.append(("Insights", reverse("insights:overview" if user.is_org_admin else "insights:my-team")))
    if user.is_member:
        items.append(("Moving towards", reverse("reflections:intentions")))
    items.append(("Journal", reverse("reflections:journal")))
    items.append(("Prompts", reverse("reflections:prompts")))
    items.append(("My profile", reverse("accounts:profile")))
    items.append(("My data", reverse("reflections:my-data")))
    # The unread count is not read here (that would add a query to every page): badge.js asks for it.
    notifications_url = reverse("notifications:list")
    items.append(("Notifications", notifications_url))
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
