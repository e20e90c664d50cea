from django import forms

from circles.models import Circle
from reflections.models import BODY_MAX, REPLY_MAX, TITLE_MAX, Intention, Prompt, Task, Thread


class ThreadForm(forms.Form):
    kind = forms.ChoiceField(
        label="What are you bringing?",
        choices=Thread.Kind.choices,
        widget=forms.RadioSelect,
        initial="reflection",
    )
    title = forms.CharField(label="Title", max_length=TITLE_MAX)
    body = forms.CharField(
        label="Say more",
        required=False,
        max_length=BODY_MAX,
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text="Plain text. Leave a blank line between paragraphs; web links become clickable.",
    )
    prompt = forms.ModelChoiceField(
        label="Starting from a prompt",
        queryset=Prompt.objects.none(),
        required=False,
        widget=forms.HiddenInput,
    )

    def __init__(self, *args, organisation_id: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["prompt"].queryset = Prompt.objects.filter(
            organisation__isnull=True
        ) | Prompt.objects.filter(organisation_id=organisation_id)


class ThreadEditForm(forms.Form):
    title = forms.CharField(label="Title", max_length=TITLE_MAX)
    body = forms.CharField(label="Say more", required=False, max_length=BODY_MAX, widget=forms.Textarea)


class ReplyForm(forms.Form):
    static_markup = True  # see circles/templatetags/form_fields.py

    body = forms.CharField(
        label="Your perspective",
        max_length=REPLY_MAX,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Share what you notice from your own experience, rather than advice.",
    )


class TakeawayForm(forms.Form):
    static_markup = True

    takeaway = forms.CharField(
        label="What I'm taking with me", max_length=REPLY_MAX, widget=forms.Textarea(attrs={"rows": 3})
    )


class SearchForm(forms.Form):
    q = forms.CharField(label="Search this circle's threads", required=False, max_length=200)


class PromptForm(forms.Form):
    task = forms.ChoiceField(label="Which task does it belong to?", choices=Task.choices)
    text = forms.CharField(label="Prompt", max_length=300, widget=forms.Textarea(attrs={"rows": 2}))


class JournalEntryForm(forms.Form):
    body = forms.CharField(
        label="Write for yourself", max_length=BODY_MAX, widget=forms.Textarea(attrs={"rows": 6})
    )


class IntentionForm(forms.Form):
    text = forms.CharField(label="What would you like to move towards?", max_length=300)
    circle = forms.ModelChoiceField(
        label="Share with a circle",
        queryset=Circle.objects.none(),
        required=False,
        empty_label="Keep it private",
        help_text="Members of that circle can see it, and it is celebrated there when you reach it.",
    )
    nudge_after_days = forms.TypedChoiceField(
        label="A gentle nudge", choices=Intention.Nudge.choices, coerce=int, initial=Intention.Nudge.FORTNIGHT
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["circle"].queryset = Circle.objects.filter(
            memberships__user=user, memberships__left_at__isnull=True
        ).order_by("name")


class StepForm(forms.Form):
    text = forms.CharField(label="A small step you took", max_length=300)


class ReachedForm(forms.Form):
    note = forms.CharField(
        label="Anything you'd like to say about it? (optional)",
        required=False,
        max_length=BODY_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class ConcernForm(forms.Form):
    moment = forms.CharField(
        label="Which moment? (if it isn't about a post)",
        required=False,
        max_length=200,
        help_text="For example: “Tuesday's session, during check-in”.",
    )
    reason = forms.CharField(
        label="What worries you?", max_length=REPLY_MAX, widget=forms.Textarea(attrs={"rows": 5})
    )


class ResolveForm(forms.Form):
    note = forms.CharField(
        label="What was done (only facilitators see this)",
        required=False,
        max_length=REPLY_MAX,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class EraseForm(forms.Form):
    KEEP = "keep"
    DELETE = "delete"
    posts = forms.ChoiceField(
        label="What should happen to your threads and perspectives?",
        choices=[
            (DELETE, "Delete them (others' perspectives stay, under a “deleted” note)"),
            (KEEP, "Keep them, shown as written by “a former member”"),
        ],
        widget=forms.RadioSelect,
    )
    confirm = forms.CharField(
        label="Type ERASE to confirm",
        help_text="This can't be undone. Your journal and intentions are removed.",
    )

    def clean_confirm(self):
        if self.cleaned_data["confirm"].strip().upper() != "ERASE":
            raise forms.ValidationError("Type ERASE to confirm.")
        return "ERASE"
