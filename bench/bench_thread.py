"""Thread page against hello-world: requests/s from one server process (config.server), same run.

The page is the demo situation thread with 40 perspectives (the demo's 3 plus 37 added here,
each with affirmations), read by a member of its circle: access check, the thread, its last page
of 20 perspectives with authors and affirmation names, the read marker upsert, crisis resources and
the template with every perspective's text sanitised. Target: at least a quarter of hello-world.
"""

import subprocess
import sys

from bench.harness import HELLO_PATH, ROOT, compare, served_product, write_doc_section

MEMBER = "alex@riverside.example"
EXTRA_PERSPECTIVES = 37


def grow_thread() -> None:
    """Runs in `manage.py shell` against the bench's fresh database, before the server starts."""
    from accounts.models import User
    from reflections.demo import SITUATION
    from reflections.models import Affirmation, Reply, Thread

    thread = Thread.objects.get(title=SITUATION)
    people = list(User.objects.filter(memberships__circle=thread.circle, memberships__left_at__isnull=True))
    body = "A perspective, with a link https://example.org/{}\n\nand a second paragraph."
    replies = Reply.objects.bulk_create(
        Reply(thread=thread, author=people[i % len(people)], body=body.format(i))
        for i in range(EXTRA_PERSPECTIVES)
    )
    Affirmation.objects.bulk_create(
        Affirmation(user=person, reply=reply)
        for reply in replies
        for person in people[:3]
        if person != reply.author
    )


def thread_id() -> int:
    from reflections.demo import SITUATION
    from reflections.models import Thread

    return Thread.objects.get(title=SITUATION).pk


def _shell(code: str) -> tuple[str, ...]:
    return ("shell", "-c", code)


def run() -> list[dict]:
    with served_product(setup=[_shell("from bench.bench_thread import grow_thread; grow_thread()")]) as site:
        thread_id = subprocess.run(
            [
                sys.executable,
                str(ROOT / "manage.py"),
                *_shell("from bench.bench_thread import thread_id; print(thread_id())"),
            ],
            cwd=ROOT,
            env=site.environment,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()[-1]
        cookie = site.sign_in(MEMBER)
        row = compare(
            site,
            name="thread page (40 perspectives, 20 shown)",
            path=f"/threads/{thread_id}/",
            baseline_name="hello world",
            baseline_path=HELLO_PATH,
            cookie=cookie,
            target="ratio >= 0.25",
        )
    write_doc_section("bench_thread", "Reflection thread page", [row], database=site.environment)
    return [row]


if __name__ == "__main__":
    for result in run():
        print(result)
