"""`make bench`: run every bench/bench_*.py, print one line each, write bench/results.json.

A benchmark module exposes `run() -> list[dict]`, each dict a results.json row:
{name, unit, value, baseline_name, baseline_value, ratio, target}. `target` is text such as
"ratio >= 0.25" or "<= 5 repeats": with "ratio" it is checked against the ratio, otherwise
against the value; a bare number means "equal to". Extra keys (e.g. compare()'s "detail")
are printed but not written. `python -m bench.run home` runs only modules whose name has "home".
"""

import importlib
import json
import operator
import pkgutil
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"
KEYS = ["name", "unit", "value", "baseline_name", "baseline_value", "ratio", "target"]
TARGET = re.compile(r"^\s*(?P<ratio>ratio\s*)?(?P<op><=|>=|<|>|==)?\s*(?P<number>-?[\d.]+)\b")
OPERATORS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt, "==": operator.eq}


def target_met(row: dict) -> bool | None:
    """True/False when the target can be read, None when it is prose."""
    match = TARGET.match(str(row.get("target", "")))
    if not match:
        return None
    measured = row["ratio"] if match["ratio"] else row["value"]
    return OPERATORS[match["op"] or "=="](measured, float(match["number"]))


def describe(row: dict) -> str:
    met = {True: "met", False: "MISSED", None: "not checked"}[target_met(row)]
    line = (
        f"{row['name']}: {row['value']} {row['unit']} vs {row['baseline_name']} {row['baseline_value']}"
        f" -> ratio {row['ratio']} (target {row['target']}: {met})"
    )
    detail = row.get("detail")
    if detail:
        line += "  [" + ", ".join(f"{key} {value:g}" for key, value in detail.items()) + "]"
    return line


def modules(filters: list[str]) -> list[str]:
    names = sorted(info.name for info in pkgutil.iter_modules([str(HERE)]) if info.name.startswith("bench_"))
    return [name for name in names if not filters or any(part in name for part in filters)]


def main(argv: list[str]) -> int:
    rows = []
    for name in modules(argv):
        print(f"== bench.{name}", flush=True)
        for row in importlib.import_module(f"bench.{name}").run():
            print(describe(row), flush=True)
            rows.append(row)
    RESULTS.write_text(json.dumps([{key: row[key] for key in KEYS} for row in rows], indent=2) + "\n")
    checked = [met for met in map(target_met, rows) if met is not None]
    print(
        f"{sum(checked)} of {len(checked)} checked targets met; results in {RESULTS.relative_to(HERE.parent)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
