"""Reading back what a person can reach in insights: every page and export, as table rows."""

import csv
import io
from html.parser import HTMLParser

from django.urls import reverse

from insights import selectors


class _TableRows(HTMLParser):
    """Rows of the insights tables as lists of cell texts, the row heading first."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._in_table = False

    def handle_starttag(self, tag, attrs):
        if tag == "table" and ("class", "insights-table") in attrs:
            self._in_table = True
        elif self._in_table and tag == "tr":
            self._row = []
        elif self._row is not None and tag in ("th", "td"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_table = False
        elif tag in ("th", "td") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if any(cell for cell in self._row[1:]) and self._row[0] not in ("Team", "Month"):
                self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def html_rows(content: bytes) -> list[list[str]]:
    parser = _TableRows()
    parser.feed(content.decode())
    return parser.rows


def csv_rows(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode())))[1:]


def reachable_urls(user) -> list[str]:
    """Every insights page and export `user` can open (as the pages link them)."""
    urls = [reverse("insights:my-team")]
    scope = selectors.scope_for_user(user)
    if scope.is_viewer:
        urls.append(reverse("insights:overview"))
        for month in scope.months:
            urls.append(reverse("insights:month", args=[f"{month:%Y-%m}"]))
            urls.append(reverse("insights:month-csv", args=[f"{month:%Y-%m}"]))
        for group in scope.visible:
            urls.append(reverse("insights:group", args=[group.key]))
            urls.append(reverse("insights:group-csv", args=[group.key]))
    return urls
