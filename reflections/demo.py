"""Seed step for demo reflections (see config/demo.py): a situation brought to the Tuesday
circle with perspectives, affirmations and a takeaway, a celebration, and Alex's own intentions.
Everything is looked up by title first, so running the seed again changes nothing."""

from circles.models import Circle
from config.demo import DemoData
from reflections import services
from reflections.models import Affirmation, Intention, Prompt, Thread

CIRCLE = "Tuesday reflection circle"
SITUATION = "Someone I support stopped coming, and I keep wondering what I missed"
PERSPECTIVES = [
    (
        "crisis_3",
        "I have sat with that wondering too. What helped me was asking what the silence might be "
        "protecting, rather than what I did wrong.",
    ),
    (
        "crisis_4",
        "When it happened to me I noticed I wanted to fix it straight away. Letting the door stay "
        "open, without chasing, felt more honest.",
    ),
    ("peer_2", "I notice how much you care in the way you wrote this. That came through."),
]
TAKEAWAY = "Leave the door open, send one warm note, and stop carrying it as my failure."
CELEBRATION = "Six months of taking a proper lunch break"


def seed_threads(demo: DemoData) -> None:
    circle = Circle.objects.filter(organisation=demo.organisation, name=CIRCLE).first()
    if circle is None or Thread.objects.filter(circle=circle, title=SITUATION).exists():
        return
    alex = demo.people["member"]
    prompt = Prompt.objects.filter(organisation=None, task="connection").order_by("pk").first()
    thread = services.thread_create(
        author=alex,
        circle=circle,
        kind=Thread.Kind.SITUATION,
        title=SITUATION,
        body="We had been meeting for a few months and it felt like things were opening up.\n\n"
        "Then nothing: no reply for three weeks. I would love to hear how others hold this.",
        prompt=prompt,
    )
    replies = [
        services.reply_create(author=demo.people[key], thread=thread, body=body) for key, body in PERSPECTIVES
    ]
    Affirmation.objects.bulk_create(
        [
            Affirmation(user=alex, reply=replies[0]),
            Affirmation(user=alex, reply=replies[1]),
            Affirmation(user=demo.people["crisis_5"], reply=replies[0]),
            Affirmation(user=demo.people["crisis_5"], thread=thread),
        ]
    )
    services.thread_set_takeaway(thread=thread, takeaway=TAKEAWAY)
    services.thread_create(
        author=demo.people["crisis_4"],
        circle=circle,
        kind=Thread.Kind.CELEBRATION,
        title=CELEBRATION,
        body="",
    )
    if not Intention.objects.filter(owner=alex).exists():
        shared = services.intention_add(
            owner=alex,
            text="Say no to extra shifts when I'm running on empty",
            circle=circle,
            nudge_after_days=14,
        )
        services.intention_step_add(intention=shared, text="Said no to a Sunday shift, kindly")
        services.intention_add(
            owner=alex, text="Write something for myself each week", circle=None, nudge_after_days=7
        )
