import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import AuditEntry, Invitation
from accounts.services import CSV_MAX_ROWS, CsvImportError, invitation_send, invitations_import_csv

pytestmark = pytest.mark.django_db


def upload(text: str | bytes, name: str = "staff.csv") -> SimpleUploadedFile:
    content = text.encode() if isinstance(text, str) else text
    return SimpleUploadedFile(name, content, content_type="text/csv")


def import_csv(people, text):
    return invitations_import_csv(organisation=people.org, invited_by=people.admin, file=upload(text))


def errors_of(people, text) -> list[tuple[int, str]]:
    with pytest.raises(CsvImportError) as error:
        import_csv(people, text)
    assert not Invitation.objects.exists()
    return [(e.row, e.message) for e in error.value.errors]


GOOD = (
    "email,display_name,team,facilitator,admin\n"
    "Bea@Example.org,Bea,crisis team,yes,\n"
    "cal@example.org,,Community team,no,Y\n"
    ",,,,\n"
    "dee@example.org,Dee Dee,,,\n"
)


def test_good_file_invites_everyone_with_their_team_and_capabilities(
    people, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invitations = import_csv(people, GOOD)
    assert [i.email for i in invitations] == ["bea@example.org", "cal@example.org", "dee@example.org"]
    bea, cal, dee = invitations
    assert (bea.team, bea.is_facilitator, bea.is_org_admin) == (people.team, True, False)
    assert (cal.team, cal.is_facilitator, cal.is_org_admin) == (people.other_team, False, True)
    assert (dee.team, dee.display_name) == (None, "Dee Dee")
    assert sorted(m.to[0] for m in mail.outbox) == ["bea@example.org", "cal@example.org", "dee@example.org"]
    assert AuditEntry.objects.get(action="invitations.imported").data == {"count": 3}


def test_excel_utf8_bom_and_crlf_line_endings_are_read(people):
    text = "\ufeffEmail,Display_Name\r\nzoe@example.org,Zoë\r\n"
    (invitation,) = import_csv(people, text.encode("utf-8"))
    assert invitation.display_name == "Zoë"


def test_one_bad_row_imports_nothing_and_names_that_row(people):
    text = GOOD + "not-an-email,Eve,,,\n"
    assert errors_of(people, text) == [(6, "“not-an-email” does not look like an email address.")]
    assert mail.outbox == []


def test_every_bad_row_is_reported_at_once(people):
    text = (
        "email,display_name,team,facilitator,admin\n"
        "a@example.org,A,Nowhere team,,\n"
        "b@example.org,B,,maybe,\n"
        f"{people.member.email},M,,,\n"
        ",No email,,,\n"
        "c@example.org,C,,,,extra\n"
    )
    errors = errors_of(people, text)
    assert [row for row, _ in errors] == [2, 3, 4, 5, 6]
    assert "no team called “Nowhere team”" in errors[0][1]
    assert "should be yes or no" in errors[1][1]
    assert "already has an Alongside account" in errors[2][1]
    assert "email is missing" in errors[3][1]
    assert "more cells than there are column names" in errors[4][1]


def test_duplicates_within_the_file_are_refused_with_both_rows_named(people):
    text = "email\nsam@example.org\nSAM@example.org\n"
    assert errors_of(people, text) == [(3, "sam@example.org is also on row 2. Keep one row per person.")]


def test_a_file_that_is_not_utf8_text_gets_a_clear_message(people):
    text = "email,display_name\nzoe@example.org,Zoë\n".encode("utf-16")
    ((row, message),) = errors_of(people, text)
    assert row == 0 and "Save it from your spreadsheet as “CSV UTF-8" in message


def test_a_file_without_the_email_header_is_refused(people):
    (row, message), *_ = errors_of(people, "sam@example.org,Sam\n")
    assert row == 1 and "must name the columns, including “email”" in message


def test_unknown_columns_are_refused_so_a_typo_is_not_silently_ignored(people):
    ((row, message),) = errors_of(people, "email,facilitater\nsam@example.org,yes\n")
    assert row == 1 and "“facilitater”" in message


def test_an_empty_file_and_a_header_only_file_are_refused(people):
    assert "The file is empty" in errors_of(people, "")[0][1]
    assert "no people in it" in errors_of(people, "email,display_name\n\n")[0][1]


def test_a_file_with_too_many_rows_is_refused(people):
    text = "email\n" + "".join(f"p{n}@example.org\n" for n in range(CSV_MAX_ROWS + 1))
    ((_, message),) = errors_of(people, text)
    assert f"more than {CSV_MAX_ROWS} people" in message


def test_a_file_over_the_size_limit_is_refused(people):
    ((_, message),) = errors_of(people, b"email\n" + b"x" * (1024 * 1024 + 1))
    assert "larger than 1 MB" in message


def test_a_pending_invitation_in_the_file_is_replaced_not_duplicated(people):
    old = invitation_send(organisation=people.org, invited_by=people.admin, email="sam@example.org")
    (new,) = import_csv(people, "email\nsam@example.org\n")
    old.refresh_from_db()
    assert old.revoked_at is not None and new.revoked_at is None


def test_people_page_upload_shows_the_row_error_table_and_imports_nothing(client_for, people):
    client = client_for(people.admin)
    response = client.post(reverse("accounts:invitation-import"), {"file": upload(GOOD + "oops,Eve,,,\n")})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Nothing was imported" in page
    assert "<td>6</td><td>“oops” does not look like an email address.</td>" in page
    assert not Invitation.objects.exists()


def test_people_page_upload_of_a_good_file_invites_and_says_how_many(
    client_for, people, django_capture_on_commit_callbacks
):
    client = client_for(people.admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:invitation-import"), {"file": upload(GOOD)}, follow=True)
    assert "Invitations sent to 3 people." in response.content.decode()
    assert Invitation.objects.count() == 3 and len(mail.outbox) == 3


def test_people_page_upload_without_a_file_asks_for_one(client_for, people):
    response = client_for(people.admin).post(reverse("accounts:invitation-import"), {})
    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
