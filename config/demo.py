"""Demo data for `make run`, the benchmarks and anyone trying Alongside on their own machine.

`seed_demo()` runs every step in SEED_STEPS, in order, in one transaction. A step is a
function `step(demo: DemoData) -> None` named by its dotted path; it creates what it needs
with get_or_create/update_or_create so running the seed again changes nothing, reads what
earlier steps made from `demo`, and adds a row to `demo.personas` for anyone worth signing
in as. To add demo circles, write `circles.demo.seed_circles(demo)` and append its path here.
"""

from dataclasses import dataclass, field

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils.module_loading import import_string

DEMO_PASSWORD = "alongside-demo"  # nosec B105  # published on purpose; seed_demo refuses production

SEED_STEPS = [
    "accounts.demo.seed_organisation",
    "accounts.demo.seed_people",
    "circles.demo.seed_circles",
    "circles.demo.seed_cohort",
    "reflections.demo.seed_threads",
]


@dataclass(frozen=True)
class Persona:
    role: str
    name: str
    email: str
    try_this: str


@dataclass
class DemoData:
    """What the steps have built so far, keyed by stable demo names (not database ids)."""

    password: str = DEMO_PASSWORD
    organisation: object = None
    teams: dict = field(default_factory=dict)
    people: dict = field(default_factory=dict)
    personas: list[Persona] = field(default_factory=list)
    _password_hash: str = ""

    def password_hash(self) -> str:
        """One hash for every new demo person: hashing twenty times would slow `make run` by seconds."""
        if not self._password_hash:
            self._password_hash = make_password(self.password)
        return self._password_hash


def seed_demo(*, steps: list[str] | None = None) -> DemoData:
    """Create or refresh the demo organisation and everything in it. Safe to run any number of times."""
    demo = DemoData()
    with transaction.atomic():
        for path in steps if steps is not None else SEED_STEPS:
            import_string(path)(demo)
    return demo
