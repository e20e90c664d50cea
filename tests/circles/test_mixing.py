"""The cohort mixing planner: hard constraints always hold, and it finds repeat-free plans."""

import io
import json
import random
from collections import Counter
from itertools import combinations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from circles.designs import (
    _pair_orbits,
    _shifted_rounds,
    _solve_gf2,
    affine_rounds,
    doubled_rounds,
    punctured_rounds,
    shifted_search,
)
from circles.mixing import (
    InfeasiblePlan,
    circle_count,
    circle_sizes,
    evaluate_rounds,
    plan_mixing,
    random_with_history,
)


def assert_valid(plan, people, size, *, forbidden=(), unavailable=None, skip=0):
    """Every present person sits exactly once per round, circles are balanced, no forbidden pair meets."""
    unavailable = unavailable or {}
    forbidden = {frozenset(p) for p in forbidden}
    for index, round_ in enumerate(plan.rounds[skip:], start=skip):
        present = [p for p in range(people) if p not in unavailable.get(index, set())]
        seated = sorted(p for circle in round_ for p in circle)
        assert seated == present
        sizes = sorted(len(c) for c in round_)
        assert len(round_) == circle_count(len(present), size)
        assert not sizes or sizes[-1] - sizes[0] <= 1
        for circle in round_:
            assert not any(frozenset(pair) in forbidden for pair in combinations(circle, 2))
    assert plan.repeats == evaluate_rounds(plan.rounds)[1]


@st.composite
def instances(draw):
    people = draw(st.integers(min_value=2, max_value=24))
    size = draw(st.integers(min_value=2, max_value=min(6, people)))
    rounds = draw(st.integers(min_value=1, max_value=4))
    # Forbidden pairs form a matching, which is always feasible once a round has two circles.
    order = draw(st.permutations(range(people)))
    count = draw(st.integers(min_value=0, max_value=people // 2))
    forbidden = [(order[2 * i], order[2 * i + 1]) for i in range(count)]
    unavailable = draw(
        st.dictionaries(
            st.integers(min_value=0, max_value=rounds - 1),
            st.sets(st.integers(min_value=0, max_value=people - 1), max_size=people // 3),
            max_size=rounds,
        )
    )
    return people, size, rounds, forbidden, unavailable


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(), st.integers(min_value=0, max_value=2**16))
def test_planned_rounds_never_break_a_hard_constraint(instance, seed):
    people, size, rounds, forbidden, unavailable = instance
    # A matching can only be infeasible in a round small enough for a single circle.
    infeasible = any(
        circle_count(people - len(unavailable.get(r, ())), size) == 1
        and any(a not in unavailable.get(r, ()) and b not in unavailable.get(r, ()) for a, b in forbidden)
        for r in range(rounds)
    )
    if infeasible:
        with pytest.raises(InfeasiblePlan, match="kept apart"):
            plan_mixing(people, size, rounds, forbidden=forbidden, unavailable=unavailable, seconds=0.1)
        return
    plan = plan_mixing(
        people,
        size,
        rounds,
        forbidden=forbidden,
        unavailable=unavailable,
        seconds=0.3,
        seed=seed,
        iterations=150,
    )
    assert_valid(plan, people, size, forbidden=forbidden, unavailable=unavailable)
    assert all(s.violations == 0 for s in plan.stats)


def test_uneven_cohort_gets_circles_that_differ_by_at_most_one():
    plan = plan_mixing(14, 4, 3, seconds=1.0, seed=3)
    assert_valid(plan, 14, 4)
    assert [sorted(len(c) for c in round_) for round_ in plan.rounds] == [[3, 3, 4, 4]] * 3


def test_circle_count_prefers_sizes_closest_to_the_wanted_size():
    assert circle_sizes(13, 6) == [7, 6]
    assert circle_sizes(14, 6) == [7, 7]
    assert circle_sizes(15, 6) == [5, 5, 5]
    assert circle_sizes(12, 6) == [6, 6]
    assert circle_sizes(1, 6) == [1]
    assert circle_sizes(0, 6) == []


def test_nine_people_in_threes_meet_everyone_once_over_four_rounds():
    plan = plan_mixing(9, 3, 4, seconds=2.0, seed=1)
    assert plan.repeats == 0
    assert all(s.new_pair_share == 1.0 for s in plan.stats)
    assert_valid(plan, 9, 3)


@pytest.mark.parametrize(
    ("design", "groups", "size", "rounds"),
    [
        (affine_rounds, 8, 4, 9),  # GF(8), plus the round that splits same-column people
        (affine_rounds, 9, 6, 9),  # GF(9) = GF(3)[x]/(x^2 + ...), an odd prime power
        (affine_rounds, 5, 5, 5),
        (punctured_rounds, 10, 8, 8),  # the plane over GF(9) minus a point
        (punctured_rounds, 6, 4, 3),
        (doubled_rounds, 8, 4, 10),  # two planes of order 4 on twins: 32 people in fours
        (doubled_rounds, 6, 3, 8),  # and of order 3: 18 people in threes
        (doubled_rounds, 8, 4, 6),  # fewer rounds than the design has: its first ones
    ],
)
def test_geometric_designs_are_repeat_free(design, groups, size, rounds):
    plan = design(groups, size, rounds)
    assert len(plan) == rounds
    for round_ in plan:
        assert sorted(p for circle in round_ for p in circle) == list(range(groups * size))
        assert {len(circle) for circle in round_} == {size}
    assert evaluate_rounds(plan)[1] == 0


def test_doubled_planes_seat_everyone_with_everyone_but_their_twin_exactly_once():
    plan = doubled_rounds(8, 4, 10)
    met = Counter(frozenset(p) for round_ in plan for c in round_ for p in combinations(c, 2))
    twins = {frozenset((2 * a, 2 * a + 1)) for a in range(16)}
    assert set(met.values()) == {1}
    assert set(map(frozenset, combinations(range(32), 2))) - set(met) == twins
    assert doubled_rounds(8, 4, 10) == plan  # a fixed sequence of relabellings: always the same plan


@pytest.mark.parametrize(("groups", "size"), [(8, 3), (10, 5), (4, 2), (12, 6)])
def test_doubled_planes_apply_only_to_twice_a_plane_of_order_3_or_4(groups, size):
    assert doubled_rounds(groups, size, 4) == []


def test_gf2_elimination_solves_a_consistent_system_and_refuses_a_contradiction():
    # x0 + x1 = 1, x1 + x2 = 0, x0 + x2 = 1 (bit 3 is the right-hand side).
    rows = [0b1011, 0b0110, 0b1101]
    x = _solve_gf2(rows, 3)
    assert [(x[0] + x[1]) % 2, (x[1] + x[2]) % 2, (x[0] + x[2]) % 2] == [1, 0, 1]
    # x0 + x1 = 0, x1 + x2 = 0, x0 + x2 = 1: the three add up to 0 = 1.
    assert _solve_gf2([0b0011, 0b0110, 0b1101], 3) is None


def test_thirty_two_people_in_fours_meet_nobody_twice_in_ten_cycles_even_with_forbidden_pairs():
    forbidden = [(0, 1), (2, 9), (5, 30), (12, 13)]
    plan = plan_mixing(32, 4, 10, forbidden=forbidden, seconds=5.0, seed=1)
    assert plan.repeats == 0
    assert plan.optimal
    assert_valid(plan, 32, 4, forbidden=forbidden)


def test_someone_kept_apart_from_two_people_still_gets_the_affine_rounds():
    # The doubled planes leave everyone a single partner never met, so they cannot keep person 0
    # from both 1 and 2; the 9 affine rounds can, and the first 9 rounds come from them even
    # before any search step.
    forbidden = [(0, 1), (0, 2)]
    for seed in range(3):
        plan = plan_mixing(32, 4, 10, forbidden=forbidden, seconds=5.0, seed=seed, iterations=0)
        assert_valid(plan, 32, 4, forbidden=forbidden)
        assert [s.repeats for s in plan.stats[:9]] == [0] * 9


def test_shifting_a_searched_base_round_solves_kirkmans_schoolgirls():
    plan = shifted_search(15, 3, 7, seconds=5.0, rng=random.Random(1))
    assert len(plan) == 7
    assert all(sorted(p for c in round_ for p in c) == list(range(15)) for round_ in plan)
    assert evaluate_rounds(plan)[1] == 0


def test_two_shifted_base_rounds_seat_eighteen_people_in_threes_for_eight_rounds():
    # No single base round works here (m = 8 leaves 4 repeats); two rounds shifted 4 times do.
    plan = shifted_search(18, 3, 8, seconds=6.0, rng=random.Random(1))
    assert len(plan) == 8
    assert all(sorted(p for c in round_ for p in c) == list(range(18)) for round_ in plan)
    assert evaluate_rounds(plan)[1] == 0


@pytest.mark.parametrize(("people", "m"), [(32, 10), (32, 5), (15, 7), (18, 4)])
def test_pair_orbit_costs_add_up_to_the_shifted_plans_repeats(people, m):
    # The search scores base rounds by orbit costs; they must equal the expanded plan's repeats,
    # including pairs half a cycle apart and the fixed people (32 people shifted 10 times).
    rng = random.Random(people * m)
    orbit, first = _pair_orbits(people, m)
    for _ in range(5):
        bases = []
        for _ in range(2):
            order = list(range(people))
            rng.shuffle(order)
            bases.append([order[i : i + people // 8 or 2] for i in range(0, people, people // 8 or 2)])
        uses = Counter(orbit[p * people + q] for base in bases for c in base for p, q in combinations(c, 2))
        cost = sum((u - 1) * m + first[k] for k, u in uses.items())
        assert cost == evaluate_rounds(_shifted_rounds(people, m, bases))[1]


# One base round for 32 people in fours, shifted 10 times: a single clash, 10 repeats.
NEAR_BASE = [[8, 17, 21, 29], [4, 12, 23, 31], [6, 7, 9, 24], [1, 5, 11, 25]]
NEAR_BASE += [[2, 13, 19, 28], [10, 20, 26, 27], [3, 15, 16, 18], [0, 14, 22, 30]]


def test_a_shifted_plan_with_repeats_is_kept_when_it_beats_the_partial_design(monkeypatch):
    # Without the doubled planes, the 9 affine rounds are the partial design, and they have no
    # repeat-free 10th round; without a search step (iterations=0) the planner returns the
    # better of their greedy completion and the shifted plan.
    monkeypatch.setattr("circles.mixing.doubled_rounds", lambda *args: [])
    near = _shifted_rounds(32, 10, [NEAR_BASE])
    assert evaluate_rounds(near)[1] == 10
    monkeypatch.setattr("circles.mixing.shifted_search", lambda *args, **kwargs: near)
    plan = plan_mixing(32, 4, 10, seconds=5.0, seed=3, iterations=0)
    assert_valid(plan, 32, 4)
    assert plan.repeats == 10
    # A worse one (everyone in the same circles every round) is not.
    same = [[list(range(i, i + 4)) for i in range(0, 32, 4)]] * 10
    monkeypatch.setattr("circles.mixing.shifted_search", lambda *args, **kwargs: same)
    plan = plan_mixing(32, 4, 10, seconds=5.0, seed=3, iterations=0)
    assert_valid(plan, 32, 4)
    assert 10 < plan.repeats < evaluate_rounds(same)[1]


def test_eighty_people_in_circles_of_eight_meet_nobody_twice_in_eight_cycles():
    plan = plan_mixing(80, 8, 8, seconds=5.0, seed=1)
    assert plan.repeats == 0
    assert_valid(plan, 80, 8)


def test_search_alone_finds_a_repeat_free_plan_around_history():
    # History breaks the symmetry, so no geometric seed is used: the search has to find it.
    plan = plan_mixing(16, 4, 3, history=[(0, 1), (2, 3)], seconds=2.0, seed=2)
    assert plan.repeats == 0
    assert_valid(plan, 16, 4)


def test_meeting_a_history_pair_again_counts_as_a_repeat():
    plan = plan_mixing(4, 4, 1, history=[(0, 1), (2, 3)], seconds=0.5, seed=1)
    assert plan.rounds == [[[0, 1, 2, 3]]]
    assert plan.repeats == 2
    assert plan.stats[0].repeats == 2


def test_fixed_rounds_are_kept_verbatim_and_only_later_rounds_are_planned():
    past = [[[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[0, 3, 6], [1, 4, 7], [2, 5, 8]]]
    # Person 8 leaves after the second round.
    plan = plan_mixing(9, 3, 4, fixed_rounds=past, unavailable={2: {8}, 3: {8}}, seconds=2.0, seed=5)
    assert plan.rounds[:2] == past
    assert [s.fixed for s in plan.stats] == [True, True, False, False]
    assert_valid(plan, 9, 3, unavailable={2: {8}, 3: {8}}, skip=2)
    assert plan.repeats == 0


def test_a_forbidden_group_larger_than_the_number_of_circles_is_refused():
    with pytest.raises(InfeasiblePlan, match=r"\[0, 1, 2\].*only 2 circles"):
        plan_mixing(6, 3, 1, forbidden=[(0, 1), (1, 2), (0, 2)], seconds=0.5)


def test_a_manager_and_report_are_kept_apart_even_when_it_costs_repeats():
    forbidden = [(0, 1), (2, 3), (4, 5)]
    plan = plan_mixing(9, 3, 4, forbidden=forbidden, seconds=0.5, seed=4)
    assert_valid(plan, 9, 3, forbidden=forbidden)


def test_teams_are_spread_across_circles():
    teams = [0, 0, 0, 1, 1, 1, 2, 2, 2]
    plan = plan_mixing(9, 3, 1, teams=teams, seconds=1.0, seed=1)
    for circle in plan.rounds[0]:
        assert sorted(teams[p] for p in circle) == [0, 1, 2]
    assert plan.team_pairs == 0


def test_same_seed_and_step_budget_give_the_same_plan():
    first = plan_mixing(20, 4, 4, history=[(0, 1)], seconds=5.0, seed=9, iterations=300)
    second = plan_mixing(20, 4, 4, history=[(0, 1)], seconds=5.0, seed=9, iterations=300)
    assert first.rounds == second.rounds


def test_malformed_input_is_rejected_with_a_reason():
    with pytest.raises(ValueError, match="at least 2"):
        plan_mixing(5, 1, 2)
    with pytest.raises(ValueError, match="person 7"):
        plan_mixing(5, 2, 2, forbidden=[(0, 7)])
    with pytest.raises(ValueError, match="appears twice"):
        plan_mixing(4, 2, 2, fixed_rounds=[[[0, 1], [1, 2]]])


def test_random_with_history_baseline_is_valid_and_repeats_more():
    baseline = random_with_history(15, 3, 7, seed=1)
    assert_valid(baseline, 15, 3)
    assert baseline.repeats > 0


def run_command(*args):
    out = io.StringIO()
    call_command("plan_mixing", *args, stdout=out)
    return out.getvalue()


def test_command_prints_the_plan_as_json(tmp_path):
    forbid = tmp_path / "forbid.csv"
    forbid.write_text("0,1\n# the Tuesday pair\n4 5\n")
    data = json.loads(
        run_command(
            "--people=12",
            "--size=4",
            "--rounds=3",
            f"--forbid-file={forbid}",
            "--seconds=1",
            "--seed=1",
            "--json",
        )
    )
    assert len(data["rounds"]) == 3
    for round_ in data["rounds"]:
        assert sorted(p for circle in round_ for p in circle) == list(range(12))
        for circle in round_:
            assert not {0, 1} <= set(circle) and not {4, 5} <= set(circle)
    assert data["repeats"] == evaluate_rounds(data["rounds"])[1]
    assert [s["violations"] for s in data["stats"]] == [0, 0, 0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--people=5", "--size=1", "--rounds=2"], "at least 2"),
        (["--people=5", "--size=6", "--rounds=2"], "larger than"),
        (["--people=5", "--size=2", "--rounds=2", "--forbid-file=/no/such/file"], "cannot read"),
    ],
)
def test_command_rejects_bad_input_with_a_clear_error(args, message):
    with pytest.raises(CommandError, match=message):
        run_command(*args, "--json")


def test_command_rejects_a_forbid_file_with_an_unknown_person(tmp_path):
    forbid = tmp_path / "forbid.txt"
    forbid.write_text("0 1\n2 9\n")
    with pytest.raises(CommandError, match="line 2: person 9 is out of range"):
        run_command("--people=6", "--size=2", "--rounds=1", f"--forbid-file={forbid}", "--json")


def test_command_turns_an_infeasible_plan_into_a_clear_error(tmp_path):
    forbid = tmp_path / "forbid.txt"
    forbid.write_text("0 1\n1 2\n0 2\n")
    with pytest.raises(CommandError, match="kept apart"):
        run_command("--people=4", "--size=2", "--rounds=1", f"--forbid-file={forbid}", "--json")
