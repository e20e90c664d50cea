"""Rollups behind the manager insights pages: one row per team and calendar month.

The rows hold raw counts, some of them about very few people. They never reach a page or an
export directly: every read goes through `insights.privacy`, which turns them into figures that
rest on at least the organisation's threshold of people.
"""

from django.db import models
from django.utils import timezone

from accounts.models import Organisation, Team


class TeamMonthRollup(models.Model):
    """Participation of one team's current staff in one calendar month (the organisation's zone).

    People count by the team they are in when the rollup is refreshed, so a month's figures and
    the team's headcount always describe the same people.
    """

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    # The first day of the calendar month in the organisation's time zone.
    month = models.DateField()
    staff = models.PositiveIntegerField(default=0)
    # Distinct staff who were members of a circle when one of its sessions was scheduled / held.
    people_scheduled = models.PositiveIntegerField(default=0)
    people_held = models.PositiveIntegerField(default=0)
    sessions_scheduled = models.PositiveIntegerField(default=0)
    sessions_held = models.PositiveIntegerField(default=0)
    circles_active = models.PositiveIntegerField(default=0)
    # Member-sessions: one per (held session, staff member who belonged to its circle then).
    expected_member_sessions = models.PositiveIntegerField(default=0)
    attended_member_sessions = models.PositiveIntegerField(default=0)
    participants = models.PositiveIntegerField(default=0)
    refreshed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint("team", "month", name="insights_rollup_one_per_team_month")]
        indexes = [models.Index(fields=["organisation", "month"])]

    def __str__(self) -> str:
        return f"Team {self.team_id} in {self.month:%Y-%m}"


class RollupVersion(models.Model):
    """Changes whenever what the insights pages are built from changes: an organisation's rollups,
    or the names of its teams. A web process keeps what it computed from the rollups only for as
    long as the version it read them under stands, so every process sees a refresh at once.

    The token is random rather than counted, so that a rolled-back write or a reused organisation
    id can never bring back a token that once stood for other figures.
    """

    organisation = models.OneToOneField(
        Organisation, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    token = models.CharField(max_length=32)

    def __str__(self) -> str:
        return f"Rollups of organisation {self.organisation_id}: {self.token}"
