"""`python -m faults.run [name ...] [--short] [--json FILE]`: inject faults, check nothing was lost.

Names: asgi_kill, redis_restart, postgres_restart, celery_kill (all of them when none is given;
a name may be shortened to any part of it, e.g. `redis`). `--short` is the CI subset: fewer
kills, fewer clients, fewer reminders. Prints every figure and check; exits 1 if a check failed.
Needs Postgres (DATABASE_URL; a throwaway database is made beside it and dropped), Redis
(REDIS_URL), and for the restart faults the redis-server and PostgreSQL server binaries: those
faults start their own servers on spare ports and never touch the shared ones.
"""

import argparse
import json
import sys
import time
from pathlib import Path

from faults import celery_kill, rig, scenarios

FAULTS = {
    "asgi_kill": scenarios.asgi_kill,
    "redis_restart": scenarios.redis_restart,
    "postgres_restart": scenarios.postgres_restart,
    "celery_kill": celery_kill.run,
}


def describe(outcome: dict) -> str:
    lines = [f"== {outcome['fault']} {json.dumps(outcome['params'])}"]
    figures = {k: v for k, v in outcome["figures"].items() if not k.startswith("_")}
    lines.append("   figures: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
    for item in outcome["checks"]:
        mark = "met" if item["met"] else "MISSED"
        lines.append(f"   {item['what']}: {item['value']} (target {item['target']}: {mark})")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m faults.run", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="faults to run (default: all)")
    parser.add_argument("--short", action="store_true", help="the CI subset: fewer kills and clients")
    parser.add_argument("--json", type=Path, help="also write the outcomes to this file")
    args = parser.parse_args(argv)
    chosen = [name for name in FAULTS if not args.names or any(part in name for part in args.names)]
    if not chosen:
        parser.error(f"no fault matches {args.names}; choose from {', '.join(FAULTS)}")
    outcomes = []
    with rig.prepared():
        for name in chosen:
            began = time.monotonic()
            outcome = FAULTS[name](short=args.short)
            outcome["seconds"] = round(time.monotonic() - began, 1)
            print(describe(outcome) + f"\n   took {outcome['seconds']} s", flush=True)
            outcomes.append(outcome)
    if args.json:
        args.json.write_text(json.dumps(outcomes, indent=2) + "\n")
    failed = [c["what"] for o in outcomes for c in o["checks"] if not c["met"]]
    print(
        f"{sum(len(o['checks']) for o in outcomes) - len(failed)} of "
        f"{sum(len(o['checks']) for o in outcomes)} checks met" + (f"; missed: {failed}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
