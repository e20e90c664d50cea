import zoneinfo
from functools import cache

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

MIN_ANONYMITY_THRESHOLD = 3


@cache
def time_zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(value: str) -> None:
    if value not in time_zone_names():
        raise ValidationError(f"“{value}” is not a time zone we know. Try a name like Europe/London.")


class Organisation(models.Model):
    name = models.CharField(max_length=120)
    time_zone = models.CharField(max_length=64, default="Europe/London", validators=[validate_time_zone])
    anonymity_threshold = models.PositiveSmallIntegerField(
        default=5,
        validators=[MinValueValidator(MIN_ANONYMITY_THRESHOLD)],
        help_text="Figures about fewer people than this are never shown to managers.",
    )
    chat_retention_days = models.PositiveSmallIntegerField(
        default=0, help_text="Days to keep live-session chat after the session ends. 0 deletes it at the end."
    )
    reflection_retention_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Days to keep reflection threads. Empty keeps them until deleted."
    )
    crisis_text = models.TextField(
        blank=True,
        default=(
            "If you or someone you are with is in danger right now, call your local emergency number. "
            "You do not have to carry this alone: the people below are there to talk, any time."
        ),
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(anonymity_threshold__gte=MIN_ANONYMITY_THRESHOLD),
                name="organisation_threshold_at_least_3",
            )
        ]

    def __str__(self) -> str:
        return self.name


class CrisisLink(models.Model):
    """One place to turn in a crisis, shown on every circle page and live room."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="crisis_links")
    label = models.CharField(max_length=120)
    url = models.URLField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.label


class Team(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=120)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint("organisation", Lower("name"), name="team_name_unique_in_org")]

    def __str__(self) -> str:
        return self.name


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **fields):
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields):
        fields.setdefault("is_staff", True)
        fields.setdefault("is_superuser", True)
        return self.create_user(email, password, **fields)

    def get_by_natural_key(self, username):
        return self.get(email__iexact=username)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. Capabilities are held together: member, facilitator, manager of teams, admin."""

    # Always stored lower-case (the manager and forms fold it), so plain uniqueness is enough.
    email = models.EmailField(max_length=254, unique=True)
    display_name = models.CharField(max_length=80)
    pronouns = models.CharField(max_length=40, blank=True)
    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="people", null=True, blank=True
    )
    team = models.ForeignKey(Team, on_delete=models.SET_NULL, related_name="members", null=True, blank=True)
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        validators=[validate_time_zone],
        help_text="Empty: the organisation's zone.",
    )

    is_member = models.BooleanField(default=True, help_text="Can join circles.")
    is_facilitator = models.BooleanField(default=False, help_text="Can set up circles and rotations.")
    is_org_admin = models.BooleanField(default=False, help_text="Can manage people, teams and policies.")
    managed_teams = models.ManyToManyField(Team, related_name="managers", blank=True)

    notify_by_email = models.BooleanField(default=True)
    notify_in_app = models.BooleanField(default=True)
    remind_day_before = models.BooleanField(default=True)
    remind_hour_before = models.BooleanField(default=True)
    quiet_hours_start = models.TimeField(null=True, blank=True)
    quiet_hours_end = models.TimeField(null=True, blank=True)

    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="Can use the Django admin (operators only).")
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["display_name"]

    class Meta:
        ordering = ["display_name", "id"]

    def __str__(self) -> str:
        return self.display_name or self.email

    def clean(self) -> None:
        super().clean()
        self.email = self.email.lower()
        if self.quiet_hours_start is None and self.quiet_hours_end is not None:
            raise ValidationError({"quiet_hours_start": "Give a start time as well as an end time."})
        if self.quiet_hours_end is None and self.quiet_hours_start is not None:
            raise ValidationError({"quiet_hours_end": "Give an end time as well as a start time."})

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        name = self.time_zone or (self.organisation.time_zone if self.organisation_id else "UTC")
        return zoneinfo.ZoneInfo(name)


class LineManagementLink(models.Model):
    """`manager` line-manages `report`: they are never placed in the same circle."""

    manager = models.ForeignKey(User, on_delete=models.CASCADE, related_name="report_links")
    report = models.ForeignKey(User, on_delete=models.CASCADE, related_name="manager_links")

    class Meta:
        constraints = [
            models.UniqueConstraint("manager", "report", name="line_management_unique"),
            models.CheckConstraint(
                condition=~models.Q(manager=models.F("report")), name="line_manager_not_self"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.manager} manages {self.report}"


class Invitation(models.Model):
    """A single-use, expiring invitation. Only a hash of the secret token is stored."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(max_length=254)
    display_name = models.CharField(max_length=80, blank=True)
    team = models.ForeignKey(Team, on_delete=models.SET_NULL, null=True, blank=True)
    is_facilitator = models.BooleanField(default=False)
    is_org_admin = models.BooleanField(default=False)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Re-inviting revokes the open invitation first, so a person never holds two live links
            # from one organisation; this also stops two admins racing to invite the same email.
            models.UniqueConstraint(
                fields=["organisation", "email"],
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_one_open_per_email",
            )
        ]

    def __str__(self) -> str:
        return f"Invitation for {self.email}"

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > timezone.now()


class AuditEntry(models.Model):
    """Who did what, when: one row per audited action, written by `accounts.services.audit`."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="audit_entries")
    actor = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    action = models.CharField(max_length=80)
    subject = models.CharField(max_length=200, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_id} at {self.created_at:%Y-%m-%d %H:%M}"
