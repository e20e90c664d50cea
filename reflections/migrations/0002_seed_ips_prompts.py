from django.db import migrations

# The prompts that ship with Alongside, grouped by the four IPS tasks and written in our own
# words. organisation=None marks them as shared by every organisation; organisations add their own.
PROMPTS = {
    "connection": [
        "When did you last feel really met by someone at work? What made the difference?",
        "What helps you stay present with someone when their story stirs something in you?",
        "Think of a moment this week when connection felt hard. What got in the way?",
        "What do you bring into a room before you say a word?",
    ],
    "worldview": [
        "What is a belief about your work that you have held for a long time? Where did it come from?",
        "When did someone's way of seeing things surprise you lately? What did it open up?",
        "What story do you tend to tell yourself when something goes wrong?",
        "Which words do you use about the people you work with, and what do they carry?",
    ],
    "mutuality": [
        "When did you last learn something from a person you were there to support?",
        "Where do you notice power in your working relationships, and how does it show up?",
        "What is it like for you to ask for help? What makes it easier?",
        "How do you share what you need while still making room for the other person?",
    ],
    "moving_towards": [
        "What would you like more of in your working life? What is one small step towards it?",
        "What are you moving towards, rather than away from, right now?",
        "Who or what helps you keep going when progress feels slow?",
        "Looking back over the last month, what growth can you notice in yourself?",
    ],
}


def seed_prompts(apps, schema_editor):
    Prompt = apps.get_model("reflections", "Prompt")
    for task, texts in PROMPTS.items():
        for text in texts:
            Prompt.objects.get_or_create(organisation=None, task=task, text=text)


def remove_prompts(apps, schema_editor):
    Prompt = apps.get_model("reflections", "Prompt")
    for task, texts in PROMPTS.items():
        Prompt.objects.filter(organisation=None, task=task, text__in=texts).delete()


class Migration(migrations.Migration):
    dependencies = [("reflections", "0001_initial")]

    operations = [migrations.RunPython(seed_prompts, remove_prompts)]
