"""Known repeat-free designs the mixing planner starts from when nothing breaks the symmetry.

`affine_rounds`, `punctured_rounds` and `doubled_rounds` return rounds of circles of person
indices `0..people-1` in which nobody meets anyone twice, or fewer rounds (or none) when the
design does not reach that far. `shifted_search` returns a full plan made of shifted base rounds, repeat-free
when its search finds one and otherwise the one with fewest repeats it found. The planner
relabels people at random before use, so these fixed labels carry no meaning. Pure Python.
"""

from __future__ import annotations

import math
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


# Relabellings of the second plane `doubled_rounds` tries before giving up (about half work).
_DOUBLED_ATTEMPTS = 50


def doubled_rounds(groups: int, size: int, rounds: int) -> list[list[list[int]]]:
    """Repeat-free rounds for 2q^2 people in 2q circles of q (q = `size`), up to 2q + 2 of them.

    People come in twins, 2a and 2a + 1 for each point a of the affine plane of order q. The
    rounds are the plane's q + 1 parallel classes (`affine_rounds`) followed by those of a
    second plane on the same points, the first one relabelled. A line L becomes two circles:
    each point a on L sends twin 2a + s(L, a) to the first and the other twin to the second,
    for signs s in GF(2). Two points lie on one line of each plane, and their twins meet in L's
    circles when the twin bits differ by s(L, a) + s(L, b); asking the two lines for different
    sums (one GF(2) equation per pair of points) makes each of the four twin pairs meet exactly
    once, and twins never meet. The signs come from solving those equations (`_solve_gf2`).

    That gives 32 people in fours for 10 rounds (every pair but the twins meets once, the most
    rounds possible) and 18 people in threes for 8. Three points on a line of both planes make
    the equations inconsistent (their three sums add up to 0 in each plane), so for q = 4 the
    second plane is a GF(2)-linear relabelling: its lines meet the first plane's in at most two
    points or in a whole line, which the elimination rejects; about half of them work. For q = 3
    a random relabelling does (one in five). Beyond q = 4 the equations (q^2(q^2 - 1)/2)
    outnumber the unknowns (2q(q^2 - 1)), so none is tried. The relabellings come from a fixed
    seed, so the result never varies. Returns [] when the shape does not apply or no
    relabelling works.
    """
    q = size
    if groups != 2 * q or not 3 <= q <= 4 or rounds < 1:
        return []
    plane = affine_rounds(q, q, q + 1)
    points, classes = q * q, 2 * (q + 1)
    rng = random.Random(q)  # nosec B311  # a fixed sequence of relabellings to try, not a secret
    for _attempt in range(_DOUBLED_ATTEMPTS):
        label = _relabelling(q, rng)
        both = plane + [[[label[a] for a in line] for line in class_] for class_ in plane]
        # class_of[plane][a * points + b]: the class of that plane whose line holds a and b.
        class_of = [[0] * (points * points), [0] * (points * points)]
        for c, class_ in enumerate(both):
            table = class_of[c > q]
            for line in class_:
                for i, a in enumerate(line):
                    for b in line[i + 1 :]:
                        table[a * points + b] = table[b * points + a] = c
        unknowns = classes * points  # s(L, a) is unknown c * points + a, L the line of class c through a
        rows = []
        for a in range(points):
            for b in range(a + 1, points):
                row = 1 << unknowns  # right-hand side: the two sums differ
                for c in (class_of[0][a * points + b], class_of[1][a * points + b]):
                    row ^= (1 << (c * points + a)) ^ (1 << (c * points + b))
                rows.append(row)
        signs = _solve_gf2(rows, unknowns)
        if signs is None:
            continue
        out = []
        for c, class_ in enumerate(both[:rounds]):
            circles = []
            for line in class_:
                circles.append([2 * a + signs[c * points + a] for a in line])
                circles.append([2 * a + 1 - signs[c * points + a] for a in line])
            out.append(circles)
        return out
    return []


def _relabelling(q: int, rng: random.Random) -> list[int]:
    """A random relabelling of the q^2 points of `affine_rounds(q, q, q + 1)`.

    For a prime power p^k with k > 1, a GF(p)-linear one: a point's index x*q + y, written in
    2k base-p digits, is its coordinate vector, and lines are cosets of subspaces, so the
    images of lines meet the lines in a subspace's coset. For a prime q, any permutation
    (a linear one would map the plane onto itself).
    """
    p = next(d for d in range(2, q + 1) if q % d == 0)
    dims = 2 * round(math.log(q, p))
    points = q * q
    if dims == 2:
        label = list(range(points))
        rng.shuffle(label)
        return label
    powers = [p**i for i in range(dims)]
    while True:
        images = [[rng.randrange(p) for _ in range(dims)] for _ in range(dims)]
        label = [
            sum(
                powers[j] * (sum((v // powers[i]) % p * images[i][j] for i in range(dims)) % p)
                for j in range(dims)
            )
            for v in range(points)
        ]
        if len(set(label)) == points:
            return label


def _solve_gf2(rows: list[int], unknowns: int) -> list[int] | None:
    """One solution of a linear system over GF(2), or None when it has none.

    Bit j of a row is unknown j's coefficient and bit `unknowns` the right-hand side. Gauss-Jordan
    elimination on Python ints; unknowns left free are set to 0.
    """
    mask = (1 << unknowns) - 1
    pivots: dict[int, int] = {}  # column -> the reduced row whose leading unknown it is
    for row in rows:
        for col, pivot in pivots.items():
            if row >> col & 1:
                row ^= pivot
        if not row & mask:
            if row:
                return None  # 0 = 1
            continue
        col = (row & mask).bit_length() - 1
        for other, pivot in list(pivots.items()):
            if pivot >> col & 1:
                pivots[other] = pivot ^ row
        pivots[col] = row
    values = [0] * unknowns
    for col, pivot in pivots.items():
        values[col] = pivot >> unknowns & 1
    return values


def _shifted_rounds(people: int, m: int, bases: list[list[list[int]]]) -> list[list[list[int]]]:
    """The plan made by shifting each base round m times.

    People are copies ("layers") of Z_m plus the few left over (people mod m), who stay fixed;
    shift r adds r to everyone's Z_m coordinate. A shift maps a pair to a pair of the same layers
    and difference, which is what `_pair_orbits` counts on.
    """
    fixed = m * (people // m)
    return [
        [[p if p >= fixed else (p // m) * m + (p % m + r) % m for p in circle] for circle in base]
        for base in bases
        for r in range(m)
    ]


def _shift_orders(people: int, size: int, rounds: int) -> list[int]:
    """The shift counts m (largest first) for which `rounds` is a whole number of m-shifted bases."""
    circles = people // size
    if people % size or circles < 2:
        return []
    return [m for m in range(rounds, 2, -1) if rounds % m == 0 and people // m and people % m <= circles]


# Tabu settings for `shifted_search` (tuned on 32 people in fours for 10 rounds).
_SHIFT_TENURE_MIN, _SHIFT_TENURE_SPAN = 4, 8
_SHIFT_STALL = 150  # steps without a new best before restarting from it, shaken
_SHIFT_CANDIDATES = 8  # people in a clash whose swaps are scored per step
_SHIFT_FRESH = 10  # every 10th restart shakes the best plan thoroughly


def _pair_orbits(people: int, m: int) -> tuple[list[int], list[int]]:
    """Every pair's orbit under the shift (see `_shifted_rounds`) and what its first use costs.

    Returns a flat people*people table of orbit numbers and, per orbit, the repeats one base pair
    of it brings: a base pair meets in all m shifted rounds, so an orbit of length c (m, m/2 for a
    pair half a cycle apart, 1 for two fixed people) is met m/c times each, m - c repeats in all;
    each further base pair of the same orbit brings m more.
    """
    fixed = m * (people // m)
    shift = [p if p >= fixed else (p // m) * m + (p % m + 1) % m for p in range(people)]
    orbit = [-1] * (people * people)
    first: list[int] = []
    for p in range(people):
        for q in range(p + 1, people):
            a, b, length = p, q, 0
            while orbit[a * people + b] < 0:
                orbit[a * people + b] = orbit[b * people + a] = len(first)
                a, b = shift[a], shift[b]
                length += 1
            if length:
                first.append(m - length)
    return orbit, first


def _exchange(
    uses: list[int], first: list[int], m: int, row_x: list[int], row_y: list[int], rest_x, rest_y
) -> int:
    """x leaves its circle mates `rest_x` for y's, `rest_y`, and y the reverse; returns the repeats change.

    `row_x` and `row_y` are x's and y's rows of the orbit table. Calling it again with the two
    rows exchanged undoes it, which is how a move is evaluated.
    """
    delta = 0
    for rest, leaving, joining in ((rest_x, row_x, row_y), (rest_y, row_y, row_x)):
        for c in rest:
            k = leaving[c]
            u = uses[k] - 1
            uses[k] = u
            delta -= m if u else first[k]
            k = joining[c]
            u = uses[k]
            uses[k] = u + 1
            delta += m if u else first[k]
    return delta


def shifted_search(
    people: int, size: int, rounds: int, *, seconds: float, rng: random.Random
) -> list[list[list[int]]]:
    """The plan of shifted base rounds (`_shifted_rounds`) with fewest repeats found in `seconds`.

    Each m for which `rounds` is a whole number of m-shifted base rounds first gets a sixth of the
    time split between them (stopping at a repeat-free plan); the m that came closest gets the
    rest, from where it stopped. Only the base rounds are searched (`_shift_tabu`), which is
    tiny next to the whole plan: Kirkman's 15 schoolgirls (m = 7) and 18 people in threes for 8
    rounds (m = 4, two base rounds) take milliseconds. 32 people in fours for 10 rounds has no
    repeat-free plan from one base round shifted 10 times (an exhaustive search found none; this
    search reaches a single clash, 10 repeats, and `doubled_rounds` builds a repeat-free plan).
    Returns [] when no m applies.
    """
    ms = _shift_orders(people, size, rounds)
    if not ms:
        return []
    deadline = time.perf_counter() + seconds
    tried = []
    order = list(range(people))
    for m in ms:
        bases = []
        for _ in range(rounds // m):
            rng.shuffle(order)
            bases.append([order[i : i + size] for i in range(0, people, size)])
        bases, repeats = _shift_tabu(people, size, m, bases, seconds / (6 * len(ms)), rng)
        if not repeats:
            return _shifted_rounds(people, m, bases)
        tried.append((repeats, m, bases))
    _, m, bases = min(tried, key=lambda t: t[0])
    bases, _ = _shift_tabu(people, size, m, bases, deadline - time.perf_counter(), rng)
    return _shifted_rounds(people, m, bases)


def _shift_tabu(
    people: int, size: int, m: int, bases: list[list[list[int]]], seconds: float, rng: random.Random
) -> tuple[list[list[list[int]]], int]:
    """Tabu search from these base rounds; returns the best bases found and their plan's repeats.

    A step swaps two people between circles of a base round, one of them in a clash, scored by the
    change in the whole plan's repeats (`_pair_orbits`); a swapped person may not go back for a
    few steps unless that beats the best, and a long stall restarts from the best, shaken.
    """
    orbit, first = _pair_orbits(people, m)
    rows = [orbit[p * people : (p + 1) * people] for p in range(people)]
    bases = [[c[:] for c in base] for base in bases]

    def load(plan: list[list[list[int]]]) -> tuple[list[list[int]], list[int], int]:
        uses = [0] * len(first)
        where = []
        for base in plan:
            seat = [0] * people
            for ci, circle in enumerate(base):
                for i, p in enumerate(circle):
                    seat[p] = ci
                    for q in circle[i + 1 :]:
                        uses[rows[p][q]] += 1
            where.append(seat)
        return where, uses, sum((u - 1) * m + f for u, f in zip(uses, first, strict=True) if u)

    where, uses, repeats = load(bases)
    best, best_bases = repeats, [[c[:] for c in base] for base in bases]
    deadline = time.perf_counter() + seconds
    tabu: dict[tuple[int, int, int], int] = {}
    step = stall = restarts = 0
    while best and time.perf_counter() < deadline:
        step += 1
        move, move_delta, ties = None, 0, 0
        for bi, base in enumerate(bases):
            seat = where[bi]
            clashing = [
                p
                for circle in base
                for p in circle
                if any(q != p and (uses[rows[p][q]] > 1 or first[rows[p][q]]) for q in circle)
            ]
            if len(clashing) > _SHIFT_CANDIDATES:
                clashing = rng.sample(clashing, _SHIFT_CANDIDATES)
            # A move is scored exactly, by making it and undoing it: the orbits are so few (52 for
            # 32 people shifted 10 times) that the changed pairs often share one, so scoring
            # pair by pair would misjudge about a third of the moves. a leaves once for all b.
            for a in clashing:
                ca, row_a = seat[a], rows[a]
                rest_a = [c for c in base[ca] if c != a]
                leave = 0
                for c in rest_a:
                    k = row_a[c]
                    u = uses[k] - 1
                    uses[k] = u
                    leave -= m if u else first[k]
                for cb, circle_b in enumerate(base):
                    if cb == ca:
                        continue
                    tabu_a = tabu.get((bi, a, cb), 0) > step
                    for b in circle_b:
                        row_b = rows[b]
                        rest_b = [d for d in circle_b if d != b]
                        delta = leave
                        for d in rest_b:
                            k = row_b[d]
                            u = uses[k] - 1
                            uses[k] = u
                            delta -= m if u else first[k]
                        for c in rest_a:
                            k = row_b[c]
                            u = uses[k]
                            uses[k] = u + 1
                            delta += m if u else first[k]
                        for d in rest_b:
                            k = row_a[d]
                            u = uses[k]
                            uses[k] = u + 1
                            delta += m if u else first[k]
                        for d in rest_b:
                            uses[row_b[d]] += 1
                            uses[row_a[d]] -= 1
                        for c in rest_a:
                            uses[row_b[c]] -= 1
                        if tabu_a or tabu.get((bi, b, ca), 0) > step:
                            if repeats + delta >= best:
                                continue
                        if move is None or delta < move_delta:
                            move, move_delta, ties = (bi, a, b), delta, 1
                        elif delta == move_delta:
                            ties += 1
                            if rng.randrange(ties) == 0:
                                move = (bi, a, b)
                for c in rest_a:
                    uses[row_a[c]] += 1
        stall += 1
        if move is not None:
            bi, a, b = move
            seat, base = where[bi], bases[bi]
            ca, cb = seat[a], seat[b]
            rest_a = [c for c in base[ca] if c != a]
            rest_b = [d for d in base[cb] if d != b]
            repeats += _exchange(uses, first, m, rows[a], rows[b], rest_a, rest_b)
            base[ca][base[ca].index(a)] = b
            base[cb][base[cb].index(b)] = a
            seat[a], seat[b] = cb, ca
            tenure = _SHIFT_TENURE_MIN + rng.randrange(_SHIFT_TENURE_SPAN)
            tabu[(bi, a, ca)] = tabu[(bi, b, cb)] = step + tenure
            if repeats < best:
                best, best_bases, stall = repeats, [[c[:] for c in base] for base in bases], 0
        if stall > _SHIFT_STALL:
            # Stuck: go back to the best plan and shake it with a few random swaps, or now and
            # then with many (a fresh start that keeps the best in hand).
            restarts += 1
            bases = [[c[:] for c in base] for base in best_bases]
            shake = people if restarts % _SHIFT_FRESH == 0 else 1 + rng.randrange(3)
            for _ in range(shake):
                base = rng.choice(bases)
                ca, cb = rng.sample(range(len(base)), 2)
                ia, ib = rng.randrange(size), rng.randrange(size)
                base[ca][ia], base[cb][ib] = base[cb][ib], base[ca][ia]
            where, uses, repeats = load(bases)
            tabu.clear()
            stall = 0
    return best_bases, best
