"""S5 — every path that reveals or changes a person leaves an entry, and field history (single
and bulk changes) is shown on the record; editing or deleting any row is named by verify.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.urls import reverse

from rapport.access.audit import person_entries
from rapport.access.models import AuditEntry, AuditEntryPerson
from rapport.core.testing import PASSWORD, make_person, token_client
from rapport.imports import services as imports
from rapport.imports.models import Import
from rapport.people import services as people


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def entries(action: str, person) -> list[AuditEntry]:
    """The person's entries with ``action``: their own and the bulk ones covering them (exports)."""
    return [e for e in person_entries(person.pk) if e.action == action]


def test_api_view_list_search_and_export_each_leave_entries(staff_user):
    # given
    ada = make_person(actor=staff_user, given_name="Ada", family_name="Lovelace", emails=["ada@example.com"])
    api = token_client(staff_user, ["read", "export"])
    # when
    api.get(reverse("api:person-detail", kwargs={"pk": ada.pk}), REMOTE_ADDR="192.0.2.44")
    api.get(reverse("api:person-list"), {"name": "Lovelace"})
    b"".join(api.get(reverse("api:export-people"), {"format": "csv"}).streaming_content)
    api.get(reverse("api:privacy-export", kwargs={"pk": ada.pk}))
    # then
    view = [e for e in entries("view", ada) if e.channel == "api"]
    assert any(e.ip == "192.0.2.44" and e.actor_name == "staff" for e in view)
    assert {e.channel for e in entries("export", ada)} == {"export", "api"}
    assert len(person_entries(ada.pk)) >= 4


def test_ui_export_download_leaves_an_entry_per_person(client, staff_user):
    ada, bea = (make_person(actor=staff_user, given_name=n, family_name="Export") for n in ("Ada", "Bea"))
    client.login(username="staff", password=PASSWORD)
    response = client.get(reverse("imports:export-download"), {"what": "people", "format": "csv"})
    b"".join(response.streaming_content)
    assert len(entries("export", ada)) == 1 and len(entries("export", bea)) == 1
    assert entries("export", ada) == entries("export", bea)  # one entry for the page, covering both


def test_field_history_of_single_and_bulk_changes_is_shown_on_the_record(client, staff_user):
    # given: one change by hand, one by an import (bulk: one entry per record, one append)
    ada = make_person(actor=staff_user, given_name="Ada", family_name="Lovelace", emails=["ada@example.com"])
    people.person_update(actor=staff_user, person=ada, changes={"country": "GB"})
    data = b"Given name,Family name,Email,Notes\r\nAda,Lovelace,ada@example.com,From the import\r\n"
    imp = imports.import_create(actor=staff_user, upload=io.BytesIO(data), file_name="crm.csv")
    imp = imports.import_configure(actor=staff_user, import_run=imp, policy="overwrite")
    imports.prepare_run(actor=staff_user, import_run=imp)
    assert imports.import_execute(import_id=imp.pk).status == Import.Status.COMPLETED
    # when
    client.login(username="staff", password=PASSWORD)
    page = client.get(reverse("access:history", kwargs={"object_type": "people.person", "pk": ada.pk}))
    detail = client.get(reverse("people:person-detail", kwargs={"pk": ada.pk}))
    # then: who changed what from what to what, through which channel
    text = page.content.decode()
    assert "<strong>country</strong>: — → GB" in text or "<strong>country</strong>:  → GB" in text
    assert "From the import" in text and "import" in text
    assert "From the import" in detail.content.decode()  # the record's own access panel


def test_verify_names_the_row_after_any_edit_or_delete_through_the_cli(staff_user):
    # given: a chain of a few entries
    for name in ("A", "B", "C"):
        make_person(actor=staff_user, given_name=name)
    seqs = list(AuditEntry.objects.order_by("seq").values_list("seq", flat=True))
    middle = seqs[len(seqs) // 2]
    table = AuditEntry._meta.db_table
    # when: an edit of the reason of one row
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET reason = 'nothing to see' WHERE seq = %s", [middle])  # noqa: S608
    # then
    with pytest.raises(CommandError, match=f"#{middle}"):
        call_command("audit", "verify")
    # when: the row is deleted instead
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE seq = %s", [middle])  # noqa: S608
    with pytest.raises(CommandError, match=f"#{middle} was deleted"):
        call_command("audit", "verify")


def test_verify_names_the_export_when_a_covered_row_is_deleted_through_the_cli(client, staff_user):
    # given: an export from the UI, so one entry covering both people
    for name in ("Ada", "Bea"):
        make_person(actor=staff_user, given_name=name, family_name="Export")
    client.login(username="staff", password=PASSWORD)
    b"".join(client.get(reverse("imports:export-download"), {"what": "people", "format": "csv"}).streaming_content)
    call_command("audit", "verify")
    row = AuditEntryPerson.objects.order_by("id").first()
    # when: one person is struck from it
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {AuditEntryPerson._meta.db_table} WHERE id = %s", [row.pk])  # noqa: S608
    # then
    with pytest.raises(CommandError, match=f"#{row.entry_seq} .*people it covers"):
        call_command("audit", "verify")
