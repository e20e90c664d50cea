"""`manage.py plan_mixing`: plan cohort mixing rounds from the command line, without a database."""

import csv
import json

from django.core.management.base import BaseCommand, CommandError

from circles.mixing import InfeasiblePlan, plan_mixing


def read_forbidden_pairs(path: str, people: int) -> list[tuple[int, int]]:
    """Pairs from a file of lines "i j" or "i,j" (person indices); blank lines and # comments skipped."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read forbid file {path}: {exc}") from exc
    pairs = []
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        fields = [f.strip() for f in next(csv.reader([text]))] if "," in text else text.split()
        if len(fields) != 2 or not all(f.lstrip("-").isdigit() for f in fields):
            raise CommandError(f"{path} line {number}: expected two person indices, got {line!r}")
        a, b = int(fields[0]), int(fields[1])
        for p in (a, b):
            if not 0 <= p < people:
                raise CommandError(f"{path} line {number}: person {p} is out of range (0 to {people - 1})")
        if a == b:
            raise CommandError(f"{path} line {number}: a person cannot be kept apart from themselves")
        pairs.append((a, b))
    return pairs


class Command(BaseCommand):
    help = (
        "Plan rounds of circles so a cohort meets as many new peers as possible; "
        "forbidden pairs never share a circle."
    )

    def add_arguments(self, parser):
        parser.add_argument("--people", type=int, required=True, help="cohort size (people 0..N-1)")
        parser.add_argument("--size", type=int, required=True, help="wanted circle size")
        parser.add_argument("--rounds", type=int, required=True, help="number of rounds (cycles)")
        parser.add_argument("--forbid-file", help='file of pairs "i j" or "i,j" that must never meet')
        parser.add_argument("--seconds", type=float, default=10.0, help="time budget (default 10)")
        parser.add_argument("--seed", type=int, default=None, help="random seed, for repeatable runs")
        parser.add_argument("--json", action="store_true", help="print the plan as JSON")

    def handle(self, *args, **options):
        people, size, rounds = options["people"], options["size"], options["rounds"]
        if people < 1:
            raise CommandError("--people must be at least 1")
        if size < 2:
            raise CommandError("--size must be at least 2: a circle is two or more people")
        if size > people:
            raise CommandError(f"--size {size} is larger than --people {people}")
        if rounds < 1:
            raise CommandError("--rounds must be at least 1")
        if options["seconds"] < 0:
            raise CommandError("--seconds cannot be negative")
        forbidden = read_forbidden_pairs(options["forbid_file"], people) if options["forbid_file"] else []
        try:
            plan = plan_mixing(
                people,
                size,
                rounds,
                forbidden=forbidden,
                seconds=options["seconds"],
                seed=options["seed"],
            )
        except (InfeasiblePlan, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps(plan.as_dict()))
            return
        for stats, round_ in zip(plan.stats, plan.rounds, strict=True):
            self.stdout.write(
                f"Round {stats.index + 1}: {stats.new_pair_share:.0%} new pairs, "
                f"{stats.repeats} repeats, {stats.violations} violations"
            )
            for circle in round_:
                self.stdout.write("  " + " ".join(str(p) for p in circle))
        self.stdout.write(f"Repeats: {plan.repeats}")
