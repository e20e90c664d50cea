"""Reads behind the cohort pages: the list, the people to choose from, and the plan preview.

Only facilitators and organisation admins reach these (circles.access.get_cohort_for_user), so the
preview may name people: it shows who sits with whom, never anything said in a circle.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime

from django.db.models import Count, Q, QuerySet

from accounts.models import User
from circles import cohorts
from circles.mixing import evaluate_rounds
from circles.models import Cohort, Membership


def cohorts_for_user(user: User) -> QuerySet[Cohort]:
    """The organisation's cohorts, each with its number of people: one query."""
    return (
        Cohort.objects.filter(organisation_id=user.organisation_id)
        .annotate(member_count=Count("memberships", distinct=True))
        .only(
            "id", "name", "circle_size", "cycles", "cycle_weeks", "start_date", "planned_at", "published_at"
        )
    )


def cohort_candidates(organisation_id: int, cohort: Cohort | None = None) -> QuerySet[User]:
    """People who can be in a cohort, plus its current members (so a form shows who is in it)."""
    can_join = Q(organisation_id=organisation_id, is_active=True, is_member=True)
    if cohort is not None:
        can_join |= Q(pk__in=cohort.memberships.values("user_id"))
    return User.objects.filter(can_join).only("id", "display_name").order_by("display_name", "id")


def cohort_people(cohort: Cohort) -> QuerySet[User]:
    return User.objects.filter(pk__in=cohort.memberships.values("user_id")).order_by("display_name", "id")


@dataclass
class PreviewCircle:
    people: list[str]
    has_facilitator: bool


@dataclass
class PreviewCycle:
    index: int
    starts_on: date
    ends_on: date
    started: bool
    publication: str  # "published", "changed" (plan differs from the circles) or "" (not published)
    circles: list[PreviewCircle] = field(default_factory=list)
    pairs: int = 0
    new_pairs: int = 0
    repeats: int = 0
    violations: int = 0

    @property
    def number(self) -> int:
        return self.index + 1

    @property
    def new_pair_percent(self) -> int:
        return round(100 * self.new_pairs / self.pairs) if self.pairs else 100


@dataclass
class Preview:
    cycles: list[PreviewCycle]
    repeats: int
    violations: int
    problems: list[str]


def cohort_preview(cohort: Cohort, *, now: datetime) -> Preview:
    """Each cycle's circles (names), share of new pairs, repeats and constraint violations.

    Violations count forbidden pairs sharing a circle and people seated in a cycle they sit out;
    the planner never makes one, so anything above 0 comes from a cycle that had already started
    when a constraint was added.
    """
    placements = list(
        cohort.placements.select_related("user").only(
            "cycle", "group", "user__id", "user__display_name", "user__is_facilitator"
        )
    )
    rounds: dict[int, dict[int, list[User]]] = defaultdict(lambda: defaultdict(list))
    for row in placements:
        rounds[row.cycle][row.group].append(row.user)
    user_ids = sorted({row.user_id for row in placements})
    index = {u: i for i, u in enumerate(user_ids)}
    forbidden = cohorts.forbidden_pairs(cohort, user_ids)
    away = set(cohort.unavailability.values_list("cycle", "user_id"))
    published: dict[int, list[set[int]]] = defaultdict(list)
    links = dict(cohort.published_circles.values_list("circle_id", "cycle"))
    members: dict[int, set[int]] = defaultdict(set)
    for circle_id, user_id in Membership.objects.filter(
        circle_id__in=links, left_at__isnull=True
    ).values_list("circle_id", "user_id"):
        members[circle_id].add(user_id)
    for circle_id, cycle in links.items():
        published[cycle].append(members[circle_id])

    as_indices = [
        [[index[p.pk] for p in group] for _, group in sorted(rounds.get(cycle, {}).items())]
        for cycle in range(cohort.cycles)
    ]
    # Pairs involving someone not in the plan (a keep-apart added before planning) cannot be broken.
    pairs = [(index[a], index[b]) for a, b in forbidden if a in index and b in index]
    stats, repeats = evaluate_rounds(as_indices, forbidden=pairs)
    started = cohorts.started_cycles(cohort, now)
    cycles = []
    for cycle, figures in enumerate(stats):
        groups = [group for _, group in sorted(rounds.get(cycle, {}).items())]
        planned = sorted(frozenset(p.pk for p in g) for g in groups)
        if not published.get(cycle):
            publication = ""
        elif sorted(frozenset(s) for s in published[cycle]) == planned:
            publication = "published"
        else:
            publication = "changed"
        cycles.append(
            PreviewCycle(
                index=cycle,
                starts_on=cohorts.cycle_start(cohort, cycle),
                ends_on=cohorts.cycle_end(cohort, cycle),
                started=cycle < started,
                publication=publication,
                circles=[
                    PreviewCircle(
                        people=sorted(p.display_name for p in g),
                        has_facilitator=any(p.is_facilitator for p in g),
                    )
                    for g in groups
                ],
                pairs=figures.pairs,
                new_pairs=figures.new_pairs,
                repeats=figures.repeats,
                violations=figures.violations + sum((cycle, p.pk) in away for g in groups for p in g),
            )
        )
    problems = cohorts.plan_problems(cohort, now=now) if cohort.planned_at else []
    return Preview(cycles, repeats, sum(c.violations for c in cycles), problems)
