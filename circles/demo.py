"""Seed steps for demo circles (see config/demo.py): three circles with members, a few past
sessions and the coming twelve weeks planned, so `make run` has something to show; and a small
mixing cohort, planned and waiting to be published.

No line manager shares a circle with someone they manage (accounts.demo.LINE_MANAGEMENT).
Running it again changes nothing: circles are found by name, sessions by date.
"""

from datetime import date, time, timedelta

from django.utils import timezone

from circles import cohorts, scheduling, services
from circles.models import Circle, CircleSession, Cohort, Membership, SessionTemplate
from config.demo import DemoData

PAST_SESSIONS = 3
# name, purpose, facilitator key, member keys, frequency, interval, week of month, weekday, time
CIRCLES = [
    (
        "Tuesday reflection circle",
        "A weekly hour to slow down and think about our work together, as peers.",
        "facilitator_community",
        ["member", "crisis_3", "crisis_4", "crisis_5", "peer_2"],
        Circle.Frequency.WEEKLY,
        1,
        None,
        1,
        time(14, 0),
    ),
    (
        "Thursday practice circle",
        "Bringing the moments that stayed with us, and hearing how others see them.",
        "facilitator",
        ["community_2", "community_3", "peer_3", "peer_4"],
        Circle.Frequency.EVERY_N_WEEKS,
        2,
        None,
        3,
        time(12, 30),
    ),
    (
        "Monthly peer circle",
        "Once a month, a longer circle on what we are moving towards.",
        "facilitator_peer",
        ["member", "crisis_2", "community_4", "community_5", "peer_5"],
        Circle.Frequency.MONTHLY_NTH_WEEKDAY,
        1,
        1,
        2,
        time(18, 0),
    ),
]


def _first_on_or_after(day: date, weekday: int) -> date:
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def seed_circles(demo: DemoData) -> None:
    template = SessionTemplate.objects.filter(organisation=None).order_by("pk").first()
    now = timezone.now()
    started = now.date() - timedelta(weeks=PAST_SESSIONS * 4 + 1)
    joined = now - timedelta(weeks=PAST_SESSIONS * 4 + 2)
    for name, purpose, lead, members, frequency, interval, week, weekday, at in CIRCLES:
        circle, _ = Circle.objects.get_or_create(
            organisation=demo.organisation,
            name=name,
            defaults={
                "purpose": purpose,
                "time_zone": "Europe/London",
                "frequency": frequency,
                "interval_weeks": interval,
                "week_of_month": week,
                "start_date": _first_on_or_after(started, weekday),
                "start_time": at,
                "duration_minutes": 75 if frequency == Circle.Frequency.MONTHLY_NTH_WEEKDAY else 60,
                "template": template,
                "created_by": demo.people[lead],
            },
        )
        for key in [lead, *members]:
            Membership.objects.get_or_create(
                circle=circle,
                user=demo.people[key],
                left_at=None,
                defaults={
                    "role": Membership.Role.FACILITATOR if key == lead else Membership.Role.MEMBER,
                    "rota_opt_in": True,
                    "joined_at": joined,
                },
            )
        _seed_past_sessions(circle, [demo.people[key] for key in [lead, *members]])
        services.circle_materialise(circle_id=circle.pk, now=now)


def _seed_past_sessions(circle: Circle, people: list) -> None:
    """A few sessions that have happened, so home pages show history and the rota has turns."""
    past = circle.sessions.filter(starts_at__lte=timezone.now()).count()
    if past:
        return
    cadence = scheduling.Cadence.of(circle)
    today = timezone.now().date()
    held = [
        o
        for o in scheduling.occurrences(cadence, start=circle.start_date, end=today - timedelta(days=1))
        if o.ends_at < timezone.now()
    ][-PAST_SESSIONS:]
    CircleSession.objects.bulk_create(
        [
            CircleSession(
                circle=circle,
                occurrence_date=o.date,
                starts_at=o.starts_at,
                ends_at=o.ends_at,
                status=CircleSession.Status.ENDED,
                # The opening session is nobody's turn: everyone is new to the circle then.
                facilitator=people[index] if index else None,
            )
            for index, o in enumerate(held)
        ],
        ignore_conflicts=True,
    )


# A small cohort, planned but not published: the facilitator persona can preview it cycle by
# cycle and publish it. Jordan Reilly line-manages Kai Thompson (accounts.demo.LINE_MANAGEMENT),
# so the preview shows that pair kept apart in every cycle.
COHORT_NAME = "Spring mixing cohort"
COHORT_MEMBERS = [
    "facilitator_peer",
    "peer_1",
    "peer_2",
    "peer_3",
    "crisis_2",
    "crisis_3",
    "crisis_4",
    "community_1",
    "community_2",
    "community_3",
    "community_4",
    "community_5",
]


def seed_cohort(demo: DemoData) -> None:
    """Plan once (half a second's search); running the seed again finds the cohort and leaves it."""
    if Cohort.objects.filter(organisation=demo.organisation, name=COHORT_NAME).exists():
        return
    facilitator = demo.people["facilitator"]
    cohort = cohorts.cohort_create(
        actor=facilitator,
        template=SessionTemplate.objects.filter(organisation=None).order_by("pk").first(),
        members=[demo.people[key] for key in COHORT_MEMBERS],
        name=COHORT_NAME,
        circle_size=4,
        cycles=3,
        cycle_weeks=4,
        start_date=_first_on_or_after(timezone.now().date() + timedelta(days=7), 2),
        time_zone="Europe/London",
        start_time=time(10, 0),
        duration_minutes=60,
    )
    cohorts.cohort_plan(actor=facilitator, cohort=cohort, seconds=0.5, seed=7)
