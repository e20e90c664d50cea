"""Manager insights: the overview page for a large organisation, and refreshing one month's rollups.

The demo organisation grows by 10,000 members in 500 teams of 20, sitting in 1,250 circles of 8
that met weekly for two years: about 130,000 sessions and 1,000,000 attendance rows, written
with COPY (Postgres only). The page is the admin's overview of
the latest complete month: 20 teams of 500 on the page, the total over all of them, the chart,
and the audit row each look writes. Targets: at least a quarter of hello-world, and refreshing
the new (current) month in at most 5 % of the time of a full rebuild.
"""

import json
import os
import random
import subprocess
import sys
import time
from datetime import timedelta

from bench.harness import HELLO_PATH, ROOT, compare, served_product, write_doc_section

ADMIN = "ada@riverside.example"
MEMBERS = 10_000
TEAM_SIZE = 20
CIRCLE_SIZE = 8
WEEKS = 104
ATTENDANCE_ROWS = 1_000_000
BATCH = 10_000


def _copy(table: str, columns: list[str], rows) -> None:
    from django.db import connection

    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


def seed() -> None:
    """Runs in `manage.py shell` against the bench's fresh database, before the server starts."""
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import Team, User
    from circles.models import Circle, CircleSession, Membership, SessionTemplate
    from insights.services import rollups_rebuild

    rng = random.Random(7)
    admin = User.objects.get(email=ADMIN)
    organisation = admin.organisation
    now = timezone.now()
    long_ago = now - timedelta(weeks=WEEKS + 4)
    with transaction.atomic():
        teams = Team.objects.bulk_create(
            Team(organisation=organisation, name=f"Bench team {n:03d}") for n in range(MEMBERS // TEAM_SIZE)
        )
        people = User.objects.bulk_create(
            (
                User(
                    email=f"bench{n}@bench.example",
                    display_name=f"Bench person {n}",
                    organisation=organisation,
                    team=teams[n // TEAM_SIZE],
                    password="!",
                )
                for n in range(MEMBERS)
            ),
            batch_size=BATCH,
        )
        template = SessionTemplate.objects.filter(organisation=None).first()
        circles = Circle.objects.bulk_create(
            Circle(
                organisation=organisation,
                name=f"Bench circle {n}",
                template=template,
                time_zone=organisation.time_zone,
                start_date=long_ago.date(),
                start_time=long_ago.time(),
            )
            for n in range(MEMBERS // CIRCLE_SIZE)
        )
        # Circles mix teams, as cohort mixing does.
        shuffled = people[:]
        rng.shuffle(shuffled)
        members = {
            circle.pk: shuffled[i * CIRCLE_SIZE : (i + 1) * CIRCLE_SIZE] for i, circle in enumerate(circles)
        }
        Membership.objects.bulk_create(
            (
                Membership(circle_id=circle_id, user=person, joined_at=long_ago)
                for circle_id, group in members.items()
                for person in group
            ),
            batch_size=BATCH,
        )
        first = now - timedelta(weeks=WEEKS)
        session_rows = [
            (circle.pk, (first + timedelta(weeks=week)).date(), first + timedelta(weeks=week, hours=i % 9))
            for week in range(WEEKS)
            for i, circle in enumerate(circles)
        ]
        _copy(
            "circles_circlesession",
            [
                "circle_id",
                "occurrence_date",
                "starts_at",
                "ends_at",
                "status",
                "moved",
                "change_reason",
                "revision",
                "unplanned",
                "created_at",
                "updated_at",
            ],
            (
                (circle_id, day, start, start + timedelta(hours=1), "ended", False, "", 0, False, now, now)
                for circle_id, day, start in session_rows
            ),
        )
        sessions = CircleSession.objects.filter(
            circle__organisation=organisation, circle__name__startswith="Bench"
        )
        seats = len(session_rows) * CIRCLE_SIZE
        keep = ATTENDANCE_ROWS / seats

        # Read the sessions first: the connection cannot fetch rows while it is copying.
        planned = list(sessions.values_list("pk", "circle_id", "starts_at"))

        def attendance():
            for session_id, circle_id, starts_at in planned:
                for person in members[circle_id]:
                    if rng.random() < keep:
                        yield (session_id, person.pk, starts_at, starts_at + timedelta(minutes=55))

        _copy("circles_attendance", ["session_id", "user_id", "joined_at", "left_at"], attendance())
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    rollups_rebuild(organisation=organisation)


def refresh_timings() -> None:
    """Prints {"month": s, "rebuild": s, "months": n, "attendance": n} for the admin's organisation."""
    from django.utils import timezone

    from accounts.models import User
    from circles.models import Attendance
    from insights.models import TeamMonthRollup
    from insights.services import month_start, rollup_refresh_month, rollups_rebuild

    organisation = User.objects.get(email=ADMIN).organisation
    import zoneinfo

    current = month_start(timezone.now(), zoneinfo.ZoneInfo(organisation.time_zone))
    month_times, rebuild_times = [], []
    for _ in range(3):
        started = time.perf_counter()
        rollup_refresh_month(organisation=organisation, month=current)
        month_times.append(time.perf_counter() - started)
    started = time.perf_counter()
    rollups_rebuild(organisation=organisation)
    rebuild_times.append(time.perf_counter() - started)
    months = TeamMonthRollup.objects.filter(organisation=organisation).values("month").distinct().count()
    print(
        json.dumps(
            {
                "month": sorted(month_times)[1],
                "rebuild": rebuild_times[0],
                "months": months,
                "attendance": Attendance.objects.filter(session__circle__organisation=organisation).count(),
            }
        )
    )


def _shell(site_environment: dict, code: str) -> str:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "shell", "-c", code],
        cwd=ROOT,
        env=site_environment,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def run() -> list[dict]:
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        # A million rows are written with COPY, and the figures are about the production database.
        print("bench_insights needs Postgres: set DATABASE_URL=postgres://...", file=sys.stderr)
        return []
    with served_product(setup=[("shell", "-c", "from bench.bench_insights import seed; seed()")]) as site:
        cookie = site.sign_in(ADMIN)
        page = compare(
            site,
            name="insights overview (10,000 members, 1,000,000 attendance rows)",
            path="/insights/",
            baseline_name="hello world",
            baseline_path=HELLO_PATH,
            cookie=cookie,
            target="ratio >= 0.25",
        )
        timings = json.loads(
            _shell(site.environment, "from bench.bench_insights import refresh_timings; refresh_timings()")
            .strip()
            .splitlines()[-1]
        )
    refresh = {
        "name": f"insights refresh of the new month vs full rebuild ({timings['months']} months, "
        f"{timings['attendance']:,} attendance rows)",
        "unit": "s",
        "value": round(timings["month"], 3),
        "baseline_name": "full rebuild",
        "baseline_value": round(timings["rebuild"], 3),
        "ratio": round(timings["month"] / timings["rebuild"], 4),
        "target": "ratio <= 0.05",
    }
    write_doc_section("bench_insights", "Insights", [page], database=site.environment)
    _append_refresh(refresh, site.environment)
    return [page, refresh]


def _append_refresh(row: dict, environment: dict) -> None:
    """The refresh figure joins the section write_doc_section just wrote (it is not a page)."""
    from bench.harness import DOC

    variant = "postgres" if environment.get("DATABASE_URL") else "sqlite"
    end = f"<!-- bench_insights:{variant}:end -->"
    line = (
        f"\nRollup refresh (one process, same database): the new month in {row['value']} s against a full "
        f"rebuild in {row['baseline_value']} s: ratio {row['ratio']} (target {row['target']}). "
        "The full rebuild recomputes every month since the first session; the month refresh is what "
        "runs when a session ends.\n"
    )
    text = DOC.read_text()
    DOC.write_text(text.replace(end, line + end))


if __name__ == "__main__":
    for result in run():
        print(result)
