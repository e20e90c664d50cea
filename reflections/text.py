"""Members' text as safe HTML: plain text with paragraphs, line breaks and http(s) links.

Everything a member types is escaped first; the only markup we add is <p>, <br> and <a>, and
the result still goes through nh3 with exactly those tags allowed, so a bug in the linkifier
cannot let markup through.
"""

import re
from functools import lru_cache

import nh3
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
# Punctuation that usually ends a sentence rather than a link.
TRAILING = ".,;:!?)]}'\""
PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def _linkify(line: str) -> str:
    parts = []
    position = 0
    for match in URL.finditer(line):
        url = match.group(0).rstrip(TRAILING)
        end = match.start() + len(url)
        parts.append(escape(line[position : match.start()]))
        parts.append(f'<a href="{escape(url)}">{escape(url)}</a>')
        position = end
    parts.append(escape(line[position:]))
    return "".join(parts)


# A thread page renders twenty perspectives that rarely change; the same text always gives the
# same HTML, so recent results are kept (about 1 ms of a page's 10 ms otherwise; at most 512
# texts of up to 10,000 characters).
@lru_cache(maxsize=512)
def render_text(text: str) -> SafeString:
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        return mark_safe("")  # noqa: S308 (empty string)  # nosec B308  # the empty string
    paragraphs = [p.strip("\n") for p in PARAGRAPH_BREAK.split(text) if p.strip()]
    html = "".join("<p>" + "<br>".join(_linkify(line) for line in p.split("\n")) + "</p>" for p in paragraphs)
    cleaned = nh3.clean(
        html,
        tags={"p", "br", "a"},
        attributes={"a": {"href"}},
        url_schemes={"http", "https"},
        link_rel="nofollow noopener noreferrer",
    )
    return mark_safe(cleaned)  # noqa: S308 (escaped above, then sanitised by nh3)  # nosec B308 B703  # as noqa says
