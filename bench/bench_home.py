"""Signed-in home page against hello-world: requests/s from one server process (config.server), same run.

The home page is what every person lands on after signing in; the issue's target is at least
a quarter of the throughput of a view that does nothing. The hello-world requests are anonymous
(no session to load or save), so the ratio counts everything a signed-in page costs: the
session, the user, the page's queries and its template.
"""

from bench.harness import HELLO_PATH, compare, served_product, write_doc_section

MEMBER = "alex@riverside.example"


def run() -> list[dict]:
    with served_product() as site:
        cookie = site.sign_in(MEMBER)
        row = compare(
            site,
            name="signed-in home page",
            path="/",
            baseline_name="hello world",
            baseline_path=HELLO_PATH,
            cookie=cookie,
            target="ratio >= 0.25",
        )
    write_doc_section("bench_home", "Signed-in home page", [row], database=site.environment)
    return [row]


if __name__ == "__main__":
    for result in run():
        print(result)
