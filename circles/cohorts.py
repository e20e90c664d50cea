"""Cohort mixing rotation: every write to cohorts, and the bridge from the planner to real circles.

A cohort is a set of people re-mixed into circles every cycle so they meet as many new peers as
possible (circles.mixing plans it, without a database). The plan is stored as CohortPlacement rows;
publishing turns each cycle's groups into ordinary Circles through circles.services, so sessions,
the facilitation rota and reminders come about exactly as they do for any circle.

Rules kept here, for views, tasks and the shell alike:
- Hard constraints hold in every cycle that is planned: a line manager and their report
  (accounts.LineManagementLink) and a "keep apart" pair never share a circle; someone unavailable
  in a cycle sits it out; circles of a cycle differ in size by at most one.
- A cycle that has started is never re-planned nor re-published: its circles stay as they are. A
  change (someone joining or leaving, a new keep-apart pair, an unavailable cycle, a new circle
  size) re-plans the cycles still to come, and only when the stored plan no longer fits the
  cohort; a published cohort is published again straight away, so nobody sits in a circle they
  should not be in.
- Publishing is idempotent: each (cycle, group) has at most one circle (CohortCircle), groups are
  matched to the existing circles of their cycle by overlap, and only people whose circles changed
  are told, once per publish.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from accounts.models import LineManagementLink, User
from accounts.services import audit
from circles import scheduling, services
from circles.mixing import InfeasiblePlan, circle_count, plan_mixing
from circles.models import (
    MAX_CAPACITY,
    MAX_COHORT_CYCLES,
    MAX_CYCLE_WEEKS,
    Circle,
    Cohort,
    CohortCircle,
    CohortKeepApart,
    CohortMember,
    CohortPlacement,
    CohortUnavailability,
    Membership,
    Notification,
    SessionTemplate,
)
from circles.notifications import notify

# The planner runs inside the request: a facilitator waits for the preview. Two seconds finds a
# repeat-free plan for most cohorts up to ~50 people (the planner stops early at a proven optimum);
# bench/bench_mixing.py shows what longer budgets buy on the hardest instances.
PLAN_SECONDS = 2.0
COHORT_FIELDS = (
    "name",
    "circle_size",
    "cycles",
    "cycle_weeks",
    "start_date",
    "time_zone",
    "start_time",
    "duration_minutes",
)
# Fixed once published: moving them would move circles that members already have in their diaries.
SCHEDULE_FIELDS = ("start_date", "cycle_weeks", "time_zone", "start_time", "duration_minutes")


# --- Dates ---------------------------------------------------------------------------------------


def cycle_start(cohort: Cohort, cycle: int) -> date:
    return cohort.start_date + timedelta(weeks=cycle * cohort.cycle_weeks)


def cycle_end(cohort: Cohort, cycle: int) -> date:
    """The last day of a cycle: the day before the next one starts."""
    return cycle_start(cohort, cycle + 1) - timedelta(days=1)


def started_cycles(cohort: Cohort, now: datetime) -> int:
    """How many cycles have begun by `now`, in the cohort's own calendar (0 to `cycles`)."""
    today = now.astimezone(ZoneInfo(cohort.time_zone)).date()
    if today < cohort.start_date:
        return 0
    return min(cohort.cycles, (today - cohort.start_date).days // (7 * cohort.cycle_weeks) + 1)


def _cadence(details: dict, *, cycle: int | None = None) -> scheduling.Cadence:
    """Weekly meetings from a cycle's first day to its last (`cycle=None`: across every cycle)."""
    span = timedelta(weeks=details["cycle_weeks"])
    first = details["start_date"] + (span * cycle if cycle is not None else timedelta(0))
    last = (
        first + span if cycle is not None else details["start_date"] + span * details["cycles"]
    ) - timedelta(days=1)
    return scheduling.Cadence(
        frequency=scheduling.WEEKLY,
        start_date=first,
        start_time=details["start_time"],
        duration_minutes=details["duration_minutes"],
        time_zone=details["time_zone"],
        end_date=last,
    )


# --- The planner's view of a cohort ----------------------------------------------------------


@dataclass
class PlanInputs:
    """A cohort as plain indices for circles.mixing. People: current members, then anyone who left
    but sits in a cycle that has started (the planner keeps those cycles verbatim)."""

    user_ids: list[int]
    members: set[int]
    fixed: list[list[list[int]]]  # user ids, cycles 0..len(fixed)-1
    unavailable: dict[int, set[int]]  # cycle -> user ids, current members only
    forbidden: set[tuple[int, int]]  # user id pairs, smaller first
    teams: dict[int, int | None]

    def present(self, cycle: int) -> set[int]:
        return self.members - self.unavailable.get(cycle, set())


def _placements_by_cycle(cohort: Cohort) -> dict[int, dict[int, list[int]]]:
    rounds: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for cycle, group, user_id in cohort.placements.order_by("cycle", "group", "user_id").values_list(
        "cycle", "group", "user_id"
    ):
        rounds[cycle][group].append(user_id)
    return rounds


def forbidden_pairs(cohort: Cohort, user_ids) -> set[tuple[int, int]]:
    """Line manager and report, and the cohort's keep-apart pairs, among `user_ids`, as (smaller id,
    larger id)."""
    user_ids = set(user_ids)
    links = LineManagementLink.objects.filter(manager_id__in=user_ids, report_id__in=user_ids)
    pairs = {tuple(sorted(pair)) for pair in links.values_list("manager_id", "report_id")}
    # Only pairs among `user_ids`: callers index people by them, and a cohort not planned yet has
    # keep-apart pairs but nobody placed (its page raised KeyError before this filter).
    pairs |= {
        (first, second)
        for first, second in cohort.keep_apart.values_list("first_id", "second_id")
        if first in user_ids and second in user_ids
    }
    return pairs


def plan_inputs(cohort: Cohort, *, now: datetime) -> PlanInputs:
    members = set(cohort.memberships.values_list("user_id", flat=True))
    rounds = _placements_by_cycle(cohort)
    started = started_cycles(cohort, now)
    fixed = []
    while len(fixed) < started and len(fixed) in rounds:
        fixed.append([sorted(g) for _, g in sorted(rounds[len(fixed)].items())])
    left = {u for round_ in fixed for group in round_ for u in group} - members
    user_ids = sorted(members) + sorted(left)
    unavailable: dict[int, set[int]] = defaultdict(set)
    for user_id, cycle in cohort.unavailability.filter(user_id__in=members).values_list("user_id", "cycle"):
        unavailable[cycle].add(user_id)
    teams = dict(User.objects.filter(pk__in=user_ids).values_list("pk", "team_id"))
    return PlanInputs(user_ids, members, fixed, dict(unavailable), forbidden_pairs(cohort, user_ids), teams)


def plan_problems(cohort: Cohort, *, now: datetime, inputs: PlanInputs | None = None) -> list[str]:
    """Why the stored plan no longer fits the cohort, for the cycles still to plan; empty when it fits."""
    inputs = inputs or plan_inputs(cohort, now=now)
    rounds = _placements_by_cycle(cohort)
    problems = []
    if any(cycle >= cohort.cycles for cycle in rounds):
        problems.append("The plan has more cycles than the cohort.")
    for cycle in range(len(inputs.fixed), cohort.cycles):
        groups = list(rounds.get(cycle, {}).values())
        present = inputs.present(cycle)
        seated = [u for g in groups for u in g]
        label = f"Cycle {cycle + 1}"
        if sorted(seated) != sorted(present):
            problems.append(f"{label} does not seat exactly the people taking part.")
        sizes = [len(g) for g in groups]
        if len(groups) != circle_count(len(present), cohort.circle_size) or (
            sizes and max(sizes) - min(sizes) > 1
        ):
            problems.append(f"{label} does not have circles of the size asked for.")
        if any(tuple(sorted((a, b))) in inputs.forbidden for g in groups for a in g for b in g if a < b):
            problems.append(f"{label} puts two people together who must be kept apart.")
    return problems


# --- Checks ------------------------------------------------------------------------------------


def _check_cohort(
    organisation_id: int,
    template: SessionTemplate,
    members: list[User],
    details: dict,
    *,
    cohort: Cohort | None,
    now: datetime,
) -> None:
    unknown = set(details) - set(COHORT_FIELDS)
    if unknown:
        raise TypeError(f"Unexpected cohort fields: {sorted(unknown)}")
    errors = {}
    if not details["name"].strip():
        errors["name"] = "Give the cohort a name."
    if not 2 <= details["circle_size"] <= MAX_CAPACITY:
        errors["circle_size"] = f"A circle holds between 2 and {MAX_CAPACITY} people."
    if not 1 <= details["cycles"] <= MAX_COHORT_CYCLES:
        errors["cycles"] = f"Choose between 1 and {MAX_COHORT_CYCLES} cycles."
    if not 1 <= details["cycle_weeks"] <= MAX_CYCLE_WEEKS:
        errors["cycle_weeks"] = f"A cycle lasts between 1 and {MAX_CYCLE_WEEKS} weeks."
    if template.organisation_id not in (None, organisation_id):
        errors["template"] = "That session template belongs to another organisation."
    outsiders = [p for p in members if p.organisation_id != organisation_id]
    unable = [
        p for p in members if p.organisation_id == organisation_id and not (p.is_active and p.is_member)
    ]
    if outsiders:
        errors["members"] = "Everyone in a cohort must belong to your organisation."
    elif unable:
        names = ", ".join(p.display_name for p in unable)
        errors["members"] = f"These people don't take part in circles (or their account is off): {names}."
    elif "circle_size" not in errors and circle_count(len(members), details["circle_size"]) < 2:
        errors["members"] = (
            f"{len(members)} {'person makes' if len(members) == 1 else 'people make'} only one circle of "
            f"{details['circle_size']}, so there is nothing to mix. Add people or choose smaller circles."
        )
    if cohort is not None and cohort.published_at is not None:
        for field in SCHEDULE_FIELDS:
            if details[field] != getattr(cohort, field):
                errors[field] = (
                    "The plan is published, so the dates and times of its circles stay as they are."
                )
        if template.pk != cohort.template_id:
            errors["template"] = "The plan is published, so its circles keep their session template."
    if cohort is not None and "cycles" not in errors:
        started = started_cycles(cohort, now)
        if details["cycles"] < started:
            errors["cycles"] = (
                f"{started} cycles have started already, so the cohort needs at least {started}."
            )
    if not errors:
        for field, message in services.cadence_errors(_cadence(details)).items():
            errors["start_time" if field in ("end_date", "occurrence_count") else field] = message
    if errors:
        raise ValidationError(errors)


def _members_of(cohort: Cohort, person: User, *, field: str = "person") -> None:
    if not cohort.memberships.filter(user_id=person.pk).exists():
        raise ValidationError({field: "Choose someone in this cohort."})


# --- Cohorts -----------------------------------------------------------------------------------


def cohort_create(*, actor: User, template: SessionTemplate, members: list[User], **details) -> Cohort:
    """A facilitator (or organisation admin) sets up a cohort. Nothing is planned until they ask."""
    if actor.organisation_id is None or not (actor.is_facilitator or actor.is_org_admin):
        raise ValidationError("Only facilitators can set up a cohort.")
    details["name"] = details["name"].strip()
    _check_cohort(actor.organisation_id, template, members, details, cohort=None, now=timezone.now())
    with transaction.atomic():
        cohort = Cohort.objects.create(
            organisation_id=actor.organisation_id, template=template, created_by=actor, **details
        )
        CohortMember.objects.bulk_create([CohortMember(cohort=cohort, user=p) for p in members])
        audit(
            actor=actor,
            action="cohort.created",
            subject=cohort.name,
            data={"cohort": cohort.pk, "people": len(members)},
        )
    return cohort


def cohort_update(
    *,
    actor: User,
    cohort: Cohort,
    template: SessionTemplate,
    members: list[User],
    now: datetime | None = None,
    **details,
) -> Cohort:
    """Change a cohort. People joining or leaving, or a new circle size or cycle count, re-plan the
    cycles still to come (and publish them again if the plan was published); started cycles stay."""
    now = now or timezone.now()
    details["name"] = details["name"].strip()
    with transaction.atomic():
        cohort = Cohort.objects.select_for_update().get(pk=cohort.pk)
        _check_cohort(cohort.organisation_id, template, members, details, cohort=cohort, now=now)
        wanted = {p.pk for p in members}
        current = set(cohort.memberships.values_list("user_id", flat=True))
        joined, left = wanted - current, current - wanted
        changed = sorted(f for f, v in details.items() if getattr(cohort, f) != v)
        changed += ["template"] if template.pk != cohort.template_id else []
        for field, value in details.items():
            setattr(cohort, field, value)
        cohort.template = template
        cohort.save()
        CohortMember.objects.filter(cohort=cohort, user_id__in=left).delete()
        # What was asked about someone who left goes with them.
        cohort.keep_apart.filter(Q(first_id__in=left) | Q(second_id__in=left)).delete()
        cohort.unavailability.filter(Q(user_id__in=left) | Q(cycle__gte=cohort.cycles)).delete()
        CohortMember.objects.bulk_create(
            [CohortMember(cohort=cohort, user_id=pk, joined_at=now) for pk in sorted(joined)]
        )
        if changed or joined or left:
            audit(
                actor=actor,
                action="cohort.updated",
                subject=cohort.name,
                data={"cohort": cohort.pk, "changed": changed, "joined": len(joined), "left": len(left)},
            )
        _replan_if_needed(actor=actor, cohort=cohort, now=now)
    return cohort


def keep_apart_add(
    *, actor: User, cohort: Cohort, first: User, second: User, now: datetime | None = None
) -> CohortKeepApart:
    """Two people never share a circle from now on; a plan that seats them together is re-planned."""
    now = now or timezone.now()
    if first.pk == second.pk:
        raise ValidationError({"second": "Choose two different people."})
    a, b = sorted((first.pk, second.pk))
    with transaction.atomic():
        cohort = Cohort.objects.select_for_update().get(pk=cohort.pk)
        _members_of(cohort, first, field="first")
        _members_of(cohort, second, field="second")
        pair, created = CohortKeepApart.objects.get_or_create(cohort=cohort, first_id=a, second_id=b)
        if not created:
            raise ValidationError({"second": "These two are already kept apart."})
        audit(actor=actor, action="cohort.keep_apart_added", subject=cohort.name, data={"cohort": cohort.pk})
        _replan_if_needed(actor=actor, cohort=cohort, now=now)
    return pair


def keep_apart_remove(*, actor: User, cohort: Cohort, pair_id: int) -> None:
    """They may meet again in a future plan; the current plan stays as it is. Safe to call twice."""
    with transaction.atomic():
        deleted, _ = CohortKeepApart.objects.filter(pk=pair_id, cohort=cohort).delete()
        if deleted:
            audit(
                actor=actor,
                action="cohort.keep_apart_removed",
                subject=cohort.name,
                data={"cohort": cohort.pk},
            )


def unavailability_add(
    *, actor: User, cohort: Cohort, person: User, cycle: int, now: datetime | None = None
) -> CohortUnavailability:
    """Someone sits out a cycle (0-based) that has not started; the plan is redone if it seats them."""
    now = now or timezone.now()
    with transaction.atomic():
        cohort = Cohort.objects.select_for_update().get(pk=cohort.pk)
        _members_of(cohort, person)
        if not 0 <= cycle < cohort.cycles:
            raise ValidationError({"cycle": f"Choose a cycle between 1 and {cohort.cycles}."})
        if cycle < started_cycles(cohort, now):
            raise ValidationError(
                {"cycle": f"Cycle {cycle + 1} has started, so its circles stay as they are."}
            )
        row, created = CohortUnavailability.objects.get_or_create(cohort=cohort, user=person, cycle=cycle)
        if not created:
            raise ValidationError({"cycle": f"{person.display_name} already sits out cycle {cycle + 1}."})
        audit(actor=actor, action="cohort.unavailable_added", subject=cohort.name, data={"cohort": cohort.pk})
        _replan_if_needed(actor=actor, cohort=cohort, now=now)
    return row


def unavailability_remove(*, actor: User, cohort: Cohort, row_id: int, now: datetime | None = None) -> None:
    """They can take part in that cycle after all: a plan that left them out is redone. Safe to call twice."""
    now = now or timezone.now()
    with transaction.atomic():
        cohort = Cohort.objects.select_for_update().get(pk=cohort.pk)
        row = cohort.unavailability.filter(pk=row_id).first()
        if row is None:
            return
        if row.cycle < started_cycles(cohort, now):
            raise ValidationError(f"Cycle {row.cycle + 1} has started, so its circles stay as they are.")
        row.delete()
        audit(
            actor=actor, action="cohort.unavailable_removed", subject=cohort.name, data={"cohort": cohort.pk}
        )
        _replan_if_needed(actor=actor, cohort=cohort, now=now)


# --- Planning ---------------------------------------------------------------------------------


def _replan_if_needed(*, actor: User, cohort: Cohort, now: datetime) -> None:
    """Caller holds the cohort lock. A cohort never planned waits for the facilitator to ask."""
    if cohort.planned_at is None or not plan_problems(cohort, now=now):
        return
    _plan(actor=actor, cohort=cohort, now=now, seconds=PLAN_SECONDS, seed=None)
    if cohort.published_at is not None:
        _publish(actor=actor, cohort=cohort, now=now)


def cohort_plan(
    *,
    actor: User,
    cohort: Cohort,
    now: datetime | None = None,
    seconds: float | None = None,
    seed: int | None = None,
) -> int:
    """Plan (again) every cycle that has not started, within `seconds` (default PLAN_SECONDS).

    Returns the plan's repeats.

    Nothing is published: the facilitator previews first. Raises ValidationError when the hard
    constraints cannot all hold (the planner says which people and which cycle).
    """
    now = now or timezone.now()
    with transaction.atomic():
        cohort = Cohort.objects.select_for_update().get(pk=cohort.pk)
        budget = PLAN_SECONDS if seconds is None else seconds
        return _plan(actor=actor, cohort=cohort, now=now, seconds=budget, seed=seed)


def _plan(*, actor: User, cohort: Cohort, now: datetime, seconds: float, seed: int | None) -> int:
    inputs = plan_inputs(cohort, now=now)
    index = {u: i for i, u in enumerate(inputs.user_ids)}
    left = {index[u] for u in inputs.user_ids if u not in inputs.members}
    first_free = len(inputs.fixed)
    unavailable = {
        cycle: {index[u] for u in inputs.unavailable.get(cycle, ())} | left
        for cycle in range(first_free, cohort.cycles)
    }
    try:
        plan = plan_mixing(
            len(inputs.user_ids),
            cohort.circle_size,
            cohort.cycles,
            forbidden=[(index[a], index[b]) for a, b in inputs.forbidden],
            unavailable={c: who for c, who in unavailable.items() if who},
            teams=[inputs.teams.get(u) for u in inputs.user_ids],
            fixed_rounds=[[[index[u] for u in g] for g in round_] for round_ in inputs.fixed],
            seconds=seconds,
            seed=seed,
        )
    except InfeasiblePlan as error:
        names = dict(User.objects.filter(pk__in=inputs.user_ids).values_list("pk", "display_name"))
        raise ValidationError(_infeasible_message(error, inputs.user_ids, names)) from error
    biggest = max((len(g) for round_ in plan.rounds[first_free:] for g in round_), default=0)
    if biggest > MAX_CAPACITY:
        raise ValidationError(
            {
                "circle_size": f"Some cycles would need circles of {biggest}, more than {MAX_CAPACITY}. "
                "Choose smaller circles."
            }
        )
    cohort.placements.filter(cycle__gte=first_free).delete()
    CohortPlacement.objects.bulk_create(
        [
            CohortPlacement(cohort=cohort, cycle=cycle, group=group, user_id=inputs.user_ids[p])
            for cycle in range(first_free, cohort.cycles)
            for group, members in enumerate(plan.rounds[cycle])
            for p in members
        ]
    )
    cohort.planned_at = now
    cohort.save(update_fields=["planned_at"])
    audit(
        actor=actor,
        action="cohort.planned",
        subject=cohort.name,
        data={"cohort": cohort.pk, "from_cycle": first_free, "repeats": plan.repeats},
    )
    return plan.repeats


def _infeasible_message(error: InfeasiblePlan, user_ids: list[int], names: dict[int, str]) -> str:
    """The planner speaks in indices ("round 2: people [0, 3, 5] ..."); say it with names and cycles."""
    text = str(error)
    head, _, _ = text.partition(":")
    cycle = head.removeprefix("round ").strip()
    where = f"In cycle {int(cycle) + 1}" if cycle.isdigit() else "In one cycle"
    start, end = text.find("["), text.find("]")
    if start != -1 and end > start:
        people = [
            names.get(user_ids[int(i)], "someone") for i in text[start + 1 : end].split(",") if i.strip()
        ]
        return (
            f"{where}, {', '.join(people)} must all be kept apart, but there are not enough circles. "
            "Remove a keep-apart pair, add people, or choose smaller circles."
        )
    return (
        f"{where} there is no way to keep everyone apart who must be. "
        "Remove a keep-apart pair, add people, or choose smaller circles."
    )


# --- Publishing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishResult:
    created: int = 0
    changed: int = 0
    closed: int = 0
    notified: int = 0


def cohort_publish(*, actor: User, cohort: Cohort, now: datetime | None = None) -> PublishResult:
    """Create or update the circles of every cycle that has not started, from the plan. Safe to call twice.

    Each person whose circles changed is told once, in the app, with a link to their new circle.
    """
    now = now or timezone.now()
    with transaction.atomic():
        cohort = Cohort.objects.select_for_update().get(pk=cohort.pk)
        if cohort.planned_at is None:
            raise ValidationError("Make a plan first, then publish it.")
        problems = plan_problems(cohort, now=now)
        if problems:
            raise ValidationError(
                ["The plan no longer fits the cohort. Plan again, then publish.", *problems]
            )
        return _publish(actor=actor, cohort=cohort, now=now)


def _match(
    groups: list[list[int]], links: list[CohortCircle], active: dict[int, set[int]]
) -> dict[int, CohortCircle]:
    """Group index -> the existing circle sharing most people with it, each circle used once."""
    scored = sorted(
        (
            (-len(set(g) & active[link.circle_id]), gi, li)
            for gi, g in enumerate(groups)
            for li, link in enumerate(links)
        )
    )
    matched: dict[int, CohortCircle] = {}
    used: set[int] = set()
    for _, gi, li in scored:
        if gi not in matched and li not in used:
            matched[gi] = links[li]
            used.add(li)
    return matched


def _publish(*, actor: User, cohort: Cohort, now: datetime) -> PublishResult:
    """Caller holds the cohort lock and has checked the plan fits."""
    started = started_cycles(cohort, now)
    rounds = _placements_by_cycle(cohort)
    links_by_cycle: dict[int, list[CohortCircle]] = defaultdict(list)
    for link in cohort.published_circles.select_related("circle"):
        links_by_cycle[link.cycle].append(link)
    circle_ids = [link.circle_id for links in links_by_cycle.values() for link in links]
    active: dict[int, set[int]] = defaultdict(set)
    for circle_id, user_id in Membership.objects.filter(
        circle_id__in=circle_ids, left_at__isnull=True
    ).values_list("circle_id", "user_id"):
        active[circle_id].add(user_id)
    wanted_ids = {u for round_ in rounds.values() for g in round_.values() for u in g}
    people = User.objects.in_bulk(wanted_ids | {u for ids in active.values() for u in ids})

    added_to: dict[int, tuple[int, Circle]] = {}  # person -> their first new circle
    taken_out: set[int] = set()
    created = changed = closed = 0
    for cycle in range(max([cohort.cycles, *(c + 1 for c in links_by_cycle)])):
        links = links_by_cycle.get(cycle, [])
        if cycle < started and links:
            continue  # a cycle under way or over keeps its circles
        groups = [g for _, g in sorted(rounds.get(cycle, {}).items())] if cycle < cohort.cycles else []
        matched = _match(groups, links, active)
        names = {link.circle.name for link in matched.values()}
        kept = []
        for gi, group in enumerate(groups):
            link = matched.get(gi)
            if link is None:
                circle = _circle_create(actor=actor, cohort=cohort, cycle=cycle, size=len(group), taken=names)
                names.add(circle.name)
                created += 1
            else:
                circle = link.circle
            if link is None:
                added, removed = (
                    _seat(actor=actor, circle=circle, want=set(group), people=people, now=now),
                    set(),
                )
            else:
                added, removed = _sync_members(
                    actor=actor,
                    circle=circle,
                    want=set(group),
                    have=active[circle.pk],
                    people=people,
                    now=now,
                )
            if link is not None and (added or removed):
                changed += 1
            if link is None or added or removed:
                services.circle_materialise(circle_id=circle.pk, now=now)
            for user_id in added:
                added_to.setdefault(user_id, (cycle, circle))
            taken_out.update(removed)
            kept.append((gi, circle))
        for link in links:
            if link not in matched.values():
                taken_out.update(
                    _close(actor=actor, circle=link.circle, have=active[link.circle_id], now=now)
                )
                closed += 1
        if links or kept:
            CohortCircle.objects.filter(cohort=cohort, cycle=cycle).delete()
            CohortCircle.objects.bulk_create(
                [CohortCircle(cohort=cohort, cycle=cycle, group=gi, circle=circle) for gi, circle in kept]
            )
    told = sorted(set(added_to) | taken_out)
    for user_id in told:
        _tell(people[user_id], cohort=cohort, new=added_to.get(user_id))
    cohort.published_at = now
    cohort.save(update_fields=["published_at"])
    audit(
        actor=actor,
        action="cohort.published",
        subject=cohort.name,
        data={
            "cohort": cohort.pk,
            "created": created,
            "changed": changed,
            "closed": closed,
            "told": len(told),
        },
    )
    return PublishResult(created=created, changed=changed, closed=closed, notified=len(told))


def _circle_create(*, actor: User, cohort: Cohort, cycle: int, size: int, taken: set[str]) -> Circle:
    """A circle for one group of one cycle: weekly through the cycle, at the cohort's time.

    Made directly rather than through services.circle_create, which would seat the facilitator in
    it: a cohort's circles hold only the people the plan puts there (their line manager could be
    the facilitator, and every circle of a cycle meets at the same hour).
    """
    number = 1
    while f"{cohort.name}: cycle {cycle + 1}, circle {number}" in taken:
        number += 1
    first, last = cycle_start(cohort, cycle), cycle_end(cohort, cycle)
    circle = Circle.objects.create(
        organisation_id=cohort.organisation_id,
        name=f"{cohort.name}: cycle {cycle + 1}, circle {number}"[:120],
        purpose=(
            f"Cycle {cycle + 1} of {cohort.cycles} of “{cohort.name}”, from "
            f"{date_format(first, 'j F')} to {date_format(last, 'j F Y')}. The cohort is re-mixed "
            "every cycle, so each time you sit with people you have not met in it yet."
        ),
        capacity=min(MAX_CAPACITY, max(size, cohort.circle_size)),
        time_zone=cohort.time_zone,
        frequency=Circle.Frequency.WEEKLY,
        start_date=first,
        end_date=last,
        start_time=cohort.start_time,
        duration_minutes=cohort.duration_minutes,
        template_id=cohort.template_id,
        created_by=actor,
    )
    audit(
        actor=actor,
        action="circle.created",
        subject=circle.name,
        data={"circle": circle.pk, "cohort": cohort.pk, "cycle": cycle},
    )
    return circle


def _role(person: User) -> str:
    """Someone with the facilitator capability becomes a circle facilitator, so a concern raised in
    the circle reaches somebody in it. Everyone takes turns facilitating the day (they can opt out)."""
    return Membership.Role.FACILITATOR if person.is_facilitator else Membership.Role.MEMBER


def _seat(*, actor: User, circle: Circle, want: set[int], people: dict[int, User], now: datetime) -> set[int]:
    """Fill a circle made in this publish. It has no sessions yet, so the membership service's
    per-person reminder planning would be wasted: the caller materialises the circle once after."""
    for user_id in want:
        person = people[user_id]
        if person.organisation_id != circle.organisation_id or not (person.is_active and person.is_member):
            raise ValidationError(
                f"{person.display_name} can no longer take part in circles here. "
                "Take them out of the cohort, then publish again."
            )
    Membership.objects.bulk_create(
        [
            Membership(circle=circle, user_id=u, role=_role(people[u]), rota_opt_in=True, joined_at=now)
            for u in sorted(want)
        ]
    )
    audit(
        actor=actor,
        action="circle.members_seated",
        subject=circle.name,
        data={"circle": circle.pk, "people": sorted(want)},
    )
    return set(want)


def _sync_members(
    *, actor: User, circle: Circle, want: set[int], have: set[int], people: dict[int, User], now: datetime
) -> tuple[set[int], set[int]]:
    """Make a published circle's active members exactly `want`, through the membership services
    (they plan reminders, hand on facilitation turns and drop open cover requests).

    Returns (added, removed) user ids.
    """
    add, remove = want - have, have - want
    if len(want) > circle.capacity:
        circle.capacity = min(MAX_CAPACITY, len(want))
        Circle.objects.filter(pk=circle.pk).update(capacity=circle.capacity)
    # Out first, then in, so the circle never holds more than the plan asks for.
    leaving = list(circle.memberships.filter(user_id__in=remove, left_at__isnull=True))
    for membership in leaving:
        if membership.is_circle_facilitator:
            # The plan, not a person, decides who sits here: the last circle facilitator may go.
            Membership.objects.filter(pk=membership.pk).update(role=Membership.Role.MEMBER)
            membership.role = Membership.Role.MEMBER
        services.membership_end(actor=actor, membership=membership, now=now)
    for user_id in sorted(add):
        person = people[user_id]
        membership = services.membership_add(actor=actor, circle=circle, person=person, role=_role(person))
        Membership.objects.filter(pk=membership.pk).update(rota_opt_in=True)
    have.clear()
    have.update(want)
    return add, remove


def _close(*, actor: User, circle: Circle, have: set[int], now: datetime) -> set[int]:
    """A cycle needs one circle fewer: close it (its coming sessions are cancelled) and empty it."""
    services.circle_archive(actor=actor, circle=circle, now=now)
    for membership in circle.memberships.filter(left_at__isnull=True):
        services.membership_end(actor=actor, membership=membership, now=now)
    gone = set(have)
    have.clear()
    return gone


def _tell(person: User, *, cohort: Cohort, new: tuple[int, Circle] | None) -> Notification:
    """One in-app notice per person per publish: their first new circle, or that their plan changed."""
    if new is None:
        return notify(
            person,
            kind=Notification.Kind.MIXING,
            title=f"Your circles in “{cohort.name}” have changed: you are not in one of them any more.",
            url=reverse("circles:circle-list"),
        )
    cycle, circle = new
    when = date_format(cycle_start(cohort, cycle), "j F")
    return notify(
        person,
        kind=Notification.Kind.MIXING,
        title=f"Your new circle from {when}: {circle.name}",
        url=reverse("circles:circle-detail", args=[circle.pk]),
    )
