"""Every HTTP route of the product, read from the URL resolver, and a real address for each."""

import re
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.security.world import url_kwargs

ADMIN_PREFIX = "admin/"


@dataclass(frozen=True)
class Route:
    key: str  # "namespace:name"; an unnamed route is keyed by its pattern
    pattern: str  # the whole pattern, prefixes included, as the resolver spells it
    kwargs: tuple[str, ...]

    @property
    def is_admin(self) -> bool:
        return self.pattern.startswith(ADMIN_PREFIX)


def _kwarg_names(pattern) -> tuple[str, ...]:
    return tuple(pattern.regex.groupindex)


def _walk(resolver: URLResolver, prefix: str, namespace: str | None, kwargs: tuple[str, ...]):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = namespace
            if entry.namespace:
                inner = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
            yield from _walk(entry, prefix + str(entry.pattern), inner, kwargs + _kwarg_names(entry.pattern))
        elif isinstance(entry, URLPattern):
            pattern = prefix + str(entry.pattern)
            if entry.name:
                key = f"{namespace}:{entry.name}" if namespace else entry.name
            else:
                key = f"unnamed {pattern}"
            yield Route(key, pattern, kwargs + _kwarg_names(entry.pattern))


def all_routes() -> list[Route]:
    """Every route, recursively through every include(), in resolver order."""
    return list(_walk(get_resolver(), "", None, ()))


def address(world, route: Route) -> str:
    return reverse(route.key, kwargs=url_kwargs(world, route.key, route.kwargs))


# The admin's own kwargs: any object id will do (nobody in the matrix gets past the admin's login).
def admin_address(route: Route) -> str:
    if not route.key.startswith("unnamed "):
        kwargs = {}
        for name in route.kwargs:
            if name == "app_label":
                kwargs[name] = re.search(r"\(\?P<app_label>([^)|]*)", route.pattern).group(1)
            else:
                kwargs[name] = "1"
        return reverse(route.key, kwargs=kwargs)
    if "(?P<url>" in route.pattern:
        return "/admin/no-such-page/"
    return "/" + re.sub(r"<[^>]+>", "1", route.pattern)
