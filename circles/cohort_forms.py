"""Cohort forms check the shape of what was typed; circles.cohorts holds the rules and hands its
ValidationErrors back to these forms field by field."""

from django import forms

from accounts.forms import RecordsChoiceField
from accounts.models import User, validate_time_zone
from circles.forms import DATE, TIME
from circles.models import MAX_CAPACITY, MAX_COHORT_CYCLES, MAX_CYCLE_WEEKS, Cohort

NOT_IN_ORGANISATION = "Someone you chose is not in your organisation, so they can't join this cohort."


class CohortForm(forms.Form):
    name = forms.CharField(
        max_length=80, help_text="Circles are named after it, with the cycle and a number."
    )
    members = RecordsChoiceField(
        queryset=None,
        widget=forms.CheckboxSelectMultiple,
        label="People in the cohort",
        error_messages={"invalid_choice": NOT_IN_ORGANISATION, "invalid_pk_value": NOT_IN_ORGANISATION},
    )
    circle_size = forms.IntegerField(
        min_value=2,
        max_value=MAX_CAPACITY,
        initial=6,
        help_text="When the cohort does not divide evenly, circles differ by one person at most.",
    )
    cycles = forms.IntegerField(
        min_value=1,
        max_value=MAX_COHORT_CYCLES,
        initial=4,
        label="Number of cycles",
        help_text="Each cycle the cohort is re-mixed into new circles.",
    )
    cycle_weeks = forms.IntegerField(
        min_value=1,
        max_value=MAX_CYCLE_WEEKS,
        initial=4,
        label="Weeks per cycle",
        help_text="Circles meet weekly for this many weeks, then the cohort re-mixes.",
    )
    start_date = forms.DateField(
        widget=DATE, help_text="The first cycle's first session. Its weekday sets the meeting day."
    )
    start_time = forms.TimeField(widget=TIME, help_text="In the cohort's time zone.")
    time_zone = forms.CharField(
        max_length=64,
        validators=[validate_time_zone],
        help_text="The circles meet at this zone's clock time, for example Europe/London.",
        widget=forms.TextInput(attrs={"list": "time-zones", "autocomplete": "off"}),
    )
    duration_minutes = forms.IntegerField(min_value=15, max_value=240, initial=60, label="Length in minutes")
    template = forms.ModelChoiceField(queryset=None, label="Session template", empty_label=None)

    def __init__(self, *args, organisation_id: int, candidates, templates, **kwargs):
        super().__init__(*args, **kwargs)
        # Validation accepts anyone in the organisation so the service can say why someone can't
        # take part; the boxes offer only the people who can.
        self.fields["members"].queryset = User.objects.filter(organisation_id=organisation_id)
        self.fields["members"].widget.choices = [(p.pk, p.display_name) for p in candidates]
        self.fields["template"].queryset = templates

    @classmethod
    def initial_from(cls, cohort: Cohort) -> dict:
        initial = {
            name: getattr(cohort, name) for name in cls.base_fields if name not in ("template", "members")
        }
        initial["template"] = cohort.template_id
        initial["members"] = list(cohort.memberships.values_list("user_id", flat=True))
        return initial

    def details(self) -> dict:
        data = dict(self.cleaned_data)
        data.pop("template")
        data.pop("members")
        return data


class _PeopleChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: User) -> str:
        return obj.display_name


class KeepApartForm(forms.Form):
    first = _PeopleChoiceField(queryset=None, label="Keep", empty_label="Choose a person")
    second = _PeopleChoiceField(queryset=None, label="apart from", empty_label="Choose a person")

    def __init__(self, *args, people, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("first", "second"):
            self.fields[name].queryset = people
            self.fields[name].error_messages["invalid_choice"] = "Choose someone in this cohort."

    def clean(self):
        data = super().clean()
        if data.get("first") and data.get("first") == data.get("second"):
            self.add_error("second", "Choose two different people.")
        return data


class UnavailableForm(forms.Form):
    person = _PeopleChoiceField(queryset=None, empty_label="Choose a person")
    cycle = forms.TypedChoiceField(coerce=int, choices=(), help_text="They sit this cycle out.")

    def __init__(self, *args, people, cycles: list[tuple[int, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["person"].queryset = people
        self.fields["person"].error_messages["invalid_choice"] = "Choose someone in this cohort."
        self.fields["cycle"].choices = cycles
