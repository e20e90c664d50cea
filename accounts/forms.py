from django import forms
from django.contrib.auth.forms import AuthenticationForm

from accounts.models import Team, User


class EmailAuthenticationForm(AuthenticationForm):
    """Sign in by email. Every failure, locked out or not, gets the same generic message."""

    username = forms.EmailField(
        label="Email", widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True})
    )

    error_messages = {
        "invalid_login": "That email and password did not match an active account, or sign-in is paused "
        "after several attempts. Check them and try again in a few minutes.",
        "inactive": "That email and password did not match an active account, or sign-in is paused "
        "after several attempts. Check them and try again in a few minutes.",
    }

    def clean_username(self):
        return self.cleaned_data["username"].lower()


class ProfileForm(forms.ModelForm):
    class Meta:
        model = User
        fields = [
            "display_name",
            "pronouns",
            "time_zone",
            "notify_by_email",
            "notify_in_app",
            "remind_day_before",
            "remind_hour_before",
            "quiet_hours_start",
            "quiet_hours_end",
        ]
        labels = {
            "display_name": "Name shown to others",
            "time_zone": "Your time zone",
            "notify_by_email": "Send me reminders by email",
            "notify_in_app": "Show me reminders in Alongside",
            "remind_day_before": "Remind me a day before a session",
            "remind_hour_before": "Remind me an hour before a session",
            "quiet_hours_start": "Quiet hours start",
            "quiet_hours_end": "Quiet hours end",
        }
        help_texts = {
            "time_zone": "Times are shown in this zone. Leave empty to use your organisation's.",
            "quiet_hours_start": "No reminders between these times (24-hour clock, e.g. 21:00).",
        }
        widgets = {
            "time_zone": forms.TextInput(attrs={"list": "time-zones", "autocomplete": "off"}),
            "quiet_hours_start": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "quiet_hours_end": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        }


class InvitationForm(forms.Form):
    email = forms.EmailField(label="Email", widget=forms.EmailInput(attrs={"autocomplete": "off"}))
    display_name = forms.CharField(
        label="Name (optional)",
        max_length=80,
        required=False,
        help_text="They can change it when they accept.",
    )
    team = forms.ModelChoiceField(queryset=Team.objects.none(), required=False, empty_label="No team yet")
    is_facilitator = forms.BooleanField(label="Facilitator: can set up circles and rotations", required=False)
    is_org_admin = forms.BooleanField(label="Admin: can manage people, teams and policies", required=False)

    def __init__(self, *args, organisation_id: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = Team.objects.filter(organisation_id=organisation_id)


class InvitationCsvForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="One person per row, with the columns email,display_name,team,facilitator,admin. "
        "Only email is required; write yes in facilitator or admin to give that capability.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )


class InvitationAcceptForm(forms.Form):
    display_name = forms.CharField(label="Name shown to others", max_length=80)
    pronouns = forms.CharField(label="Pronouns (optional)", max_length=40, required=False)
    time_zone = forms.CharField(
        label="Your time zone",
        max_length=64,
        required=False,
        help_text="Times are shown in this zone. Leave empty to use your organisation's.",
        widget=forms.TextInput(attrs={"list": "time-zones", "autocomplete": "off"}),
    )
    password = forms.CharField(
        label="Choose a password",
        strip=False,
        help_text="At least 10 characters, not too common, and not like your name or email.",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password_again = forms.CharField(
        label="Type the password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self):
        data = super().clean()
        if data.get("password") and data.get("password_again") and data["password"] != data["password_again"]:
            self.add_error("password_again", "The two passwords are different. Type them again.")
        return data


class RecordsChoiceField(forms.ModelMultipleChoiceField):
    """Django's multiple choice of records, refusing an id no integer column can hold as an invalid
    choice. Django guards single-value look-ups against that, not `id IN (...)`, where SQLite
    raises OverflowError: a server error for a mistyped or tampered form."""

    def _check_values(self, value):
        for pk in value:
            try:
                number = int(str(pk))
            except ValueError:
                continue  # not a number at all: Django's own check refuses it
            if not -(2**63) <= number < 2**63:
                raise forms.ValidationError(
                    self.error_messages["invalid_pk_value"], code="invalid_pk_value", params={"pk": pk}
                )
        return super()._check_values(value)


class PersonForm(forms.Form):
    is_member = forms.BooleanField(label="Member: can join circles", required=False)
    is_facilitator = forms.BooleanField(label="Facilitator: can set up circles and rotations", required=False)
    is_org_admin = forms.BooleanField(label="Admin: can manage people, teams and policies", required=False)
    team = forms.ModelChoiceField(queryset=Team.objects.none(), required=False, empty_label="No team")
    managed_teams = RecordsChoiceField(
        queryset=Team.objects.none(),
        required=False,
        label="Manages these teams",
        help_text="Managers see only anonymous participation figures for these teams, "
        "never names or content.",
        widget=forms.CheckboxSelectMultiple,
    )
    line_managers = RecordsChoiceField(
        queryset=User.objects.none(),
        required=False,
        label="Line managed by",
        help_text="A person and their line manager are never placed in the same circle. "
        "Hold Ctrl (or Cmd on a Mac) to choose more than one.",
        widget=forms.SelectMultiple(attrs={"size": 8}),
    )

    def __init__(self, *args, person: User, teams, colleagues, **kwargs):
        kwargs.setdefault(
            "initial",
            {
                "is_member": person.is_member,
                "is_facilitator": person.is_facilitator,
                "is_org_admin": person.is_org_admin,
                "team": person.team_id,
                "managed_teams": [team.pk for team in person.managed_teams.all()],
                "line_managers": [link.manager_id for link in person.manager_links.all()],
            },
        )
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams
        self.fields["managed_teams"].queryset = teams
        self.fields["line_managers"].queryset = colleagues


# The largest values the organisation's columns hold (PositiveSmallIntegerField, PositiveIntegerField):
# a bigger number is a form error, not a database error.
SMALL_COLUMN_MAX = 32_767
COLUMN_MAX = 2_147_483_647


class OrganisationForm(forms.Form):
    name = forms.CharField(label="Organisation name", max_length=120)
    time_zone = forms.CharField(
        label="Default time zone",
        max_length=64,
        help_text="Used for anyone who has not chosen their own.",
        widget=forms.TextInput(attrs={"list": "time-zones", "autocomplete": "off"}),
    )
    anonymity_threshold = forms.IntegerField(
        label="Anonymity threshold",
        help_text="Managers never see a figure about fewer people than this. "
        "3 is the lowest allowed; 5 is usual.",
        widget=forms.NumberInput(attrs={"min": 3}),
        max_value=SMALL_COLUMN_MAX,
    )
    chat_retention_days = forms.IntegerField(
        label="Keep live-session chat for (days)",
        help_text="0 deletes the chat when the session ends.",
        widget=forms.NumberInput(attrs={"min": 0}),
        max_value=SMALL_COLUMN_MAX,
    )
    reflection_retention_days = forms.IntegerField(
        label="Keep reflections for (days)",
        required=False,
        help_text="Leave empty to keep reflections until their authors delete them.",
        widget=forms.NumberInput(attrs={"min": 1}),
        max_value=COLUMN_MAX,
    )
    crisis_text = forms.CharField(
        label="What to say to someone in crisis",
        required=False,
        help_text="Shown with the crisis links on every circle page and live session.",
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class TeamForm(forms.Form):
    name = forms.CharField(label="Name of the new team", max_length=120)

    def __init__(self, *args, renaming: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        if renaming:
            # Each team's rename box needs its own label, or a screen reader hears "name" many times over.
            self.fields["name"].label = f"New name for {renaming}"


class CrisisLinkForm(forms.Form):
    label = forms.CharField(label="Who to contact", max_length=120)
    url = forms.URLField(label="Web address", required=False, assume_scheme="https")
    phone = forms.CharField(label="Phone number", max_length=40, required=False)
