"""Cohort mixing: who sits with whom in each cycle, so people meet as many new peers as possible.

This module is pure Python with no Django or database imports: the facilitator's preview, the
`plan_mixing` management command and the benchmark all call `plan_mixing` with plain integers.
People are indices `0..people-1`; a plan is a list of rounds (cycles), each a list of circles,
each a sorted list of person indices.

Hard constraints, never broken in a planned round:
- a forbidden pair (a line manager and their report, or a "keep apart" request) never shares a circle;
- someone unavailable in a round is left out of that round, everyone else appears exactly once;
- circle sizes in a round differ by at most one (see `circle_sizes` for how many circles there are).

Objectives, in order: fewest repeats (a pair meeting for the second, third... time, counting pairs
given in `history`), then fewest same-team pairs in a circle (teams spread across circles).

The search is the classic one for the social golfer problem: a greedy construction (each person
goes to the open circle where they have met the fewest people) followed by tabu search over swaps of
two people between circles of the same round, guided towards people who are in a repeat, with
perturbations from the best plan when the search stalls. It stops at a proven optimum or when the
time budget runs out, and returns the best plan seen.

When nothing breaks the symmetry (no history, no absences, no past rounds, equal circles), known
designs from `circles.designs` are tried first, relabelled at random so forbidden pairs can be
kept apart: the affine plane over a finite field (`affine_rounds`), the same plane minus a point
(`punctured_rounds`), two affine planes on twins (`doubled_rounds`: 32 people in fours for 10
rounds) and plans made by shifting a few base rounds, found by a tabu search over those base
rounds only (`shifted_search`). Local search over whole plans rarely finds these for tight
instances (Kirkman's schoolgirls, 18 people in threes for 8 rounds, 80 people in circles of 8,
32 in fours for 10 rounds) within seconds. When no design covers every round, the best shifted
plan (repeats and all) is what the search over whole plans has to beat.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

from circles.designs import affine_rounds, doubled_rounds, punctured_rounds, shifted_search


class InfeasiblePlan(ValueError):
    """The hard constraints cannot all hold: e.g. more mutually forbidden people than circles."""


@dataclass(frozen=True)
class RoundStats:
    """What the facilitator previews for one round (cycle)."""

    index: int
    circles: int
    pairs: int
    new_pairs: int
    repeats: int
    violations: int
    fixed: bool

    @property
    def new_pair_share(self) -> float:
        return self.new_pairs / self.pairs if self.pairs else 1.0


@dataclass(frozen=True)
class Plan:
    rounds: list[list[list[int]]]
    repeats: int
    team_pairs: int
    stats: list[RoundStats] = field(default_factory=list)
    optimal: bool = False
    iterations: int = 0

    def as_dict(self) -> dict:
        return {
            "rounds": self.rounds,
            "repeats": self.repeats,
            "team_pairs": self.team_pairs,
            "optimal": self.optimal,
            "iterations": self.iterations,
            "stats": [dict(asdict(s), new_pair_share=round(s.new_pair_share, 4)) for s in self.stats],
        }


def circle_count(present: int, size: int) -> int:
    """How many circles `present` people form when the wanted circle size is `size`.

    The rule: the count (floor or ceiling of present/size) whose circles come closest to `size`,
    measured by the size furthest from it; on a tie, the smaller circles (more of them), because
    a circle that is too big is harder to hold than one that is a little small. So 13 people in
    circles of 6 make 7+6 (not 5+4+4), 14 make 7+7 (not 5+5+4), and 15 make 5+5+5 (not 8+7).
    """
    if present <= 0:
        return 0
    low, high = max(1, present // size), max(1, math.ceil(present / size))

    def worst(k: int) -> int:
        return max(abs(math.ceil(present / k) - size), abs(present // k - size))

    return high if worst(high) <= worst(low) else low


def circle_sizes(present: int, size: int) -> list[int]:
    """Sizes of the circles for `present` people, largest first, differing by at most one."""
    k = circle_count(present, size)
    if k == 0:
        return []
    q, extra = divmod(present, k)
    return [q + 1] * extra + [q] * (k - extra)


def _pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)


def _check_person(p: int, people: int, what: str) -> int:
    if not isinstance(p, int) or isinstance(p, bool) or not 0 <= p < people:
        raise ValueError(f"{what}: person {p!r} is not an index between 0 and {people - 1}")
    return p


class _Counts:
    """Pair meeting counts with bitsets of "met at least once" and "met at least twice".

    Python ints as bitsets make the swap evaluation a handful of `&` and `bit_count()` calls
    instead of loops, which is what makes plain-Python local search fast enough.
    """

    def __init__(self, n: int):
        self.n = n
        self.cnt = [0] * (n * n)
        self.met1 = [0] * n
        self.met2 = [0] * n
        self.repeats = 0

    def inc(self, p: int, q: int) -> None:
        n = self.n
        c = self.cnt[p * n + q]
        self.cnt[p * n + q] = self.cnt[q * n + p] = c + 1
        if c == 0:
            self.met1[p] |= 1 << q
            self.met1[q] |= 1 << p
        else:
            self.repeats += 1
            if c == 1:
                self.met2[p] |= 1 << q
                self.met2[q] |= 1 << p

    def dec(self, p: int, q: int) -> None:
        n = self.n
        c = self.cnt[p * n + q]
        self.cnt[p * n + q] = self.cnt[q * n + p] = c - 1
        if c == 1:
            self.met1[p] &= ~(1 << q)
            self.met1[q] &= ~(1 << p)
        else:
            self.repeats -= 1
            if c == 2:
                self.met2[p] &= ~(1 << q)
                self.met2[q] &= ~(1 << p)

    def add_circle(self, circle: Sequence[int]) -> None:
        for i, p in enumerate(circle):
            for q in circle[i + 1 :]:
                self.inc(p, q)


def _masks(n: int, pairs: Iterable[tuple[int, int]]) -> list[int]:
    masks = [0] * n
    for a, b in pairs:
        masks[a] |= 1 << b
        masks[b] |= 1 << a
    return masks


def _team_masks(n: int, teams: Sequence[int | None] | None) -> list[int]:
    masks = [0] * n
    if teams is None:
        return masks
    by_team: dict[int, int] = {}
    for p, t in enumerate(teams):
        if t is not None:
            by_team[t] = by_team.get(t, 0) | (1 << p)
    for p, t in enumerate(teams):
        if t is not None:
            masks[p] = by_team[t] & ~(1 << p)
    return masks


def _greedy_clique(start: int, forbid: list[int]) -> list[int]:
    clique, candidates = [start], forbid[start]
    while candidates:
        # Take the candidate with most forbidden partners among the remaining candidates.
        best = max(_bits(candidates), key=lambda q: (forbid[q] & candidates).bit_count())
        clique.append(best)
        candidates &= forbid[best]
    return clique


def _bits(mask: int) -> list[int]:
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


def _check_cliques(present: list[int], k: int, forbid: list[int], round_index: int) -> None:
    """Fail fast, with a readable reason, when mutually forbidden people outnumber the circles."""
    here = 0
    for p in present:
        here |= 1 << p
    local = [m & here for m in forbid]
    for p in present:
        if local[p].bit_count() >= k:
            clique = _greedy_clique(p, local)
            if len(clique) > k:
                raise InfeasiblePlan(
                    f"round {round_index}: people {sorted(clique)} must all be kept apart, "
                    f"but the round has only {k} circle{'' if k == 1 else 's'}"
                )


def _place_round(
    order: list[int],
    sizes: list[int],
    counts: _Counts,
    forbid: list[int],
    team: list[int],
    rng: random.Random,
) -> list[list[int]] | None:
    """Greedy placement: each person joins the open circle where they have met the fewest people.

    Ties go to the circle with fewer teammates, then more free seats, then at random. Returns None
    when someone has no open circle without a forbidden partner (the caller tries another order).
    """
    k = len(sizes)
    circles: list[list[int]] = [[] for _ in range(k)]
    masks = [0] * k
    met1 = counts.met1
    for p in order:
        best, best_key = -1, None
        fp, mp, tp = forbid[p], met1[p], team[p]
        for c in range(k):
            free = sizes[c] - len(circles[c])
            if free == 0 or (fp & masks[c]):
                continue
            key = ((mp & masks[c]).bit_count(), (tp & masks[c]).bit_count(), -free, rng.random())
            if best_key is None or key < best_key:
                best, best_key = c, key
        if best < 0:
            return None
        circles[best].append(p)
        masks[best] |= 1 << p
    return circles


def _repair_round(
    present: list[int], sizes: list[int], forbid: list[int], rng: random.Random, deadline: float
) -> list[list[int]] | None:
    """Min-conflicts search for a round that keeps every forbidden pair apart (sizes fixed)."""
    people = present[:]
    rng.shuffle(people)
    circles, start = [], 0
    for s in sizes:
        circles.append(people[start : start + s])
        start += s
    where = {p: c for c, circle in enumerate(circles) for p in circle}
    masks = [sum(1 << p for p in circle) for circle in circles]

    def clashes(p: int, c: int) -> int:
        return (forbid[p] & masks[c]).bit_count()

    for step in range(200_000):
        bad = [p for p in people if clashes(p, where[p])]
        if not bad:
            return [sorted(c) for c in circles]
        if step % 256 == 0 and time.perf_counter() > deadline:
            return None
        a = rng.choice(bad)
        ca = where[a]
        best, best_delta = None, None
        for b in people:
            cb = where[b]
            if cb == ca:
                continue
            ma, mb = masks[ca] ^ (1 << a), masks[cb] ^ (1 << b)
            delta = (
                (forbid[a] & mb).bit_count()
                - (forbid[a] & ma).bit_count()
                + (forbid[b] & ma).bit_count()
                - (forbid[b] & mb).bit_count()
            )
            if best_delta is None or delta < best_delta or (delta == best_delta and rng.random() < 0.3):
                best, best_delta = b, delta
        if best is None:
            return None
        if best_delta > 0 and rng.random() < 0.5:
            best = rng.choice([b for b in people if where[b] != ca])
        b, cb = best, where[best]
        circles[ca][circles[ca].index(a)] = b
        circles[cb][circles[cb].index(b)] = a
        masks[ca] ^= (1 << a) | (1 << b)
        masks[cb] ^= (1 << a) | (1 << b)
        where[a], where[b] = cb, ca
    return None


def _build_round(
    present: list[int],
    sizes: list[int],
    counts: _Counts,
    forbid: list[int],
    team: list[int],
    rng: random.Random,
    *,
    constrained_first: bool,
    deadline: float,
    round_index: int,
) -> list[list[int]]:
    """One feasible round: greedy placement from several orders, then a repair search if needed."""
    for _attempt in range(30):
        order = present[:]
        rng.shuffle(order)
        if constrained_first:
            order.sort(key=lambda p: -forbid[p].bit_count())
        circles = _place_round(order, sizes, counts, forbid, team, rng)
        if circles is not None:
            return circles
        if not any(forbid[p] for p in present):
            break
    repaired = _repair_round(present, sizes, forbid, rng, max(deadline, time.perf_counter() + 2.0))
    if repaired is None:
        raise InfeasiblePlan(
            f"round {round_index}: found no way to keep every forbidden pair apart "
            f"in {len(sizes)} circles of {present and max(sizes)} or fewer"
        )
    return repaired


def _team_floor(present: list[int], k: int, teams: Sequence[int | None] | None) -> int:
    """Fewest same-team pairs a round could have if every team were split as evenly as possible."""
    if teams is None or k == 0:
        return 0
    sizes: dict[int, int] = {}
    for p in present:
        if teams[p] is not None:
            sizes[teams[p]] = sizes.get(teams[p], 0) + 1
    total = 0
    for c in sizes.values():
        q, extra = divmod(c, k)
        total += extra * (q + 1) * q // 2 + (k - extra) * q * (q - 1) // 2
    return total


def _team_pairs(circle: Sequence[int], team: list[int]) -> int:
    return sum((team[p] & sum(1 << q for q in circle)).bit_count() for p in circle) // 2


@dataclass
class _Inputs:
    people: int
    size: int
    rounds: int
    forbidden: set[tuple[int, int]]
    unavailable: dict[int, set[int]]
    teams: Sequence[int | None] | None
    history: set[tuple[int, int]]
    fixed: list[list[list[int]]]


def _validate(
    people: int,
    size: int,
    rounds: int,
    forbidden: Iterable[tuple[int, int]],
    unavailable: Mapping[int, Iterable[int]],
    teams: Sequence[int | None] | None,
    history: Iterable[tuple[int, int]],
    fixed_rounds: Sequence[Sequence[Sequence[int]]],
) -> _Inputs:
    if people < 0 or rounds < 0:
        raise ValueError("people and rounds cannot be negative")
    if size < 2:
        raise ValueError(f"a circle needs at least 2 people, not {size}")
    if len(fixed_rounds) > rounds:
        raise ValueError(f"{len(fixed_rounds)} fixed rounds given for a plan of {rounds} rounds")
    pairs = set()
    for a, b in forbidden:
        _check_person(a, people, "forbidden pair")
        _check_person(b, people, "forbidden pair")
        if a == b:
            raise ValueError(f"forbidden pair ({a}, {b}) names the same person twice")
        pairs.add(_pair(a, b))
    away: dict[int, set[int]] = {}
    for r, who in unavailable.items():
        if not isinstance(r, int) or not 0 <= r < rounds:
            raise ValueError(f"unavailable: round {r!r} is not between 0 and {rounds - 1}")
        away[r] = {_check_person(p, people, f"unavailable in round {r}") for p in who}
    if teams is not None and len(teams) != people:
        raise ValueError(f"teams has {len(teams)} entries for {people} people")
    met = set()
    for a, b in history:
        _check_person(a, people, "history")
        _check_person(b, people, "history")
        if a != b:
            met.add(_pair(a, b))
    fixed = []
    for r, round_ in enumerate(fixed_rounds):
        seen: set[int] = set()
        kept = []
        for circle in round_:
            for p in circle:
                _check_person(p, people, f"fixed round {r}")
                if p in seen:
                    raise ValueError(f"fixed round {r}: person {p} appears twice")
                seen.add(p)
            kept.append(list(circle))
        fixed.append(kept)
    return _Inputs(people, size, rounds, pairs, away, teams, met, fixed)


def plan_mixing(
    people: int,
    size: int,
    rounds: int,
    *,
    forbidden: Iterable[tuple[int, int]] = (),
    unavailable: Mapping[int, Iterable[int]] | None = None,
    teams: Sequence[int | None] | None = None,
    history: Iterable[tuple[int, int]] = (),
    fixed_rounds: Sequence[Sequence[Sequence[int]]] = (),
    seconds: float = 10.0,
    seed: int | None = None,
    iterations: int | None = None,
) -> Plan:
    """Plan `rounds` rounds of circles of about `size` for people `0..people-1`.

    - `forbidden`: pairs that must never share a circle (line manager and report, keep-apart).
    - `unavailable`: round index -> people left out of that round.
    - `teams`: team id (or None) per person; teams are spread across circles as a second objective.
    - `history`: pairs who have already met before this plan; meeting again counts as a repeat.
    - `fixed_rounds`: the first rounds, kept verbatim (past cycles when someone joins or leaves
      mid-plan); only the rounds after them are planned. Their repeats and any forbidden pair in
      them are reported, not changed.
    - `seconds`: wall-clock budget; the search stops early at a proven optimum (0 new repeats and
      teams split as evenly as possible) and otherwise returns the best plan found in time.
    - `seed`: makes the run reproducible when it stops for a reason other than the clock
      (optimum reached, or `iterations` spent); a run cut off by the clock depends on machine speed,
      and so does the design search that tight cohorts with no history get first.
    - `iterations`: optional cap on search steps, for reproducible runs whatever the machine.
    - Infeasibility is detected by search as well: a round whose forbidden pairs defeat the greedy
      seating gets a repair search of at least 2 s before `InfeasiblePlan`, even past `seconds`.

    Returns a `Plan` whose `repeats` is the sum over pairs of (times met - 1), where a pair in
    `history` has met once already. Raises `InfeasiblePlan` when the hard constraints cannot hold
    and `ValueError` for malformed input.
    """
    deadline = time.perf_counter() + max(0.0, seconds)
    inp = _validate(people, size, rounds, forbidden, unavailable or {}, teams, history, fixed_rounds)
    rng = random.Random(seed)  # nosec B311  # seating order, not a secret; seeded so a plan can be replayed
    n = inp.people
    forbid = _masks(n, inp.forbidden)
    team = _team_masks(n, inp.teams)

    base = _Counts(n)
    for a, b in inp.history:
        base.inc(a, b)
    for round_ in inp.fixed:
        for circle in round_:
            base.add_circle(circle)

    free: list[tuple[int, list[int], list[int]]] = []
    for r in range(len(inp.fixed), inp.rounds):
        away = inp.unavailable.get(r, set())
        present = [p for p in range(n) if p not in away]
        sizes = circle_sizes(len(present), inp.size)
        _check_cliques(present, len(sizes), forbid, r)
        free.append((r, present, sizes))

    # Geometric seeds apply only when every free round holds everyone in equal circles and no
    # history or past round already fixes who has met whom.
    symmetric = not inp.history and not inp.fixed and not inp.unavailable and n > 0 and n % inp.size == 0
    search = _Search(n, free, base, forbid, team, inp.teams, rng, deadline, iterations, symmetric)
    planned, iters, optimal = search.run()
    all_rounds = [[sorted(c) for c in round_] for round_ in inp.fixed] + [
        sorted(sorted(c) for c in round_) for round_ in planned
    ]
    stats, repeats = evaluate_rounds(all_rounds, forbidden=inp.forbidden, history=inp.history)
    stats = [RoundStats(**dict(asdict(s), fixed=i < len(inp.fixed))) for i, s in enumerate(stats)]
    team_pairs = sum(_team_pairs(c, team) for round_ in all_rounds for c in round_)
    return Plan(all_rounds, repeats, team_pairs, stats, optimal, iters)


def random_with_history(
    people: int,
    size: int,
    rounds: int,
    *,
    forbidden: Iterable[tuple[int, int]] = (),
    unavailable: Mapping[int, Iterable[int]] | None = None,
    seed: int | None = None,
) -> Plan:
    """The baseline the planner is measured against: no search, just a sensible habit.

    Each round shuffles the people present and seats them one by one in the open circle (without
    a forbidden partner) where they have met the fewest people so far.
    """
    inp = _validate(people, size, rounds, forbidden, unavailable or {}, None, (), ())
    rng = random.Random(seed)  # nosec B311  # seating order, not a secret; seeded so a plan can be replayed
    forbid, team = _masks(people, inp.forbidden), [0] * people
    counts = _Counts(people)
    planned = []
    for r in range(rounds):
        away = inp.unavailable.get(r, set())
        present = [p for p in range(people) if p not in away]
        sizes = circle_sizes(len(present), size)
        _check_cliques(present, len(sizes), forbid, r)
        round_ = _build_round(
            present,
            sizes,
            counts,
            forbid,
            team,
            rng,
            constrained_first=False,
            deadline=time.perf_counter() + 2.0,
            round_index=r,
        )
        for circle in round_:
            counts.add_circle(circle)
        planned.append(sorted(sorted(c) for c in round_))
    stats, repeats = evaluate_rounds(planned, forbidden=inp.forbidden)
    return Plan(planned, repeats, 0, stats)


def evaluate_rounds(
    rounds: Sequence[Sequence[Sequence[int]]],
    *,
    forbidden: Iterable[tuple[int, int]] = (),
    history: Iterable[tuple[int, int]] = (),
) -> tuple[list[RoundStats], int]:
    """Per-round figures and the total repeat count of any plan, ours or a baseline's.

    A pair's meeting in a round is a repeat when that pair met in `history` or an earlier round.
    """
    forbidden = {_pair(a, b) for a, b in forbidden}
    met = {_pair(a, b) for a, b in history if a != b}
    stats, total = [], 0
    for index, round_ in enumerate(rounds):
        pairs = new = violations = 0
        here = []
        for circle in round_:
            members = sorted(circle)
            for i, a in enumerate(members):
                for b in members[i + 1 :]:
                    pairs += 1
                    here.append((a, b))
                    violations += (a, b) in forbidden
        for pr in here:
            if pr not in met:
                new += 1
        repeats = pairs - new
        total += repeats
        met.update(here)
        stats.append(RoundStats(index, len(round_), pairs, new, repeats, violations, False))
    return stats, total


# Search settings, tuned on the social golfer instances in bench/bench_mixing.py.
_CANDIDATES = 8  # people in a repeat whose swaps are scanned per step
_TENURE_MIN, _TENURE_SPAN = 4, 8  # a person may not return to a circle for 4..11 steps
_STALL_BASE, _STALL_PER_PERSON = 300, 20  # steps without a new best before a perturbation


class _Search:
    """Tabu search over swaps between circles of one round; see the module docstring."""

    def __init__(
        self,
        n: int,
        free: list[tuple[int, list[int], list[int]]],
        base: _Counts,
        forbid: list[int],
        team: list[int],
        teams: Sequence[int | None] | None,
        rng: random.Random,
        deadline: float,
        iterations: int | None,
        symmetric: bool,
    ):
        self.n = n
        self.forbid = forbid
        self.rng = rng
        self.geometry: list[list[list[int]]] = []
        self.alternative: list[list[list[int]]] = []
        if symmetric:
            size, wanted = free[0][2][0], len(free)
            groups = n // size
            designs = [
                affine_rounds(groups, size, wanted),
                punctured_rounds(groups, size, wanted),
                doubled_rounds(groups, size, wanted),
            ]
            # The longest design that some relabelling fits around the forbidden pairs: the
            # doubled planes leave each person one partner never met, so someone kept apart
            # from two people needs the affine rounds, which leave several.
            designs.sort(key=len, reverse=True)
            self.geometry = next((d for d in designs if d and self._template(d)), [])
            # Share of everyone's possible partners each person must meet: above 3/4, local
            # search alone rarely gets to zero repeats (Kirkman's 15 schoolgirls), so half the
            # budget goes to a search over shifted base rounds. Its plan replaces a partial
            # design when repeat-free, else it is the best plan to beat (see `run`), as for
            # 32 people in fours for 10 rounds before `doubled_rounds`: a single clash (10
            # repeats) against 16 for the best completion of the 9 affine rounds. Looser
            # cohorts, and any with forbidden pairs (which a design seldom keeps apart), go
            # straight to the search.
            tight = wanted * (size - 1) >= 0.75 * (n - 1)
            if len(self.geometry) < wanted and tight and not any(forbid):
                shifted = shifted_search(
                    n, size, wanted, seconds=(deadline - time.perf_counter()) / 2, rng=rng
                )
                if shifted and evaluate_rounds(shifted)[1] == 0:
                    self.geometry = shifted
                else:
                    self.alternative = shifted
        self.free = free
        self.base = base
        self.team = team
        self.deadline = deadline
        self.max_iterations = iterations
        self.base_repeats = base.repeats
        self.team_floor = sum(_team_floor(present, len(sizes), teams) for _, present, sizes in free)
        # Repeats outweigh any number of same-team pairs: the objective is lexicographic.
        self.weight = n * n + 1

    def _fresh_counts(self) -> _Counts:
        c = _Counts(self.n)
        c.cnt = self.base.cnt[:]
        c.met1 = self.base.met1[:]
        c.met2 = self.base.met2[:]
        c.repeats = self.base.repeats
        return c

    def _template(self, rounds: list[list[list[int]]]) -> list[list[list[int]]]:
        """These design rounds under a random relabelling that keeps forbidden pairs apart, if any.

        People with forbidden partners are placed first, each on a point of the design that
        never shares a circle with the points of their partners placed so far: in a design where
        everyone meets everyone but one (32 people in fours for 10 rounds), forbidden pairs
        that form a matching become those never-met pairs, which a random relabelling would
        almost never manage.
        """
        n, rng, forbid = self.n, self.rng, self.forbid
        if not rounds:
            return []
        apart = [(1 << n) - 1 - (1 << p) for p in range(n)]  # points never in a circle with p
        for round_ in rounds:
            for c in round_:
                mask = sum(1 << p for p in c)
                for p in c:
                    apart[p] &= ~mask
        constrained = [p for p in range(n) if forbid[p]]
        for _attempt in range(50):
            rng.shuffle(constrained)
            constrained.sort(key=lambda p: -forbid[p].bit_count())
            point_of: dict[int, int] = {}
            free = (1 << n) - 1
            for p in constrained:
                options = free
                for q in _bits(forbid[p]):
                    if q in point_of:
                        options &= apart[point_of[q]]
                if not options:
                    break
                point_of[p] = rng.choice(_bits(options))
                free &= ~(1 << point_of[p])
            else:
                points = _bits(free)
                rng.shuffle(points)
                people = [p for p in range(n) if p not in point_of]
                point_of.update(zip(people, points, strict=True))
                label = [0] * n
                for p, x in point_of.items():
                    label[x] = p
                return [[[label[x] for x in c] for c in round_] for round_ in rounds]
        return []

    def _construct(self, geometric: bool) -> None:
        self.counts = counts = self._fresh_counts()
        self.circles = self._template(self.geometry) if geometric else []
        for round_ in self.circles:
            for circle in round_:
                counts.add_circle(circle)
        for r, present, sizes in self.free[len(self.circles) :]:
            round_ = _build_round(
                present,
                sizes,
                counts,
                self.forbid,
                self.team,
                self.rng,
                constrained_first=True,
                deadline=self.deadline,
                round_index=r,
            )
            for circle in round_:
                counts.add_circle(circle)
            self.circles.append(round_)
        self._index()

    def _index(self) -> None:
        self.masks = [[sum(1 << p for p in c) for c in round_] for round_ in self.circles]
        self.where = []
        for round_ in self.circles:
            w = [-1] * self.n
            for ci, c in enumerate(round_):
                for p in c:
                    w[p] = ci
            self.where.append(w)
        self.team_cost = sum(_team_pairs(c, self.team) for round_ in self.circles for c in round_)

    def _load(self, circles: list[list[list[int]]]) -> None:
        self.circles = [[c[:] for c in round_] for round_ in circles]
        counts = self._fresh_counts()
        for round_ in self.circles:
            for c in round_:
                counts.add_circle(c)
        self.counts = counts
        self._index()

    def _objective(self) -> int:
        return (self.counts.repeats - self.base_repeats) * self.weight + self.team_cost

    def _swap(self, i: int, a: int, b: int) -> None:
        where, circles, masks, counts = self.where[i], self.circles[i], self.masks[i], self.counts
        ca, cb = where[a], where[b]
        A, B = circles[ca], circles[cb]
        team = self.team
        maskA, maskB = masks[ca] ^ (1 << a), masks[cb] ^ (1 << b)
        self.team_cost += (
            (team[a] & maskB).bit_count()
            - (team[a] & maskA).bit_count()
            + (team[b] & maskA).bit_count()
            - (team[b] & maskB).bit_count()
        )
        for c in A:
            if c != a:
                counts.dec(a, c)
                counts.inc(b, c)
        for d in B:
            if d != b:
                counts.dec(b, d)
                counts.inc(a, d)
        A[A.index(a)] = b
        B[B.index(b)] = a
        masks[ca] = maskA | (1 << b)
        masks[cb] = maskB | (1 << a)
        where[a], where[b] = cb, ca

    def _random_swap(self, rounds: list[int]) -> None:
        rng = self.rng
        i = rng.choice(rounds)
        round_ = self.circles[i]
        if len(round_) < 2:
            return
        ca, cb = rng.sample(range(len(round_)), 2)
        for _ in range(20):
            a, b = rng.choice(round_[ca]), rng.choice(round_[cb])
            ma, mb = self.masks[i][ca] ^ (1 << a), self.masks[i][cb] ^ (1 << b)
            if not (self.forbid[a] & mb) and not (self.forbid[b] & ma):
                self._swap(i, a, b)
                return

    def run(self) -> tuple[list[list[list[int]]], int, bool]:
        if not self.free:
            return [], 0, True
        # A geometric seed that covers every round is already optimal. A partial one (fewer
        # design rounds than asked for) is first kept fixed while the rest is searched, then
        # released: starting from its best completion beats starting greedy. A full shifted plan
        # with repeats, if any, is the best to beat from the start.
        self._construct(geometric=bool(self.geometry))
        start = [[c[:] for c in round_] for round_ in self.circles]
        kept = len(self.geometry) if len(self.geometry) < len(self.free) else 0
        release_at = time.perf_counter() + (self.deadline - time.perf_counter()) / 4
        best_obj = self._objective()
        best = [[c[:] for c in round_] for round_ in self.circles]
        if self.alternative:
            # The search still starts from the partial design, whose completion may do better.
            self._load(self.alternative)
            if self._objective() < best_obj:
                best_obj, best = self._objective(), [[c[:] for c in round_] for round_ in self.circles]
            self._load(start)
        floor = self.team_floor
        rng = self.rng
        it = 0
        tabu: dict[tuple[int, int, int], int] = {}
        stall = 0
        perturbations = 0
        weight = self.weight
        team_on = any(self.team)
        movable = [i for i in range(len(self.free)) if len(self.circles[i]) > 1]
        active = [i for i in movable if i >= kept] or movable
        while best_obj > floor and movable:
            now = time.perf_counter()
            if now > self.deadline:
                break
            if kept and now > release_at:
                kept, active = 0, movable
            if self.max_iterations is not None and it >= self.max_iterations:
                break
            it += 1
            obj = self._objective()
            met1, met2 = self.counts.met1, self.counts.met2
            forbid, team = self.forbid, self.team
            # Focus on rounds and people in a repeat; once repeats are gone, on same-team pairs.
            candidates: list[tuple[int, int]] = []
            order = active[:]
            rng.shuffle(order)
            repeat_phase = self.counts.repeats > self.base_repeats
            for i in order:
                masks, where = self.masks[i], self.where[i]
                conflict = met2 if repeat_phase else team
                for ci, c in enumerate(self.circles[i]):
                    m = masks[ci]
                    for p in c:
                        if conflict[p] & m:
                            candidates.append((i, p))
                if candidates:
                    break
            if not candidates:
                # Only the kept seed rounds can still improve (same-team pairs): release them.
                kept, active = 0, movable
                continue
            if len(candidates) > _CANDIDATES:
                candidates = rng.sample(candidates, _CANDIDATES)
            i = candidates[0][0]
            masks, where, circles = self.masks[i], self.where[i], self.circles[i]
            best_move, best_delta, ties = None, None, 0
            for _, a in candidates:
                ca = where[a]
                maskA = masks[ca] ^ (1 << a)
                m1a, fa, ta = met1[a], forbid[a], team[a]
                leave_a = (met2[a] & maskA).bit_count()
                team_a = (ta & maskA).bit_count()
                for cb, B in enumerate(circles):
                    if cb == ca:
                        continue
                    join_a = (m1a & masks[cb]).bit_count()
                    tjoin_a = (ta & masks[cb]).bit_count()
                    for b in B:
                        maskB = masks[cb] ^ (1 << b)
                        if (fa & maskB) or (forbid[b] & maskA):
                            continue
                        d = (
                            join_a
                            - ((m1a >> b) & 1)
                            - leave_a
                            + (met1[b] & maskA).bit_count()
                            - (met2[b] & maskB).bit_count()
                        ) * weight
                        if team_on:
                            d += (
                                tjoin_a
                                - ((ta >> b) & 1)
                                - team_a
                                + (team[b] & maskA).bit_count()
                                - (team[b] & maskB).bit_count()
                            )
                        if tabu.get((i, a, cb), 0) > it or tabu.get((i, b, ca), 0) > it:
                            if obj + d >= best_obj:
                                continue
                        if best_delta is None or d < best_delta:
                            best_move, best_delta, ties = (a, b), d, 1
                        elif d == best_delta:
                            ties += 1
                            if rng.randrange(ties) == 0:
                                best_move = (a, b)
            if best_move is None:
                stall += 1
            else:
                a, b = best_move
                ca, cb = where[a], where[b]
                self._swap(i, a, b)
                tenure = _TENURE_MIN + rng.randrange(_TENURE_SPAN)
                tabu[(i, a, ca)] = it + tenure
                tabu[(i, b, cb)] = it + tenure
                new_obj = obj + best_delta
                if new_obj < best_obj:
                    best_obj = new_obj
                    best = [[c[:] for c in round_] for round_ in self.circles]
                    stall = 0
                else:
                    stall += 1
            if stall > _STALL_BASE + _STALL_PER_PERSON * self.n:
                # Stuck: restart from the best plan shaken by a few random swaps, and now and
                # then from a new greedy construction, so the search leaves its basin.
                perturbations += 1
                stall = 0
                tabu.clear()
                if perturbations % 10 == 0:
                    self._construct(geometric=perturbations % 20 == 0)
                else:
                    self._load(best)
                    for _ in range(2 + rng.randrange(max(2, self.n // 4))):
                        self._random_swap(active)
                if self._objective() < best_obj:
                    best_obj = self._objective()
                    best = [[c[:] for c in round_] for round_ in self.circles]
        return best, it, best_obj <= floor
