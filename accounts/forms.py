from django import forms
from django.contrib.auth.forms import AuthenticationForm

from accounts.models import User


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
