from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from accounts.models import Organisation, validate_time_zone

MAX_CAPACITY = 12

DEFAULT_AGREEMENTS = """\
Nobody has to share. Passing is always welcome.
We speak from "I": our own experience, not advice about someone else's.
We listen to understand, not to fix.
What is said here stays here; what is learned here may leave.
We look after ourselves and each other: step out whenever you need to."""


class SessionTemplate(models.Model):
    """The shape of a session: ordered rounds. `organisation=None` marks the templates we ship."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, null=True, blank=True, related_name="session_templates"
    )
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["organisation_id", "name"]

    def __str__(self) -> str:
        return self.name


class TemplateRound(models.Model):
    class Kind(models.TextChoices):
        CHECK_IN = "check_in", "Check-in"
        REFLECTION = "reflection", "Reflection round"
        MOVING_TOWARDS = "moving_towards", "Moving towards"
        RELATIONAL_CHECK = "relational_check", "How are we doing together?"
        CHECK_OUT = "check_out", "Check-out"

    template = models.ForeignKey(SessionTemplate, on_delete=models.CASCADE, related_name="rounds")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=20, choices=Kind.choices)
    title = models.CharField(max_length=120)
    prompt = models.TextField(blank=True)
    minutes_per_speaker = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1), MaxValueValidator(30)]
    )

    class Meta:
        ordering = ["template_id", "position"]
        constraints = [models.UniqueConstraint("template", "position", name="round_position_unique")]

    def __str__(self) -> str:
        return f"{self.position}. {self.title}"


class Circle(models.Model):
    class Frequency(models.TextChoices):
        WEEKLY = "weekly", "Every week"
        EVERY_N_WEEKS = "every_n_weeks", "Every few weeks"
        MONTHLY_NTH_WEEKDAY = "monthly_nth_weekday", "Monthly, on the same weekday of the month"

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="circles")
    name = models.CharField(max_length=120)
    purpose = models.TextField(blank=True)
    agreements = models.TextField(default=DEFAULT_AGREEMENTS)
    capacity = models.PositiveSmallIntegerField(
        default=8, validators=[MinValueValidator(2), MaxValueValidator(MAX_CAPACITY)]
    )
    video_url = models.URLField(
        blank=True, help_text="Your organisation's video-call link, if the circle uses one."
    )

    # Cadence: a local wall-clock rule in `time_zone`, expanded into sessions by circles.scheduling.
    time_zone = models.CharField(max_length=64, validators=[validate_time_zone])
    frequency = models.CharField(max_length=24, choices=Frequency.choices, default=Frequency.WEEKLY)
    interval_weeks = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(12)], help_text="For every N weeks."
    )
    week_of_month = models.SmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(-1), MaxValueValidator(4)],
        help_text="For monthly: 1 to 4, or -1 for the last such weekday.",
    )
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True)
    occurrence_count = models.PositiveSmallIntegerField(null=True, blank=True)
    start_time = models.TimeField()
    duration_minutes = models.PositiveSmallIntegerField(
        default=60, validators=[MinValueValidator(15), MaxValueValidator(240)]
    )
    template = models.ForeignKey(SessionTemplate, on_delete=models.PROTECT, related_name="circles")

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(capacity__gte=2, capacity__lte=MAX_CAPACITY), name="circle_capacity_range"
            ),
            models.CheckConstraint(
                condition=models.Q(end_date__isnull=True) | models.Q(end_date__gte=models.F("start_date")),
                name="circle_end_after_start",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None


class Membership(models.Model):
    """A person in a circle. Rows are kept after leaving (left_at) so rota history stays fair."""

    class Role(models.TextChoices):
        MEMBER = "member", "Member"
        FACILITATOR = "facilitator", "Circle facilitator"

    circle = models.ForeignKey(Circle, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=12, choices=Role.choices, default=Role.MEMBER)
    rota_opt_in = models.BooleanField(default=False, help_text="Happy to take a turn facilitating.")
    joined_at = models.DateTimeField(default=timezone.now)
    left_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "circle", "user", condition=models.Q(left_at__isnull=True), name="membership_one_active"
            )
        ]
        indexes = [models.Index(fields=["user", "left_at"])]

    def __str__(self) -> str:
        return f"{self.user} in {self.circle}"

    @property
    def is_circle_facilitator(self) -> bool:
        return self.role == self.Role.FACILITATOR


class CircleSession(models.Model):
    """One meeting of a circle, materialised from the cadence (or added by hand)."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        LIVE = "live", "Live"
        ENDED = "ended", "Ended"
        SKIPPED = "skipped", "Skipped"
        CANCELLED = "cancelled", "Cancelled"

    circle = models.ForeignKey(Circle, on_delete=models.CASCADE, related_name="sessions")
    # The cadence occurrence this session came from: the key that keeps materialising idempotent.
    occurrence_date = models.DateField()
    starts_at = models.DateTimeField(db_index=True)
    ends_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SCHEDULED)
    moved = models.BooleanField(default=False, help_text="Moved by hand: re-planning leaves it where it is.")
    change_reason = models.CharField(max_length=300, blank=True)
    facilitator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Bumped on every change members should see in their calendars (RFC 5545 SEQUENCE).
    revision = models.PositiveIntegerField(default=0)
    # Cancelled or skipped by the planner, not by a person (a cadence edit dropped the date, or its
    # time fell into a clock change): a later edit that plans the date again reinstates it.
    unplanned = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["starts_at", "id"]
        constraints = [
            models.UniqueConstraint("circle", "occurrence_date", name="session_one_per_occurrence"),
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")), name="session_ends_after_start"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.circle} at {self.starts_at:%Y-%m-%d %H:%M} UTC"


class AwayPeriod(models.Model):
    """Dates a person is away: no facilitation turns and no reminders then."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="away_periods")
    starts_on = models.DateField()
    ends_on = models.DateField()
    note = models.CharField(max_length=120, blank=True)

    class Meta:
        ordering = ["starts_on"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_on__gte=models.F("starts_on")), name="away_ends_after_start"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} away {self.starts_on}–{self.ends_on}"


class CoverRequest(models.Model):
    """A session's facilitator asks another opted-in member to take their turn."""

    session = models.ForeignKey(CircleSession, on_delete=models.CASCADE, related_name="cover_requests")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    accepted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # One open request per session: two members accepting at once cannot both win.
            models.UniqueConstraint(
                "session", condition=models.Q(accepted_at__isnull=True), name="cover_one_open_per_session"
            )
        ]

    def __str__(self) -> str:
        return f"Cover for {self.session}"


class CalendarFeed(models.Model):
    """A person's secret calendar address. Deleting the row revokes it; a new token replaces it.

    The token is kept as is (not hashed) so the person can copy their address again later: it
    only opens session times and circle names, and it can be revoked at any moment.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feed"
    )
    token = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Calendar feed for {self.user}"


# --- Live rooms ---------------------------------------------------------------------------------
# The live state of a session room. Postgres is the truth: every accepted change is a SessionEvent
# written in the same transaction as the change, numbered from LiveRoom.last_seq under a row lock.


class LiveRoom(models.Model):
    """The mutable state of one session's room, and its event counter.

    Every live write locks this row (select_for_update) first: that serialises changes per session,
    which is what keeps `last_seq` gap-free and the state consistent with the events.
    """

    session = models.OneToOneField(
        CircleSession, on_delete=models.CASCADE, primary_key=True, related_name="room"
    )
    last_seq = models.PositiveBigIntegerField(default=0)
    # round, holder, order, spoken, hands, timer, away, moment: see circles.live.EMPTY_STATE.
    state = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"Room for {self.session_id} at seq {self.last_seq}"


class SessionEvent(models.Model):
    """One accepted change in a room. `patch` is what a client merges into its state.

    `text` holds message words only (kind "message.posted"); it is blanked when the chat retention
    ends, while the structural row stays for attendance and history.
    """

    session = models.ForeignKey(CircleSession, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveBigIntegerField()
    kind = models.CharField(max_length=40)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    patch = models.JSONField(default=dict)
    text = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["session_id", "seq"]
        constraints = [models.UniqueConstraint("session", "seq", name="session_event_seq_unique")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.seq} in session {self.session_id}"


class ClientCommand(models.Model):
    """A client message that was applied: its client-chosen id makes a resend a no-op."""

    session = models.ForeignKey(CircleSession, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    client_id = models.CharField(max_length=64)
    seq = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint("session", "user", "client_id", name="client_command_once")]

    def __str__(self) -> str:
        return f"{self.client_id} by {self.user_id}"


class RoomConnection(models.Model):
    """One open socket (one browser tab) in a room. Several tabs of one person count once.

    `seen_at` is refreshed by the client's heartbeat, so rows left behind by a server that died
    are swept once they go quiet.
    """

    session = models.ForeignKey(CircleSession, on_delete=models.CASCADE, related_name="connections")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    channel_name = models.CharField(max_length=200, unique=True)
    opened_at = models.DateTimeField(default=timezone.now)
    seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["session", "user"])]

    def __str__(self) -> str:
        return f"{self.user_id} in session {self.session_id}"


class Attendance(models.Model):
    """A stretch of time a person was in the room. Brief drops are merged into one stretch."""

    session = models.ForeignKey(CircleSession, on_delete=models.CASCADE, related_name="attendance")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attendance")
    joined_at = models.DateTimeField()
    left_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["session_id", "user_id", "joined_at"]
        indexes = [models.Index(fields=["session", "user", "joined_at"])]

    def __str__(self) -> str:
        return f"{self.user_id} in session {self.session_id} from {self.joined_at:%H:%M}"


# --- Reminders and notifications ----------------------------------------------------------------
# Reminder is an outbox: rows are written by circles.reminders in the same transaction as the change
# that calls for them (a session planned, moved or cancelled, a membership, a preference, an away
# date), and a periodic sweeper sends the ones that are due. A rolled-back change leaves no row.


class Reminder(models.Model):
    """One message to one person about one session, on one channel.

    The key is (user, session, kind, channel): at most one row per key, ever. A reminder that is
    no longer wanted is withdrawn rather than deleted, and a sent one whose session then moved is
    re-armed with its `generation` bumped, so each generation is delivered once.
    """

    class Kind(models.TextChoices):
        DAY_BEFORE = "24h", "A day before"
        HOUR_BEFORE = "1h", "An hour before"
        TURN_ASSIGNED = "turn_assigned", "You are facilitating"
        TURN_TOMORROW = "turn_tomorrow", "Your turn to facilitate is tomorrow"

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        IN_APP = "in_app", "In Alongside"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENT = "sent", "Sent"
        WITHDRAWN = "withdrawn", "No longer needed"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reminders")
    session = models.ForeignKey(CircleSession, on_delete=models.CASCADE, related_name="reminders")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    due_at = models.DateTimeField()
    generation = models.PositiveSmallIntegerField(default=0)
    # The session start this reminder speaks of: a move is detected by comparing it with the session.
    session_starts_at = models.DateTimeField()
    # A lease: a sweeper that dies mid-batch leaves claimed_at behind, and once it is older than
    # the lease another sweeper may take the row again.
    claimed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=120, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["due_at", "id"]
        constraints = [
            models.UniqueConstraint("user", "session", "kind", "channel", name="reminder_one_per_key"),
        ]
        indexes = [
            # The sweeper's only question: which pending rows are due? Sent rows stay out of the index.
            models.Index(
                fields=["due_at"], condition=models.Q(status="pending"), name="reminder_pending_due"
            ),
            models.Index(fields=["session", "status"]),
        ]

    def __str__(self) -> str:
        return f"{self.key} due {self.due_at:%Y-%m-%d %H:%M} UTC ({self.status})"

    @property
    def key(self) -> str:
        """The documented delivery key: session, person, kind, channel and generation."""
        return f"{self.session_id}.{self.user_id}.{self.kind}.{self.channel}.{self.generation}"


class Notification(models.Model):
    """An in-app notice for one person: a title and a link, never any reflection content."""

    class Kind(models.TextChoices):
        REMINDER = "reminder", "Session reminder"
        TURN = "turn", "Facilitation turn"
        MIXING = "mixing", "New circle"
        DIGEST = "digest", "Weekly digest"
        OTHER = "other", "Notice"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.OTHER)
    title = models.CharField(max_length=200)
    url = models.CharField(max_length=300, blank=True)
    # The outbox row that produced it, if any: unique, so a retried sweep cannot notify twice.
    reminder_key = models.CharField(max_length=120, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at"]), models.Index(fields=["user", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.title} for {self.user_id}"


class NotificationPreference(models.Model):
    """Notification choices that accounts.User does not hold: for now, the weekly digest."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    weekly_digest = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"Notification choices of {self.user_id}"


class DigestDelivery(models.Model):
    """One weekly digest for one person: the unique (user, week) row is the claim that sends it once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    week_starting = models.DateField()
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint("user", "week_starting", name="digest_one_per_week")]

    def __str__(self) -> str:
        return f"Digest for {self.user_id}, week of {self.week_starting}"


# --- Cohorts (mixing rotation) ------------------------------------------------------------------
# A cohort is re-mixed every cycle so its people meet as many new peers as possible. The plan lives
# in CohortPlacement rows (who sits in which group of which cycle); publishing turns each cycle's
# groups into ordinary Circles (CohortCircle links them) through circles.services. The rules are in
# circles.cohorts; circles.mixing does the planning without a database.

MAX_COHORT_CYCLES = 26
MAX_CYCLE_WEEKS = 12


class Cohort(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="cohorts")
    name = models.CharField(max_length=80)
    circle_size = models.PositiveSmallIntegerField(
        default=6, validators=[MinValueValidator(2), MaxValueValidator(MAX_CAPACITY)]
    )
    cycles = models.PositiveSmallIntegerField(
        default=4, validators=[MinValueValidator(1), MaxValueValidator(MAX_COHORT_CYCLES)]
    )
    cycle_weeks = models.PositiveSmallIntegerField(
        default=4, validators=[MinValueValidator(1), MaxValueValidator(MAX_CYCLE_WEEKS)]
    )
    # Each cycle's circles meet weekly from the cycle's first day (its weekday sets the meeting
    # day) at `start_time` in `time_zone`, until the day before the next cycle starts.
    start_date = models.DateField()
    time_zone = models.CharField(max_length=64, validators=[validate_time_zone])
    start_time = models.TimeField()
    duration_minutes = models.PositiveSmallIntegerField(
        default=60, validators=[MinValueValidator(15), MaxValueValidator(240)]
    )
    template = models.ForeignKey(SessionTemplate, on_delete=models.PROTECT, related_name="cohorts")
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="CohortMember", related_name="cohorts")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    planned_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-start_date", "name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(circle_size__gte=2, circle_size__lte=MAX_CAPACITY),
                name="cohort_circle_size_range",
            ),
            models.CheckConstraint(
                condition=models.Q(cycles__gte=1, cycles__lte=MAX_COHORT_CYCLES), name="cohort_cycles_range"
            ),
            models.CheckConstraint(
                condition=models.Q(cycle_weeks__gte=1, cycle_weeks__lte=MAX_CYCLE_WEEKS),
                name="cohort_cycle_weeks_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class CohortMember(models.Model):
    """A person in a cohort. Leaving deletes the row: past cycles keep them through their placements."""

    cohort = models.ForeignKey(Cohort, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint("cohort", "user", name="cohort_member_once")]

    def __str__(self) -> str:
        return f"{self.user_id} in cohort {self.cohort_id}"


class CohortKeepApart(models.Model):
    """Two people the facilitator was asked to keep apart: never in one circle. Stored with first < second."""

    cohort = models.ForeignKey(Cohort, on_delete=models.CASCADE, related_name="keep_apart")
    first = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    second = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint("cohort", "first", "second", name="cohort_keep_apart_once"),
            models.CheckConstraint(
                condition=models.Q(first__lt=models.F("second")), name="cohort_keep_apart_order"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.first_id} and {self.second_id} apart in cohort {self.cohort_id}"


class CohortUnavailability(models.Model):
    """Someone who cannot take part in one cycle (0-based): they sit that cycle out."""

    cohort = models.ForeignKey(Cohort, on_delete=models.CASCADE, related_name="unavailability")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    cycle = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["cycle", "id"]
        constraints = [models.UniqueConstraint("cohort", "user", "cycle", name="cohort_unavailable_once")]

    def __str__(self) -> str:
        return f"{self.user_id} away in cycle {self.cycle} of cohort {self.cohort_id}"


class CohortPlacement(models.Model):
    """The plan: `user` sits in group `group` of cycle `cycle` (both 0-based)."""

    cohort = models.ForeignKey(Cohort, on_delete=models.CASCADE, related_name="placements")
    cycle = models.PositiveSmallIntegerField()
    group = models.PositiveSmallIntegerField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")

    class Meta:
        ordering = ["cycle", "group", "id"]
        constraints = [
            models.UniqueConstraint("cohort", "cycle", "user", name="cohort_placement_once_per_cycle")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in group {self.group} of cycle {self.cycle}"


class CohortCircle(models.Model):
    """The published circle of one group of one cycle: the key that makes publishing again update, not add."""

    cohort = models.ForeignKey(Cohort, on_delete=models.CASCADE, related_name="published_circles")
    cycle = models.PositiveSmallIntegerField()
    group = models.PositiveSmallIntegerField()
    circle = models.OneToOneField(Circle, on_delete=models.CASCADE, related_name="cohort_link")

    class Meta:
        ordering = ["cycle", "group"]
        constraints = [models.UniqueConstraint("cohort", "cycle", "group", name="cohort_circle_once")]

    def __str__(self) -> str:
        return f"Cycle {self.cycle} group {self.group} of cohort {self.cohort_id}"
