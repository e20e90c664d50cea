"""Forms check the shape of what was typed; the rules (capacity, cadence, clock changes) live in
circles.services, whose ValidationErrors the views hand back to these forms field by field."""

from django import forms

from accounts.models import User, validate_time_zone
from circles.models import DEFAULT_AGREEMENTS, MAX_CAPACITY, Circle, Membership, TemplateRound
from circles.services import RoundSpec

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
TIME = forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
WEEK_OF_MONTH_CHOICES = [
    ("", "Not monthly"),
    (1, "First"),
    (2, "Second"),
    (3, "Third"),
    (4, "Fourth"),
    (-1, "Last"),
]


class CircleForm(forms.Form):
    name = forms.CharField(max_length=120)
    purpose = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What this circle is for, in a sentence or two. Members see it on the circle page.",
    )
    agreements = forms.CharField(
        initial=DEFAULT_AGREEMENTS,
        widget=forms.Textarea(attrs={"rows": 6}),
        label="Group agreements",
        help_text="One per line. The circle can shape these together at its first session.",
    )
    capacity = forms.IntegerField(
        min_value=2,
        max_value=MAX_CAPACITY,
        initial=8,
        help_text=f"How many people, including you (at most {MAX_CAPACITY}).",
    )
    time_zone = forms.CharField(
        max_length=64,
        validators=[validate_time_zone],
        help_text="The circle meets at this zone's clock time, for example Europe/London.",
        widget=forms.TextInput(attrs={"list": "time-zones", "autocomplete": "off"}),
    )
    frequency = forms.ChoiceField(choices=Circle.Frequency.choices, label="How often")
    interval_weeks = forms.IntegerField(
        min_value=1,
        max_value=12,
        initial=2,
        label="Every how many weeks",
        help_text="Only for “every few weeks”.",
    )
    week_of_month = forms.TypedChoiceField(
        choices=WEEK_OF_MONTH_CHOICES,
        coerce=int,
        empty_value=None,
        required=False,
        label="Which week of the month",
        help_text="Only for monthly circles: on the first, second, … or last of the start date's weekday.",
    )
    start_date = forms.DateField(
        widget=DATE, help_text="The first session. Its weekday sets the meeting day."
    )
    end_date = forms.DateField(widget=DATE, required=False, help_text="Leave empty to keep going.")
    occurrence_count = forms.IntegerField(
        min_value=1,
        max_value=500,
        required=False,
        label="Or: number of sessions",
        help_text="Instead of an end date, stop after this many sessions.",
    )
    start_time = forms.TimeField(widget=TIME, help_text="In the circle's time zone.")
    duration_minutes = forms.IntegerField(min_value=15, max_value=240, initial=60, label="Length in minutes")
    template = forms.ModelChoiceField(queryset=None, label="Session template", empty_label=None)
    video_url = forms.URLField(
        required=False,
        assume_scheme="https",
        label="Video-call link",
        help_text="Your organisation's video-call room, if the circle meets online.",
    )

    def __init__(self, *args, templates, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = templates

    @classmethod
    def initial_from(cls, circle: Circle) -> dict:
        initial = {name: getattr(circle, name) for name in cls.base_fields if name != "template"}
        initial["template"] = circle.template_id
        return initial

    def details(self) -> dict:
        data = dict(self.cleaned_data)
        data.pop("template")
        if data["frequency"] != Circle.Frequency.EVERY_N_WEEKS:
            data["interval_weeks"] = 1
        if data["frequency"] != Circle.Frequency.MONTHLY_NTH_WEEKDAY:
            data["week_of_month"] = None
        return data


class MemberAddForm(forms.Form):
    person = forms.ModelChoiceField(
        queryset=None,
        error_messages={
            "invalid_choice": "That person is not in your organisation, so they can't join this circle."
        },
    )
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.MEMBER)

    def __init__(self, *args, organisation_id: int, candidates, **kwargs):
        super().__init__(*args, **kwargs)
        # Validation accepts anyone in the same organisation so the service can say exactly why
        # someone can't join; the menu only offers the people who can.
        self.fields["person"].queryset = User.objects.filter(organisation_id=organisation_id)
        self.fields["person"].widget.choices = [("", "Choose a person")] + [
            (p.pk, p.display_name) for p in candidates
        ]


class RotaForm(forms.Form):
    rota_opt_in = forms.BooleanField(required=False, label="I'm happy to take turns facilitating")


class AwayForm(forms.Form):
    starts_on = forms.DateField(widget=DATE, label="First day away")
    ends_on = forms.DateField(widget=DATE, label="Last day away")
    note = forms.CharField(max_length=120, required=False, label="Note (only you see this)")


class SessionChangeForm(forms.Form):
    action = forms.ChoiceField(
        choices=[
            ("skip", "Skip it: the circle doesn't meet this time"),
            ("cancel", "Cancel it"),
            ("move", "Move it to another date or time"),
        ],
        widget=forms.RadioSelect,
        label="What would you like to do?",
    )
    reason = forms.CharField(max_length=300, help_text="Members see this with the session.")
    new_date = forms.DateField(widget=DATE, required=False, label="New date", help_text="Only when moving.")
    new_time = forms.TimeField(
        widget=TIME, required=False, label="New start time", help_text="In the circle's zone."
    )


class CoverRequestForm(forms.Form):
    note = forms.CharField(max_length=200, required=False, label="A note for whoever covers (optional)")


class TemplateForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class RoundForm(forms.Form):
    # A blank first choice keeps an untouched extra row unchanged, so it is dropped, not refused.
    kind = forms.ChoiceField(choices=[("", "Choose a kind of round"), *TemplateRound.Kind.choices])
    title = forms.CharField(max_length=120)
    prompt = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    minutes_per_speaker = forms.IntegerField(
        min_value=1, max_value=30, initial=3, label="Minutes per speaker"
    )

    def spec(self) -> RoundSpec:
        return RoundSpec(**{name: self.cleaned_data[name] for name in self.base_fields})


class BaseRoundFormSet(forms.BaseFormSet):
    def specs(self) -> list[RoundSpec]:
        """Rounds in the order given (the ORDER field); Django leaves out deleted and blank extra rows."""
        return [f.spec() for f in self.ordered_forms]


RoundFormSet = forms.formset_factory(
    RoundForm,
    formset=BaseRoundFormSet,
    extra=2,
    can_order=True,
    can_delete=True,
    max_num=20,
    validate_max=True,
    # Django builds min(TOTAL_FORMS, absolute_max) forms from a POST; its default absolute_max
    # (max_num + 1,000) let one request ask for 1,020 forms, about half a second each to check
    # and render again. Nobody needs more forms than the 20 rounds allowed.
    absolute_max=20,
)
