"""Every write in accounts: keyword-only arguments, one transaction, audited through `audit`.

Rules that a form might also check are enforced here, because views, tasks and the shell all come
through these functions. Errors are `ValidationError`s keyed by the form field they belong to, so a
view can hand them straight back to its form.
"""

import csv
import io
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import (
    MIN_ANONYMITY_THRESHOLD,
    AuditEntry,
    CrisisLink,
    Invitation,
    LineManagementLink,
    Organisation,
    Team,
    User,
    validate_time_zone,
)
from accounts.selectors import InvitationUnavailable, invitation_for_token, token_hash

# --- Audit -----------------------------------------------------------------------------------


def audit(
    *,
    actor: User | None,
    action: str,
    subject: str = "",
    data: dict | None = None,
    organisation: Organisation | None = None,
) -> AuditEntry:
    """Record who did what. `action` is dotted and past tense ("invitation.sent").

    The organisation defaults to the actor's; one of the two must be given. Call it inside the
    service's transaction so the record and the change stand or fall together.
    """
    organisation_id = organisation.pk if organisation is not None else getattr(actor, "organisation_id", None)
    if organisation_id is None:
        raise ValueError("An audit entry needs an organisation: pass one, or an actor who belongs to one.")
    return AuditEntry.objects.create(
        organisation_id=organisation_id,
        actor=actor,
        action=action,
        subject=str(subject)[:200],
        data=data or {},
    )


# --- Invitations -----------------------------------------------------------------------------

CSV_MAX_ROWS = 1000
CSV_MAX_BYTES = 1024 * 1024
CSV_COLUMNS = ("email", "display_name", "team", "facilitator", "admin")
_YES = {"yes", "y", "true", "1", "x"}
_NO = {"no", "n", "false", "0", ""}


@dataclass(frozen=True)
class CsvRowError:
    row: int
    message: str


class CsvImportError(Exception):
    """Nothing was imported. `errors` lists every problem, each with its spreadsheet row number."""

    def __init__(self, errors: list[CsvRowError]):
        super().__init__(f"{len(errors)} problem(s) in the file")
        self.errors = errors


def _send_invitation_email(invitation: Invitation, token: str) -> None:
    context = {
        "invitation": invitation,
        "organisation": invitation.organisation,
        "invited_by": invitation.invited_by,
        "link": settings.SITE_URL + reverse("accounts:invitation-accept", args=[token]),
        "valid_days": settings.INVITATION_VALID_DAYS,
    }
    subject = " ".join(render_to_string("emails/invitation.subject.txt", context).split())
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("emails/invitation.txt", context),
        to=[invitation.email],
    )
    message.attach_alternative(render_to_string("emails/invitation.html", context), "text/html")
    message.send()


def _check_invitable(organisation: Organisation, email: str) -> str:
    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({"email": f"“{email}” does not look like an email address."}) from None
    if User.objects.filter(email=email).exists():
        raise ValidationError(
            {
                "email": f"{email} already has an Alongside account. They can sign in, or use "
                "“Forgotten your password?” if they have lost it."
            }
        )
    return email


def _invitation_create(
    *,
    organisation: Organisation,
    invited_by: User,
    email: str,
    display_name: str,
    team: Team | None,
    is_facilitator: bool,
    is_org_admin: bool,
    action: str,
) -> Invitation:
    """Caller holds a transaction and has checked the email. Revokes any open invitation for it."""
    if team is not None and team.organisation_id != organisation.pk:
        raise ValidationError({"team": "That team belongs to another organisation."})
    now = timezone.now()
    Invitation.objects.filter(
        organisation=organisation, email=email, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=now)
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        organisation=organisation,
        email=email,
        display_name=display_name.strip(),
        team=team,
        is_facilitator=is_facilitator,
        is_org_admin=is_org_admin,
        token_hash=token_hash(token),
        invited_by=invited_by,
        created_at=now,
        expires_at=now + timedelta(days=settings.INVITATION_VALID_DAYS),
    )
    audit(actor=invited_by, action=action, subject=email, organisation=organisation)
    # The raw token lives only in this closure and the email: the database keeps its hash.
    transaction.on_commit(lambda: _send_invitation_email(invitation, token))
    return invitation


def invitation_send(
    *,
    organisation: Organisation,
    invited_by: User,
    email: str,
    display_name: str = "",
    team: Team | None = None,
    is_facilitator: bool = False,
    is_org_admin: bool = False,
) -> Invitation:
    """Invite one person. Re-inviting someone with an open invitation replaces it (the old link stops)."""
    email = _check_invitable(organisation, email)
    try:
        with transaction.atomic():
            return _invitation_create(
                organisation=organisation,
                invited_by=invited_by,
                email=email,
                display_name=display_name,
                team=team,
                is_facilitator=is_facilitator,
                is_org_admin=is_org_admin,
                action="invitation.sent",
            )
    except IntegrityError:
        # Another admin invited the same email at the same moment; theirs stands.
        raise ValidationError({"email": f"{email} was invited a moment ago by someone else."}) from None


def invitation_resend(*, actor: User, invitation: Invitation) -> Invitation:
    """Send a fresh link (the old one stops working) with a new expiry."""
    if invitation.accepted_at is not None:
        raise ValidationError(f"{invitation.email} has already accepted, so there is nothing to resend.")
    email = _check_invitable(invitation.organisation, invitation.email)
    with transaction.atomic():
        return _invitation_create(
            organisation=invitation.organisation,
            invited_by=actor,
            email=email,
            display_name=invitation.display_name,
            team=invitation.team,
            is_facilitator=invitation.is_facilitator,
            is_org_admin=invitation.is_org_admin,
            action="invitation.resent",
        )


def invitation_revoke(*, actor: User, invitation: Invitation) -> None:
    """Stop an invitation's link from working. Safe to call twice."""
    with transaction.atomic():
        revoked = Invitation.objects.filter(
            pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True
        ).update(revoked_at=timezone.now())
        if revoked:
            audit(
                actor=actor,
                action="invitation.revoked",
                subject=invitation.email,
                organisation=invitation.organisation,
            )
        elif Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=False).exists():
            raise ValidationError(
                f"{invitation.email} has already accepted; you can deactivate them instead."
            )


def invitation_accept(*, token: str, password: str, display_name: str, pronouns: str, time_zone: str) -> User:
    """Claim the invitation and create the person's account; the caller signs them in.

    The claim is a conditional UPDATE on the invitation row, so two submits of the same link (a
    double click, two tabs) create one account: the second finds `accepted_at` already set.
    """
    invitation = invitation_for_token(token)
    display_name = display_name.strip()
    errors = {}
    if not display_name:
        errors["display_name"] = "Tell us the name you would like others to see."
    if time_zone:
        try:
            validate_time_zone(time_zone)
        except ValidationError as error:
            errors["time_zone"] = error.messages
    try:
        password_validation.validate_password(
            password, User(email=invitation.email, display_name=display_name)
        )
    except ValidationError as error:
        errors["password"] = error.messages
    if errors:
        raise ValidationError(errors)

    now = timezone.now()
    try:
        with transaction.atomic():
            claimed = Invitation.objects.filter(
                pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now
            ).update(accepted_at=now)
            if not claimed:
                # Lost the race (or it expired or was revoked meanwhile): say which.
                invitation_for_token(token)
                raise InvitationUnavailable("used", invitation)
            user = User.objects.create_user(
                invitation.email,
                password,
                display_name=display_name,
                pronouns=pronouns.strip(),
                time_zone=time_zone,
                organisation=invitation.organisation,
                team=invitation.team,
                is_facilitator=invitation.is_facilitator,
                is_org_admin=invitation.is_org_admin,
            )
            Invitation.objects.filter(pk=invitation.pk).update(accepted_by=user)
            audit(actor=user, action="invitation.accepted", subject=user.email)
    except IntegrityError:
        # The email got an account through another organisation's invitation at the same moment.
        raise InvitationUnavailable("account-exists", invitation) from None
    return user


def _parse_flag(value: str, column: str) -> bool:
    value = value.strip().lower()
    if value in _YES:
        return True
    if value in _NO:
        return False
    raise ValueError(f"“{value}” in the {column} column should be yes or no (or left empty for no).")


def _read_csv_rows(file) -> list[tuple[int, dict[str, str], bool]]:
    """Decode and split the upload into (spreadsheet row number, cells by column, has extra cells).

    Raises CsvImportError for problems with the file as a whole.
    """
    size = getattr(file, "size", None)
    if size is not None and size > CSV_MAX_BYTES:
        raise CsvImportError([CsvRowError(0, "The file is larger than 1 MB. Split it into smaller files.")])
    raw = file.read(CSV_MAX_BYTES + 1)
    if len(raw) > CSV_MAX_BYTES:
        raise CsvImportError([CsvRowError(0, "The file is larger than 1 MB. Split it into smaller files.")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CsvImportError(
            [
                CsvRowError(
                    0,
                    "We could not read this file as text. Save it from your spreadsheet as "
                    "“CSV UTF-8 (comma delimited)” and upload it again.",
                )
            ]
        ) from None
    if not text.strip():
        raise CsvImportError([CsvRowError(0, "The file is empty. Add a header row and one row per person.")])

    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [cell.strip().lower() for cell in next(reader)]
        problems = []
        if "email" not in header:
            problems.append(
                "The first row must name the columns, including “email”. Expected: "
                + ",".join(CSV_COLUMNS)
                + "."
            )
        unknown = [name for name in header if name and name not in CSV_COLUMNS]
        if unknown:
            problems.append(
                "We don't recognise the column(s) "
                + ", ".join(f"“{name}”" for name in unknown)
                + ". Use only: "
                + ",".join(CSV_COLUMNS)
                + "."
            )
        repeated = sorted({name for name in header if name and header.count(name) > 1})
        if repeated:
            problems.append("These columns appear twice: " + ", ".join(repeated) + ".")
        if problems:
            raise CsvImportError([CsvRowError(1, message) for message in problems])

        rows = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if len(rows) == CSV_MAX_ROWS:
                raise CsvImportError(
                    [
                        CsvRowError(
                            reader.line_num,
                            f"The file has more than {CSV_MAX_ROWS} people. Split it into smaller files.",
                        )
                    ]
                )
            padded = cells + [""] * (len(header) - len(cells))
            by_column = {name: cell.strip() for name, cell in zip(header, padded, strict=False)}
            rows.append((reader.line_num, by_column, len(cells) > len(header)))
    except csv.Error as error:
        raise CsvImportError(
            [CsvRowError(reader.line_num, f"This row could not be read ({error}).")]
        ) from None
    if not rows:
        raise CsvImportError([CsvRowError(0, "The file has a header row but no people in it.")])
    return rows


def invitations_import_csv(*, organisation: Organisation, invited_by: User, file) -> list[Invitation]:
    """Invite everyone in a CSV (email,display_name,team,facilitator,admin): all of them or none.

    Every row is checked before anything is written, so one mistake means nothing is imported and
    every problem is reported with its row number.
    """
    rows = _read_csv_rows(file)
    teams = {team.name.lower(): team for team in Team.objects.filter(organisation=organisation)}
    existing = set(
        User.objects.filter(email__in=[cells.get("email", "").lower() for _, cells, _ in rows]).values_list(
            "email", flat=True
        )
    )
    errors: list[CsvRowError] = []
    seen: dict[str, int] = {}
    valid = []
    for line, cells, has_extra_cells in rows:
        row_errors = []
        if has_extra_cells:
            row_errors.append("This row has more cells than there are column names in the first row.")
        email = cells.get("email", "").lower()
        if not email:
            row_errors.append("The email is missing.")
        else:
            try:
                validate_email(email)
            except ValidationError:
                row_errors.append(f"“{email}” does not look like an email address.")
            else:
                if email in seen:
                    row_errors.append(f"{email} is also on row {seen[email]}. Keep one row per person.")
                elif email in existing:
                    row_errors.append(f"{email} already has an Alongside account.")
                seen.setdefault(email, line)
        team = None
        team_name = cells.get("team", "")
        if team_name:
            team = teams.get(team_name.lower())
            if team is None:
                row_errors.append(
                    f"There is no team called “{team_name}”. "
                    "Add it on the Organisation page, or fix the spelling."
                )
        flags = {}
        for column in ("facilitator", "admin"):
            try:
                flags[column] = _parse_flag(cells.get(column, ""), column)
            except ValueError as error:
                row_errors.append(str(error))
        display_name = cells.get("display_name", "")
        if len(display_name) > Invitation._meta.get_field("display_name").max_length:
            row_errors.append("The display name is longer than 80 characters.")
        errors.extend(CsvRowError(line, message) for message in row_errors)
        if not row_errors:
            valid.append(
                {
                    "email": email,
                    "display_name": display_name,
                    "team": team,
                    "is_facilitator": flags["facilitator"],
                    "is_org_admin": flags["admin"],
                }
            )
    if errors:
        raise CsvImportError(errors)

    try:
        with transaction.atomic():
            invitations = [
                _invitation_create(
                    organisation=organisation, invited_by=invited_by, action="invitation.sent", **row
                )
                for row in valid
            ]
            audit(
                actor=invited_by,
                action="invitations.imported",
                subject=getattr(file, "name", ""),
                data={"count": len(invitations)},
                organisation=organisation,
            )
    except IntegrityError:
        raise CsvImportError(
            [CsvRowError(0, "Someone else invited some of these people just now. Upload the file again.")]
        ) from None
    return invitations


# --- People ----------------------------------------------------------------------------------


def _lock_organisation(organisation: Organisation) -> None:
    """Serialise changes that count admins, so two admins demoting each other can't leave none."""
    Organisation.objects.select_for_update().filter(pk=organisation.pk).first()


def _other_active_admins(person: User):
    return User.objects.filter(
        organisation_id=person.organisation_id, is_org_admin=True, is_active=True
    ).exclude(pk=person.pk)


def person_update_capabilities(
    *,
    actor: User,
    person: User,
    is_member: bool,
    is_facilitator: bool,
    is_org_admin: bool,
    managed_teams,
    team: Team | None,
    line_managers,
) -> User:
    """Set what a person can do, their team, the teams they manage and who line-manages them."""
    managed_teams = list(managed_teams)
    line_managers = list(line_managers)
    org_id = person.organisation_id
    errors = {}
    if team is not None and team.organisation_id != org_id:
        errors["team"] = "That team belongs to another organisation."
    if any(t.organisation_id != org_id for t in managed_teams):
        errors["managed_teams"] = "Every managed team must belong to this organisation."
    if any(m.organisation_id != org_id for m in line_managers):
        errors["line_managers"] = "Every line manager must belong to this organisation."
    elif any(m.pk == person.pk for m in line_managers):
        errors["line_managers"] = "Nobody can be their own line manager."
    if errors:
        raise ValidationError(errors)

    with transaction.atomic():
        _lock_organisation(person.organisation)
        if person.is_org_admin and not is_org_admin and not _other_active_admins(person).exists():
            who = "You are" if person.pk == actor.pk else f"{person.display_name} is"
            raise ValidationError(
                {
                    "is_org_admin": f"{who} the only admin, so this can't be removed yet. "
                    "Make someone else an admin first."
                }
            )
        before = {
            "is_member": person.is_member,
            "is_facilitator": person.is_facilitator,
            "is_org_admin": person.is_org_admin,
            "team": person.team_id,
            "managed_teams": sorted(person.managed_teams.values_list("pk", flat=True)),
            "line_managers": sorted(person.manager_links.values_list("manager_id", flat=True)),
        }
        person.is_member = is_member
        person.is_facilitator = is_facilitator
        person.is_org_admin = is_org_admin
        person.team = team
        person.save(update_fields=["is_member", "is_facilitator", "is_org_admin", "team"])
        person.managed_teams.set(managed_teams)
        wanted = {m.pk for m in line_managers}
        person.manager_links.exclude(manager_id__in=wanted).delete()
        have = set(person.manager_links.values_list("manager_id", flat=True))
        LineManagementLink.objects.bulk_create(
            LineManagementLink(manager_id=pk, report=person) for pk in sorted(wanted - have)
        )
        after = {
            "is_member": is_member,
            "is_facilitator": is_facilitator,
            "is_org_admin": is_org_admin,
            "team": person.team_id,
            "managed_teams": sorted(t.pk for t in managed_teams),
            "line_managers": sorted(wanted),
        }
        changed = {key: {"from": before[key], "to": after[key]} for key in after if before[key] != after[key]}
        if changed:
            audit(actor=actor, action="person.capabilities_changed", subject=person.email, data=changed)
    return person


def person_deactivate(*, actor: User, person: User) -> User:
    """The person can no longer sign in (open sessions end on their next request); their data stays."""
    # Imported here: every app imports accounts.services for audit(), so accounts must not import
    # the other apps at module load or the import graph becomes a cycle.
    from circles import live

    if person.pk == actor.pk:
        raise ValidationError("You can't deactivate yourself. Ask another admin if you are leaving.")
    with transaction.atomic():
        _lock_organisation(person.organisation)
        if person.is_org_admin and not _other_active_admins(person).exists():
            raise ValidationError(
                f"{person.display_name} is the only active admin. Make someone else an admin first."
            )
        if person.is_active:
            person.is_active = False
            person.save(update_fields=["is_active"])
            live.disconnect_user(person.pk)
            audit(actor=actor, action="person.deactivated", subject=person.email)
    return person


def person_reactivate(*, actor: User, person: User) -> User:
    with transaction.atomic():
        if not person.is_active:
            person.is_active = True
            person.save(update_fields=["is_active"])
            audit(actor=actor, action="person.reactivated", subject=person.email)
    return person


# --- Teams -----------------------------------------------------------------------------------


def _insights_changed(organisation: Organisation) -> None:
    """Managers' insights show team names and drop a deleted team's rows: let their caches know."""
    # Imported here: insights.services imports this module (for `audit`).
    from insights.services import rollups_version_bump

    rollups_version_bump(organisation=organisation)


def _check_team_name(organisation: Organisation, name: str, *, exclude_pk: int | None = None) -> str:
    name = " ".join(name.split())
    if not name:
        raise ValidationError({"name": "Give the team a name."})
    clash = Team.objects.filter(organisation=organisation, name__iexact=name)
    if exclude_pk is not None:
        clash = clash.exclude(pk=exclude_pk)
    if clash.exists():
        raise ValidationError({"name": f"There is already a team called “{name}”."})
    return name


def team_create(*, actor: User, organisation: Organisation, name: str) -> Team:
    name = _check_team_name(organisation, name)
    try:
        with transaction.atomic():
            team = Team.objects.create(organisation=organisation, name=name)
            audit(actor=actor, action="team.created", subject=name, organisation=organisation)
    except IntegrityError:
        raise ValidationError({"name": f"There is already a team called “{name}”."}) from None
    return team


def team_rename(*, actor: User, team: Team, name: str) -> Team:
    name = _check_team_name(team.organisation, name, exclude_pk=team.pk)
    old = team.name
    try:
        with transaction.atomic():
            team.name = name
            team.save(update_fields=["name"])
            _insights_changed(team.organisation)
            audit(
                actor=actor,
                action="team.renamed",
                subject=name,
                data={"from": old},
                organisation=team.organisation,
            )
    except IntegrityError:
        team.name = old
        raise ValidationError({"name": f"There is already a team called “{name}”."}) from None
    return team


def team_delete(*, actor: User, team: Team) -> None:
    """People in the team stay, without a team; its managers no longer manage it."""
    with transaction.atomic():
        members = team.members.count()
        audit(
            actor=actor,
            action="team.deleted",
            subject=team.name,
            data={"members": members},
            organisation=team.organisation,
        )
        team.delete()
        _insights_changed(team.organisation)


# --- Organisation ----------------------------------------------------------------------------

THRESHOLD_MESSAGE = (
    f"The threshold can't be lower than {MIN_ANONYMITY_THRESHOLD}. With fewer people behind a figure, "
    "a manager could work out who it is about."
)


def organisation_update(
    *,
    actor: User,
    organisation: Organisation,
    name: str,
    time_zone: str,
    anonymity_threshold: int,
    chat_retention_days: int,
    reflection_retention_days: int | None,
    crisis_text: str,
) -> Organisation:
    errors = {}
    name = name.strip()
    if not name:
        errors["name"] = "Give the organisation a name."
    try:
        validate_time_zone(time_zone)
    except ValidationError as error:
        errors["time_zone"] = error.messages
    if anonymity_threshold is None or anonymity_threshold < MIN_ANONYMITY_THRESHOLD:
        errors["anonymity_threshold"] = THRESHOLD_MESSAGE
    if chat_retention_days is None or chat_retention_days < 0:
        errors["chat_retention_days"] = "Use 0 or more days."
    if reflection_retention_days is not None and reflection_retention_days < 1:
        errors["reflection_retention_days"] = "Use 1 or more days, or leave it empty to keep reflections."
    if errors:
        raise ValidationError(errors)

    fields = {
        "name": name,
        "time_zone": time_zone,
        "anonymity_threshold": anonymity_threshold,
        "chat_retention_days": chat_retention_days,
        "reflection_retention_days": reflection_retention_days,
        "crisis_text": crisis_text.strip(),
    }
    with transaction.atomic():
        changed = {
            key: {"from": getattr(organisation, key), "to": value}
            for key, value in fields.items()
            if getattr(organisation, key) != value and key != "crisis_text"
        }
        if organisation.crisis_text != fields["crisis_text"]:
            changed["crisis_text"] = "changed"
        for key, value in fields.items():
            setattr(organisation, key, value)
        organisation.save(update_fields=list(fields))
        if changed:
            audit(actor=actor, action="organisation.updated", data=changed, organisation=organisation)
    return organisation


def crisis_link_add(
    *, actor: User, organisation: Organisation, label: str, url: str = "", phone: str = ""
) -> CrisisLink:
    label, url, phone = label.strip(), url.strip(), phone.strip()
    errors = {}
    if not label:
        errors["label"] = "Say who this is, for example “Samaritans”."
    if not url and not phone:
        errors["url"] = "Give a web address, a phone number, or both."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        position = organisation.crisis_links.count()
        link = CrisisLink.objects.create(
            organisation=organisation, label=label, url=url, phone=phone, position=position
        )
        audit(actor=actor, action="crisis_link.added", subject=label, organisation=organisation)
    return link


def crisis_link_remove(*, actor: User, link: CrisisLink) -> None:
    with transaction.atomic():
        audit(actor=actor, action="crisis_link.removed", subject=link.label, organisation=link.organisation)
        link.delete()
