"""Known repeat-free designs the mixing planner starts from when nothing breaks the symmetry.

Each function returns rounds of circles of person indices `0..people-1` in which nobody meets
anyone twice, or fewer rounds (or none) when the design does not reach that far. The planner
relabels people at random before use, so these fixed labels carry no meaning. Pure Python.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class _Field:
    """GF(q) on the integers 0..q-1, by lookup tables (q is small: at most the cohort size)."""

    add: list[list[int]]
    sub: list[list[int]]
    mul: list[list[int]]


def _field(order: int) -> _Field | None:
    """The finite field of `order` elements when `order` is a prime power, else None.

    Elements are polynomials over GF(p) written as base-p digits; multiplication goes through
    powers of x modulo the first monic polynomial of degree k for which x generates every nonzero
    element (a primitive polynomial, so the quotient is a field).
    """
    if order < 2:
        return None
    p = next(d for d in range(2, order + 1) if order % d == 0)
    k, rest = 0, order
    while rest % p == 0:
        rest //= p
        k += 1
    if rest != 1:
        return None

    def digits(a: int) -> list[int]:
        return [(a // p**i) % p for i in range(k)]

    def number(ds: list[int]) -> int:
        return sum(d * p**i for i, d in enumerate(ds))

    add = [
        [number([(x + y) % p for x, y in zip(digits(a), digits(b), strict=True)]) for b in range(order)]
        for a in range(order)
    ]
    sub = [
        [number([(x - y) % p for x, y in zip(digits(a), digits(b), strict=True)]) for b in range(order)]
        for a in range(order)
    ]
    for poly in range(p**k):
        low = digits(poly)  # x^k = -(low coefficients) modulo the polynomial
        power, exp = [1] + [0] * (k - 1), []
        for _ in range(order - 1):
            exp.append(number(power))
            carry = power[-1]
            power = [0] + power[:-1]
            power = [(c - carry * low_c) % p for c, low_c in zip(power, low, strict=True)]
        if 0 not in exp and len(set(exp)) == order - 1:
            break
    log = {e: i for i, e in enumerate(exp)}
    mul = [
        [0 if a == 0 or b == 0 else exp[(log[a] + log[b]) % (order - 1)] for b in range(order)]
        for a in range(order)
    ]
    return _Field(add, sub, mul)


def affine_rounds(groups: int, size: int, rounds: int) -> list[list[list[int]]]:
    """Repeat-free rounds for `groups * size` people from finite-field geometry, as many as it gives.

    Person x*size + y stands for the point (x, y) with x in GF(groups) and y among the first `size`
    elements; in round r circle j holds the points with x + r*y = j. Two people with different y
    meet in exactly one round r = (x1 - x2) / (y2 - y1), people with the same y never do, so when
    `size` divides `groups` one more round splits the same-y people. Works when `groups` is a prime
    power and `size <= groups`; returns [] otherwise. Used to seed the search
    when nothing (history, absences) breaks the symmetry.
    """
    field = _field(groups)
    if field is None or size > groups or size < 2:
        return []
    add, mul = field.add, field.mul
    out = []
    for r in range(min(rounds, groups)):
        circles: list[list[int]] = [[] for _ in range(groups)]
        for x in range(groups):
            for y in range(size):
                circles[add[x][mul[r][y]]].append(x * size + y)
        out.append(circles)
    if len(out) < rounds and groups % size == 0:
        out.append(
            [[x * size + y for x in range(c, c + size)] for y in range(size) for c in range(0, groups, size)]
        )
    return out


def punctured_rounds(groups: int, size: int, rounds: int) -> list[list[list[int]]]:
    """Repeat-free rounds for q+1 circles of q-1 (q a prime power): the affine plane minus a point.

    The q*q - 1 people are the points of the plane over GF(q) except the origin. Round r takes
    the lines of slope r: the line through the origin keeps its q-1 people, and every other line
    gives up the one person it shares with a spare line M_r (a line not through the origin, of
    slope q-1 or vertical, never used for a round); those q-1 people form the last circle. Each
    pair lies on exactly one line and every M_r is different, so nobody meets twice in up to
    q-1 rounds (8 rounds of 10 circles of 8 for 80 people, with q = 9).
    """
    q = size + 1
    field = _field(q)
    if field is None or groups != q + 1:
        return []
    sub, mul = field.sub, field.mul
    points = [(x, y) for x in range(q) for y in range(q) if (x, y) != (0, 0)]
    # (slope, offset) of the spare lines y - slope*x = offset; slope None is the vertical x = offset.
    spare_lines = [(q - 1, c) for c in range(1, q)] + [(None, c) for c in range(1, q)]
    out = []
    for r in range(min(rounds, q - 1)):
        slope, c = spare_lines[r]
        spare = {
            i for i, (x, y) in enumerate(points) if (x == c if slope is None else sub[y][mul[slope][x]] == c)
        }
        circles: list[list[int]] = [[] for _ in range(q)]
        for i, (x, y) in enumerate(points):
            line = sub[y][mul[r][x]]
            if line == 0 or i not in spare:
                circles[line].append(i)
        circles.append(sorted(i for i in spare if sub[points[i][1]][mul[r][points[i][0]]] != 0))
        out.append(circles)
    return out


class _Shifted:
    """Base rounds, each shifted m times to make the plan, with the plan's repeats kept up to date.

    People are `layers` copies of Z_m plus a few fixed people; shift r adds r to everyone's Z_m
    coordinate. A shift maps a pair to a pair of the same kind (same layers, same difference),
    so each base pair covers m consecutive positions of its kind's cycle and overlaps are exactly
    the plan's repeats. Adding or removing one pair updates the count in O(m).
    """

    def __init__(self, people: int, m: int, bases: list[list[list[int]]]):
        self.people, self.m, self.fixed = people, m, m * (people // m)
        self.bases = bases
        self.cover: dict[tuple, list[int]] = {}
        self.repeats = 0
        for base in bases:
            for circle in base:
                for i, p in enumerate(circle):
                    for q in circle[i + 1 :]:
                        self._count(p, q, 1)

    def _slots(self, p: int, q: int) -> tuple[list[int], int, int]:
        """The cycle of positions of this pair's kind, and where the pair's m shifts start."""
        m, fixed = self.m, self.fixed
        if p > q:
            p, q = q, p
        if p >= fixed:  # two fixed people meet in every shift: one slot, counted m times
            key, pos, cycle = (p, q), 0, 1
        elif q >= fixed:
            key, pos, cycle = (q, p // m), p % m, m
        else:
            x, y, lx, ly = p % m, q % m, p // m, q // m
            if lx == ly:
                d = (y - x) % m
                if d > m - d:
                    x, d = y, m - d
                cycle = m // 2 if 2 * d == m else m
                key, pos = (-1, lx, d), x % cycle
            else:
                key, pos, cycle = (-2, lx, ly, (y - x) % m), x, m
        seen = self.cover.get(key)
        if seen is None:
            seen = self.cover[key] = [0] * cycle
        return seen, pos, cycle

    def _count(self, p: int, q: int, sign: int) -> None:
        seen, pos, cycle = self._slots(p, q)
        for j in range(pos, pos + self.m):
            k = j % cycle
            if sign > 0:
                self.repeats += seen[k] > 0
                seen[k] += 1
            else:
                seen[k] -= 1
                self.repeats -= seen[k] > 0

    def rounds(self) -> list[list[list[int]]]:
        m, fixed = self.m, self.fixed
        return [
            [[p if p >= fixed else (p // m) * m + (p % m + r) % m for p in circle] for circle in base]
            for base in self.bases
            for r in range(m)
        ]


class _OutOfSteps(Exception):
    """This attempt at a shifted design used its step allowance (or the clock ran out)."""


def _complete(state: _Shifted, b: int, unplaced: list[int], size: int, budget: list, rng) -> bool:
    """Fill base round b (then the later ones) with circles that keep the plan repeat-free.

    Depth-first: the lowest unplaced person takes partners in random order, and a partner is
    tried only if every pair so far is of a kind no other base pair has used on those shifts.
    `budget` is [steps left, deadline].
    """
    if not unplaced:
        return b + 1 == len(state.bases) or _complete(
            state, b + 1, list(range(state.people)), size, budget, rng
        )
    pool = unplaced[1:]
    rng.shuffle(pool)

    def extend(circle: list[int], start: int) -> bool:
        if len(circle) == size:
            if _complete(state, b, [p for p in unplaced if p not in circle], size, budget, rng):
                state.bases[b].append(circle)
                return True
            return False
        for index in range(start, len(pool)):
            budget[0] -= 1
            if budget[0] < 0 or (budget[0] % 256 == 0 and time.perf_counter() > budget[1]):
                raise _OutOfSteps
            q = pool[index]
            for r in circle:
                state._count(r, q, 1)
            if state.repeats == 0 and extend([*circle, q], index + 1):
                return True
            for r in circle:
                state._count(r, q, -1)
        return False

    return extend([unplaced[0]], 0)


def cyclic_rounds(
    people: int, size: int, rounds: int, *, seconds: float, rng: random.Random
) -> list[list[list[int]]]:
    """A repeat-free plan made of shifted base rounds, if a short search finds one; else [].

    For each m dividing `rounds` (largest first, m >= 3) it searches rounds/m base rounds (see
    `_Shifted`) depth-first, restarting in a new random order with a doubled step allowance
    until its share of `seconds` is spent. Only base rounds are searched, which is tiny next to
    the whole plan: Kirkman's 15 schoolgirls (m = 7) and 18 people in threes for 8 rounds
    (m = 4, two base rounds) take well under a second. Cohorts over 120 people are skipped
    (the search recurses once per person placed).
    """
    circles = people // size
    if people % size or circles < 2 or people > 120:
        return []
    ms = [m for m in range(rounds, 2, -1) if rounds % m == 0 and people // m and people % m <= circles]
    # Several base rounds are harder to find than one, so their searches get a larger share.
    shares = sum(rounds // m for m in ms)
    for m in ms:
        deadline = time.perf_counter() + seconds * (rounds // m) / shares
        allowance = 1000
        while time.perf_counter() < deadline:
            state = _Shifted(people, m, [[] for _ in range(rounds // m)])
            try:
                if _complete(state, 0, list(range(people)), size, [allowance, deadline], rng):
                    return state.rounds()
                break  # searched to the end: no such design for this m
            except _OutOfSteps:
                allowance *= 2
    return []
