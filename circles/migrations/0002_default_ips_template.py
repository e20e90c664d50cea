from django.db import migrations

# The session shape that ships with Alongside, in our own words. Facilitators can copy it
# or make their own; organisation=None marks it as shared by every organisation.
DEFAULT_NAME = "Peer reflection circle (IPS)"
ROUNDS = [
    ("check_in", "Check-in", "How are you arriving today? A word, a sentence, or a pass.", 2),
    (
        "reflection",
        "Reflection round",
        "What has been sitting with you from your work lately? Share what feels right to share.",
        5,
    ),
    (
        "reflection",
        "Perspectives",
        "What did you notice in yourself while listening? Offer it as your own experience, not advice.",
        3,
    ),
    ("moving_towards", "Moving towards", "What would you like to move towards before we next meet?", 3),
    ("relational_check", "How are we doing together?", "How is this circle feeling for you today?", 2),
    ("check_out", "Check-out", "What are you taking with you?", 1),
]


def create_default_template(apps, schema_editor):
    SessionTemplate = apps.get_model("circles", "SessionTemplate")
    TemplateRound = apps.get_model("circles", "TemplateRound")
    template, created = SessionTemplate.objects.get_or_create(
        organisation=None,
        name=DEFAULT_NAME,
        defaults={"description": "Check in, reflect together, name what you are moving towards, check out."},
    )
    if created:
        TemplateRound.objects.bulk_create(
            TemplateRound(template=template, position=i, kind=kind, title=title, prompt=prompt, minutes_per_speaker=m)
            for i, (kind, title, prompt, m) in enumerate(ROUNDS, start=1)
        )


def remove_default_template(apps, schema_editor):
    apps.get_model("circles", "SessionTemplate").objects.filter(organisation=None, name=DEFAULT_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("circles", "0001_initial")]

    operations = [migrations.RunPython(create_default_template, remove_default_template)]
