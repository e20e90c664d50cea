"""`python -m faults.seed CIRCLES PER_CIRCLE`: circles with a session open now, and a signed-in cookie
for every person. Prints one JSON line. Runs in a child process against the fault run's database."""

import json
import sys
from datetime import timedelta

import django


def main(circles: int, per_circle: int) -> list[dict]:
    django.setup()
    from django.test import Client
    from django.utils import timezone

    from accounts.models import User
    from circles.models import CircleSession
    from tests.factories import make_circle, make_org

    organisation = make_org("Fault Trust")
    rooms = []
    now = timezone.now()
    for c in range(circles):
        people = [
            User.objects.create_user(
                f"f{c}-{i}@faults.example", None, display_name=f"F{c}-{i}", organisation=organisation
            )
            for i in range(per_circle)
        ]
        circle = make_circle(people[0], name=f"Fault circle {c}", members=people[1:])
        session = CircleSession.objects.create(
            circle=circle,
            occurrence_date=now.date(),
            starts_at=now,
            ends_at=now + timedelta(hours=3),
            facilitator=people[0],
        )
        cookies = []
        for person in people:
            client = Client()
            client.force_login(person, backend="accounts.backends.UserBackend")
            cookies.append(client.cookies["sessionid"].value)
        rooms.append(
            {"session": session.pk, "circle": circle.pk, "cookies": cookies, "users": [p.pk for p in people]}
        )
    return rooms


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), int(sys.argv[2]))))
