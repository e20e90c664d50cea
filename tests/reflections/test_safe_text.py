"""Members' text can never carry script, whatever they type."""

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from reflections import services
from reflections.text import render_text

PAYLOADS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    '<img src=x onerror="alert(1)">',
    "<img src=x onerror=alert(1)//",
    "<svg/onload=alert(1)>",
    '<svg><script href="data:,alert(1)" /></svg>',
    '<a href="javascript:alert(1)">click</a>',
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    '<iframe src="https://evil.example"></iframe>',
    '<div style="background:url(javascript:alert(1))">x</div>',
    "<body onload=alert(1)>",
    '"><script>alert(1)</script>',
    'https://ok.example/"onmouseover="alert(1)',
    "https://ok.example/'><script>alert(1)</script>",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<details open ontoggle=alert(1)>",
    '<a href="https://ok.example" onclick="alert(1)">x</a>',
    "<<script>script>alert(1)<</script>/script>",
    "<object data=javascript:alert(1)>",
    "<form action=javascript:alert(1)><button>go</button></form>",
    "\u003cscript\u003ealert(1)\u003c/script\u003e",
]


class Elements(HTMLParser):
    """The elements and attributes a browser would build from the HTML (text is only text)."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def assert_inert(html: str, allowed_tags=frozenset({"p", "br", "a"})) -> None:
    for tag, attributes in Elements(html).elements:
        assert tag in allowed_tags, html
        assert not any(name.startswith("on") for name in attributes), html
        if tag == "a":
            assert set(attributes) <= {"href", "rel"}, html
            assert attributes["href"].startswith(("http://", "https://")), html


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payload_renders_as_inert_text(payload):
    assert_inert(render_text(payload))
    assert_inert(render_text(f"Hello\n\n{payload}\nhttps://ok.example/{payload}"))


def test_paragraphs_line_breaks_and_links_render():
    html = render_text("First line\nsecond line\n\nSee https://example.org/a?b=1&c=2.")
    assert html == (
        "<p>First line<br>second line</p>"
        '<p>See <a href="https://example.org/a?b=1&amp;c=2" rel="nofollow noopener noreferrer">'
        "https://example.org/a?b=1&amp;c=2</a>.</p>"
    )


def test_only_http_and_https_become_links():
    assert "<a" not in render_text("ftp://example.org and mailto:a@b.c and javascript:alert(1)")


@pytest.mark.django_db
@pytest.mark.parametrize("payload", PAYLOADS)
def test_payloads_in_every_field_of_a_thread_page_stay_inert(payload, circle_people, client_for):
    thread = services.thread_create(
        author=circle_people.member,
        circle=circle_people.circle,
        kind="situation",
        title=payload,
        body=payload,
    )
    services.thread_set_takeaway(thread=thread, takeaway=payload)
    services.reply_create(author=circle_people.bea, thread=thread, body=payload)
    content = (
        client_for(circle_people.bea).get(reverse("reflections:thread", args=[thread.pk])).content.decode()
    )
    main = content[content.index("<main") : content.index("</main>")]
    for tag, attributes in Elements(main).elements:
        assert tag not in {"script", "svg", "iframe", "img", "object", "math", "details", "body"}, tag
        assert not any(name.startswith("on") for name in attributes), (tag, attributes)
        for name in ("href", "src", "action"):
            value = (attributes.get(name) or "").strip().lower()
            assert not value.startswith(("javascript", "data")), attributes
