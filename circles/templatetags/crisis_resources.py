"""The organisation's crisis resources, on every circle page: `{% crisis_resources organisation %}`.

The links are read on every page (one query), so an edit shows at once. Rendering them cost
about 0.3 ms a page (the include, the loop, linebreaksbr), so the rendered fragment is kept per
exact content: the key is the text and the links themselves, never stale and never another
organisation's.
"""

from functools import lru_cache

from django import template
from django.template.loader import render_to_string
from django.utils.safestring import SafeString

from accounts.models import Organisation

register = template.Library()


@register.simple_tag
def crisis_resources(organisation: Organisation) -> SafeString:
    links = tuple(organisation.crisis_links.values_list("label", "url", "phone", named=True))
    return _rendered(organisation.crisis_text, links)


@lru_cache(maxsize=256)
def _rendered(crisis_text: str, links: tuple) -> SafeString:
    return render_to_string("circles/_crisis_resources.html", {"crisis_text": crisis_text, "links": links})
