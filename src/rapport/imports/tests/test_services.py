"""A3 — the import service: normalisation, de-duplication, policies, dry run, consent
provenance, suppression, resume after a crash, and undo."""

from __future__ import annotations

import datetime as dt

import pytest

from rapport.core.errors import Conflict, DomainError
from rapport.imports import services
from rapport.imports.models import Import, ImportChunk, ImportedPerson, ImportIssue
from rapport.imports.tests.conftest import csv_bytes
from rapport.people import services as people
from rapport.people.models import ContactPoint, Employment, Organisation, Person, Tag

pytestmark = pytest.mark.django_db


def snapshot() -> list[tuple]:
    """The people in the database by content (ids differ between runs)."""
    people_ = []
    for p in Person.objects.prefetch_related("contact_points", "employments__organisation", "tags"):
        people_.append((
            p.honorific, p.given_name, p.middle_names, p.family_name, p.preferred_name, p.country, p.language,
            p.timezone, p.notes, p.given_key, p.family_key,
            tuple(sorted((c.kind, c.value, c.normalised, c.search_key, c.label, c.primary)
                         for c in p.contact_points.all())),
            tuple(sorted((e.organisation.name, e.title, str(e.start_date), str(e.end_date))
                         for e in p.employments.all())),
            tuple(sorted(t.name for t in p.tags.all())),
        ))
    return sorted(people_)


def issues(imp: Import, phase: str = "run") -> list[tuple]:
    return list(ImportIssue.objects.filter(import_run=imp, phase=phase).order_by("row", "id")
                .values_list("row", "column", "kind", "message"))


# ------------------------------------------------------------------------------ the run


def test_outlook_export_imports_with_normalisation_and_row_level_errors(upload, run_import):
    # given Outlook's UTF-16 export (5 rows: one invalid email, one duplicate of the first row)
    imp = upload("outlook_contacts.csv")
    assert imp.preset == "outlook" and imp.total_rows == 5
    # when
    imp = run_import(imp)
    # then
    assert imp.status == Import.Status.COMPLETED and imp.next_row == 5
    assert imp.counts == {"rows": 5, "created": 3, "merged": 1, "invalid": 1, "suppressed": 0, "warnings": 0}
    zoe = Person.objects.get(family_name="Ashworth")
    assert (zoe.honorific, zoe.given_name, zoe.given_key) == ("Dr.", "Zoë", "zoe")
    points = {(c.kind, c.normalised, c.label, c.primary) for c in zoe.contact_points.all()}
    assert ("phone", "+442079460018", "work", True) in points
    assert ("phone", "+447911123456", "mobile", False) in points
    assert ("phone", "+442079460999", "home", False) in points  # from the duplicate row, merged in
    assert ("address", "12 St James's Square\nFloor 3\nLondon\nSW1Y 4JH\nUnited Kingdom", "work", True) in points
    assert {c.source for c in zoe.contact_points.all()} == {"import:outlook_contacts.csv"}
    assert [(j.organisation.name, j.title) for j in zoe.employments.all()] == [
        ("Analytical Engines Ltd", "Head of Research")]
    assert sorted(zoe.tags.values_list("name", flat=True)) == ["Customers", "VIP"]
    assert issues(imp) == [(5, "E-mail Address", "invalid",
                            "not-an-email@: There must be something after the @-sign.")]
    assert not Person.objects.filter(given_name="Broken").exists()


def test_vcard_and_xlsx_fixtures_import(upload, run_import):
    run_import(upload("contacts_v30.vcf"))
    run_import(upload("contacts_v21.vcf"))
    xlsx = upload("contacts.xlsx")
    columns = dict(xlsx.mapping["columns"])
    columns.pop("Newsletter opt-in")  # no consent provenance here: leave the consent column out
    imp = run_import(xlsx, mapping={**xlsx.mapping, "columns": columns})
    assert imp.counts["created"] == 3 and imp.counts["invalid"] == 1
    hedy = Person.objects.get(given_name="Hedy")
    assert hedy.country == "US"
    assert set(hedy.contact_points.values_list("normalised", flat=True)) == {"hedy@example.com", "+12025550147"}
    assert hedy.employments.get().start_date == dt.date(2021, 3, 1)
    assert Person.objects.get(given_name="Jürgen").contact_points.filter(kind="phone").get().normalised == \
        "+493012345678"
    assert Person.objects.filter(given_name="Françoise", family_name="François").exists()
    assert not Person.objects.filter(given_name="Unreadable").exists()  # its only email is invalid


def test_a_row_matching_an_existing_person_updates_them_and_never_duplicates(upload, run_import, make_person):
    # given Ada exists with her phone typed the national way
    ada = make_person(given_name="Ada", family_name="Lovelace", phones=["020 7946 0123"])
    version = ada.version
    # when a file has her phone in international format, a new email and a job
    data = csv_bytes([["First name", "Last name", "Phone", "Email", "Company"],
                      ["Ada", "Lovelace", "+44 20 7946 0123", "ada@example.com", "Engines Ltd"]])
    imp = run_import(upload(data))
    # then she is updated, not duplicated, with the evidence of the match
    assert Person.objects.count() == 1
    assert imp.counts["updated"] == 1
    ada.refresh_from_db()
    assert ada.version == version + 1
    assert set(ada.contact_points.values_list("normalised", flat=True)) == {"+442079460123", "ada@example.com"}
    assert ada.employments.get().organisation.name == "Engines Ltd"
    [row] = imp.report_rows
    assert row["outcome"] == "updated" and row["person_id"] == str(ada.pk)
    assert row["evidence"] == [{"field": "phone", "level": "exact", "value": "+442079460123"}]
    assert sorted(row["changes"]) == ["+email", "+job"]
    assert ImportedPerson.objects.get(import_run=imp).created is False


def test_duplicates_within_the_file_become_one_person_across_chunks(upload, run_import):
    # given three rows for one person (linked by email, then by phone), in different chunks
    data = csv_bytes([["Name", "Email", "Phone"],
                      ["Grace Hopper", "grace@navy.example", ""],
                      ["Alan Turing", "alan@example.com", ""],
                      ["G. Hopper", "GRACE@navy.example", "+1 202 555 0101"],
                      ["Grace B. Hopper", "", "+1 (202) 555-0101"]])
    # when imported two rows per chunk
    imp = run_import(upload(data, chunk_size=2))
    # then
    assert imp.counts == {"rows": 4, "created": 2, "merged": 2, "invalid": 0, "suppressed": 0, "warnings": 0}
    grace = Person.objects.get(given_name="Grace")
    assert set(grace.contact_points.values_list("normalised", flat=True)) == {"grace@navy.example", "+12025550101"}
    assert Person.objects.count() == 2
    assert ImportChunk.objects.filter(import_run=imp).count() == 2


@pytest.mark.parametrize(("policy", "expected_given", "expected_notes", "job", "tags", "outcome"), [
    ("fill_blanks", "Ada", "From the file", "Old Co", {"vip", "new"}, "updated"),
    ("overwrite", "Augusta", "From the file", "New Co", {"vip", "new"}, "updated"),
    ("add_contact_points", "Ada", "", "Old Co", {"vip"}, "updated"),
])
def test_policies(upload, run_import, make_person, make_organisation, staff_user, policy, expected_given,
                  expected_notes, job, tags, outcome):
    # given Ada with a job at Old Co and a tag
    ada = make_person(given_name="Ada", family_name="Lovelace", emails=["ada@example.com"], tags=["vip"])
    people.employment_start(actor=staff_user, person=ada, organisation=make_organisation(name="Old Co"),
                            start_date=dt.date(2020, 1, 1))
    data = csv_bytes([["Given name", "Family name", "Email", "Phone", "Notes", "Company", "Tags"],
                      ["Augusta", "Lovelace", "ada@example.com", "020 7946 0001", "From the file", "New Co", "new"]])
    # when
    imp = run_import(upload(data), policy=policy)
    # then
    ada.refresh_from_db()
    assert (ada.given_name, ada.notes) == (expected_given, expected_notes)
    assert ada.contact_points.filter(kind="phone", normalised="+442079460001").exists()  # every policy adds points
    current = ada.employments.filter(end_date__isnull=True).get()
    assert current.organisation.name == job
    if policy == "overwrite":
        assert ada.employments.get(organisation__name="Old Co").end_date == dt.date.today()
    assert set(ada.tags.values_list("name", flat=True)) == tags
    assert imp.counts[outcome] == 1


def test_a_row_with_nothing_new_is_unchanged_and_bumps_nothing(upload, run_import, make_person):
    ada = make_person(given_name="Ada", family_name="Lovelace", emails=["ada@example.com"])
    imp = run_import(upload(csv_bytes([["Name", "Email"], ["Ada Lovelace", "ADA@example.com"]])))
    assert imp.counts["unchanged"] == 1
    assert Person.objects.get().version == ada.version


def test_address_matches_only_with_the_same_family_name(upload, run_import, make_person):
    make_person(given_name="Ada", family_name="Lovelace", emails=["ada@example.com"])
    people.contact_point_add(actor=None, person=Person.objects.get(),
                             data=people.ContactPointInput(kind="address", value="1 High St\nLondon"))
    data = csv_bytes([["Given", "Family", "Street", "City"],
                      ["A.", "Lovelace", "1 High St", "London"], ["Bob", "Builder", "1 High St", "London"]])
    imp = run_import(upload(data), mapping={"columns": {
        "Given": {"target": "given_name"}, "Family": {"target": "family_name"},
        "Street": {"target": "address"}, "City": {"target": "address"}}})
    assert imp.counts["unchanged"] == 1 and imp.counts["created"] == 1
    assert Person.objects.count() == 2


# ------------------------------------------------------------------------------ dry run


def test_dry_run_writes_nothing_and_predicts_the_run(upload, run_import, make_person):
    # given an existing person and a file with a match, a new person, an in-file duplicate, an invalid row
    make_person(given_name="Grace", family_name="Hopper", emails=["grace@navy.example"])
    data = csv_bytes([["Name", "Email", "Phone"],
                      ["Grace Hopper", "grace@navy.example", "+1 202 555 0101"],
                      ["Alan Turing", "alan@example.com", ""],
                      ["A. Turing", "", "+44 20 7946 0777"],
                      ["Alan M. Turing", "alan@example.com", "+44 20 7946 0777"],
                      ["Nobody", "nobody@", ""]])
    before = snapshot()
    counts_before = (Person.objects.count(), ContactPoint.objects.count(), Organisation.objects.count())
    # when previewing with small chunks
    preview = run_import(upload(data, chunk_size=2), dry_run=True)
    # then nothing changed in the CRM
    assert snapshot() == before
    assert (Person.objects.count(), ContactPoint.objects.count(), Organisation.objects.count()) == counts_before
    assert not ImportedPerson.objects.exists() and not ImportChunk.objects.exists()
    assert preview.status == Import.Status.PREVIEWED and preview.next_row == 0
    counts = preview.preview["counts"]
    assert (counts["updated"], counts["created"], counts["merged"], counts["invalid"]) == (1, 1, 2, 1)
    rows = {r["row"]: r for r in preview.preview["rows"]}
    assert rows[2]["outcome"] == "updated" and rows[2]["evidence"][0]["value"] == "grace@navy.example"
    assert rows[2]["candidates"][0]["score"] > 0.5  # identity resolution's own evidence (I2)
    assert rows[6]["outcome"] == "invalid" and "nobody@" in rows[6]["messages"][0]
    assert issues(preview, "preview")[0][:3] == (6, "Email", "invalid")
    # and the real run does what the preview said
    Import.objects.filter(pk=preview.pk).update(status=Import.Status.PREVIEWED)
    done = run_import(Import.objects.get(pk=preview.pk))
    assert {k: done.counts[k] for k in ("updated", "created", "merged", "invalid")} == \
        {"updated": 1, "created": 1, "merged": 2, "invalid": 1}
    assert Person.objects.count() == 2


# ------------------------------------------------------------------------- suppression


def test_suppressed_rows_are_skipped_and_reported(upload, run_import, monkeypatch):
    # given the real suppression list holding one email and one phone (checked set-wise, bisected on a hit)
    from rapport.privacy import suppression

    suppression.suppress(emails=["erased@example.com"], phones=["+447911123456"], reason="erased")
    calls = []
    real = suppression.ensure_not_suppressed

    def counting(**kwargs):
        calls.append(1)
        return real(**kwargs)

    monkeypatch.setattr(suppression, "ensure_not_suppressed", counting)
    rows = [["Name", "Email", "Phone"]] + [[f"Person {i}", f"p{i}@example.com", ""] for i in range(15)]
    rows.insert(8, ["Someone", "Erased@Example.com", ""])
    rows.insert(12, ["Other", "", "07911 123456"])  # the phone written nationally
    # when
    imp = run_import(upload(csv_bytes(rows)))
    # then
    assert imp.counts["suppressed"] == 2 and imp.counts["created"] == 15, (imp.counts, issues(imp))
    assert not ContactPoint.objects.filter(normalised__in=["erased@example.com", "+447911123456"]).exists()
    found = [(row, kind) for row, _, kind, _ in issues(imp)]
    assert found == [(9, "suppressed"), (13, "suppressed")]
    assert all("suppression list" in message for *_, message in issues(imp))
    assert len(calls) < 17  # not one query per row


# ------------------------------------------------------------------------------ consent


CONSENT_FILE = csv_bytes([["Name", "Email", "Newsletter opt-in"],
                          ["Ada Lovelace", "ada@example.com", "yes"],
                          ["Alan Turing", "alan@example.com", "no"],
                          ["Grace Hopper", "grace@example.com", ""]])


def test_a_file_bringing_marketing_permission_needs_its_provenance(upload, staff_user):
    imp = upload(CONSENT_FILE)
    assert imp.brings_consent
    with pytest.raises(DomainError) as caught:
        services.import_start(actor=staff_user, import_run=imp)
    assert "say where it came from" in str(caught.value)
    assert {"consent_source", "consent_lawful", "consent_notice", "consent_date"} <= set(caught.value.field_errors)


def test_consents_land_in_the_ledger_with_the_import_as_proof(upload, run_import, monkeypatch):
    # given
    recorded = []
    monkeypatch.setattr(services, "_record_consent", lambda **kw: recorded.append(kw))
    monkeypatch.setattr(services, "_notice_version", lambda imp: f"NV<{imp.consent_notice_version}>")
    imp = upload(CONSENT_FILE)
    # when
    imp = run_import(imp, consent={"purpose": "newsletter", "source": "Leeds trade fair sign-up sheet",
                                   "lawful_basis": "consent", "collected_on": "2025-05-01",
                                   "notice_version": "privacy:3", "confirmed": True})
    # then: one grant, one withdrawal, nothing for the blank cell
    assert imp.counts["consents"] == 2
    by_person = {Person.objects.get(pk=r["person"].pk).given_name: r for r in recorded}
    ada, alan = by_person["Ada"], by_person["Alan"]
    assert (ada["granted"], alan["granted"]) == (True, False)
    assert ada["purpose"] == "newsletter" and ada["channel"] == "email" and ada["lawful_basis"] == "consent"
    assert ada["source"] == "import" and ada["notice_version"] == "NV<privacy:3>" and ada["double_opt_in"] is False
    assert ada["occurred_at"].date() == dt.date(2025, 5, 1)
    assert ada["proof"]["origin"] == "Leeds trade fair sign-up sheet"
    assert ada["proof"]["import"] == str(imp.pk) and ada["proof"]["row"] == 2
    assert ada["proof"]["column"] == "Newsletter opt-in" and ada["proof"]["file_sha256"] == imp.file_sha256


def test_without_consent_columns_no_consent_is_recorded(upload, run_import, monkeypatch):
    recorded = []
    monkeypatch.setattr(services, "_record_consent", lambda **kw: recorded.append(kw))
    imp = upload(CONSENT_FILE)
    columns = {h: r for h, r in imp.mapping["columns"].items() if not r["target"].startswith("consent")}
    imp = run_import(imp, mapping={**imp.mapping, "columns": columns})
    assert imp.counts["created"] == 3 and recorded == [] and not imp.brings_consent


# ----------------------------------------------------------------------- resume & undo


def test_a_crash_mid_chunk_resumes_to_exactly_the_uninterrupted_result(upload, run_import, monkeypatch,
                                                                        make_person, staff_user):
    # given a file with duplicates of existing people and of itself, in 7 chunks
    make_person(given_name="Existing", family_name="Person", emails=["p3@example.com"])
    rows = [["Name", "Email", "Phone", "Company", "Tags"]]
    for i in range(20):
        rows.append([f"Person{i} Family{i % 4}", f"p{i % 17}@example.com", f"+44 20 7946 {i % 13:04d}",
                     f"Company {i % 3}", f"t{i % 2}"])
    data = csv_bytes(rows)
    imp = upload(data, chunk_size=3)
    services.prepare_run(actor=staff_user, import_run=imp)
    # when the process dies inside the 4th chunk's transaction (after its writes began)
    original = services._Context._write_issues
    calls = {"n": 0}

    def crash(self, issues_):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt("killed")
        return original(self, issues_)

    monkeypatch.setattr(services._Context, "_write_issues", crash)
    with pytest.raises(KeyboardInterrupt):
        services.import_execute(import_id=imp.pk)
    monkeypatch.setattr(services._Context, "_write_issues", original)
    imp.refresh_from_db()
    assert imp.next_row == 9 and imp.status == Import.Status.RUNNING  # 3 chunks committed, the 4th rolled back
    # and it is resumed (the dead holder's lease is taken over)
    Import.objects.filter(pk=imp.pk).update(lease_owner="somehost:1:dead")
    Import.objects.filter(pk=imp.pk).update(lease_until=None)
    resumed = services.import_execute(import_id=imp.pk)
    interrupted = snapshot()
    counts = resumed.counts
    # then it equals an uninterrupted run of the same file on the same starting data
    Person.objects.all().delete()
    Organisation.objects.all().delete()
    Tag.objects.all().delete()
    make_person(given_name="Existing", family_name="Person", emails=["p3@example.com"])
    fresh = run_import(upload(data, chunk_size=3))
    assert resumed.status == Import.Status.COMPLETED
    assert snapshot() == interrupted
    assert fresh.counts == counts


def test_a_live_lease_keeps_a_second_runner_out(upload, staff_user):
    imp = upload(csv_bytes([["Name"], ["Ada"]]))
    services.prepare_run(actor=staff_user, import_run=imp)
    Import.objects.filter(pk=imp.pk).update(lease_owner="otherhost:1:abc",
                                            lease_until=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1))
    result = services.import_execute(import_id=imp.pk)
    assert result.next_row == 0 and not Person.objects.exists()


def test_undo_removes_what_was_created_and_reverts_what_was_changed(upload, run_import, make_person,
                                                                   make_organisation, staff_user):
    # given an existing person with a job, then an overwriting import touching them and creating others
    ada = make_person(given_name="Ada", family_name="Lovelace", emails=["ada@example.com"], tags=["vip"])
    people.employment_start(actor=staff_user, person=ada, organisation=make_organisation(name="Old Co"),
                            start_date=dt.date(2020, 1, 1))
    before = snapshot()
    data = csv_bytes([["Given name", "Family name", "Email", "Phone", "Company", "Tags"],
                      ["Augusta", "Lovelace", "ada@example.com", "020 7946 0001", "New Co", "new"],
                      ["Alan", "Turing", "alan@example.com", "", "Bletchley", ""],
                      ["Alan", "Turing", "alan@example.com", "020 7946 0002", "", ""]])
    imp = run_import(upload(data, chunk_size=2), policy="overwrite")
    assert Person.objects.count() == 2 and Organisation.objects.count() == 3
    # when
    services.import_undo(actor=staff_user, import_run=imp)
    # then
    assert snapshot() == before
    assert Organisation.objects.count() == 1
    imp.refresh_from_db()
    assert imp.status == Import.Status.UNDONE and not ImportedPerson.objects.filter(import_run=imp).exists()
    with pytest.raises(Conflict):
        services.import_undo(actor=staff_user, import_run=imp)


def test_undo_is_refused_when_someone_changed_a_record_since(upload, run_import, staff_user):
    imp = run_import(upload(csv_bytes([["Name", "Email"], ["Ada Lovelace", "ada@example.com"],
                                       ["Alan Turing", "alan@example.com"]])))
    alan = Person.objects.get(given_name="Alan")
    people.person_update(actor=staff_user, person=alan, changes={"notes": "Called him"})
    with pytest.raises(Conflict) as caught:
        services.import_undo(actor=staff_user, import_run=imp)
    assert caught.value.extra["people"] == [str(alan.pk)]
    assert Person.objects.count() == 2  # nothing was undone


def test_imports_are_private_to_their_uploader(upload, django_user_model):
    from rapport.core.errors import NotAllowed
    from rapport.core.testing import make_user

    imp = upload(csv_bytes([["Name"], ["Ada"]]))
    other = make_user("other")
    with pytest.raises(NotAllowed):
        services.import_configure(actor=other, import_run=imp, policy="overwrite")


def test_resume_stalled_requeues_imports_whose_lease_expired(upload, staff_user):
    from django_tasks_db.models import DBTaskResult

    imp = upload(csv_bytes([["Name"], ["Ada"]]))
    Import.objects.filter(pk=imp.pk).update(status=Import.Status.RUNNING, lease_owner="gone:1:x",
                                            lease_until=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
    assert services.resume_stalled_imports() == [str(imp.pk)]
    assert DBTaskResult.objects.filter(args_kwargs__args=[str(imp.pk), False]).exists()
    assert services.resume_stalled_imports() == []  # its lease was reset: not re-queued twice


def test_purge_deletes_files_issues_and_ledgers_after_retention(upload, run_import, media_root):
    imp = run_import(upload("outlook_contacts.csv"))
    assert services.file_path(imp).exists()
    purged = services.purge_expired_imports(now=dt.datetime.now(dt.UTC) + dt.timedelta(days=31))
    imp.refresh_from_db()
    assert purged == 1 and imp.purged_at is not None and imp.file_path == ""
    assert not ImportIssue.objects.filter(import_run=imp).exists()
    assert not ImportChunk.objects.filter(import_run=imp).exists()
    assert not any(media_root.rglob("outlook_contacts.csv"))


def test_employment_start_date_and_existing_organisation_are_reused(upload, run_import, make_organisation):
    org = make_organisation(name="Analytical Engines")
    data = csv_bytes([["Name", "Email", "Company", "Started"],
                      ["Ada Lovelace", "ada@example.com", "analytical engines", "01/02/2021"]])
    imp = upload(data)
    imp = run_import(imp, mapping={"columns": {"Name": {"target": "full_name"}, "Email": {"target": "email"},
                                               "Company": {"target": "organisation"},
                                               "Started": {"target": "start_date"}}, "date_format": "%d/%m/%Y"})
    job = Employment.objects.get()
    assert job.organisation_id == org.pk and job.start_date == dt.date(2021, 2, 1)
    assert Organisation.objects.count() == 1 and imp.counts["created"] == 1


def test_preview_candidates_are_only_people_the_importer_may_see(upload, run_import, make_person):
    # given: people are private by default; a sales rep imports a file naming one person they
    # own and one owned by someone else (S2)
    from rapport.access.models import Role, SharingDefault
    from rapport.access.policy import access_changed
    from rapport.core import testing

    SharingDefault.objects.update_or_create(object_type="people.person", defaults={"access": "private"})
    access_changed()
    rep = testing.make_user("rep", role=Role.objects.get(key="sales-rep"))
    mine = make_person(given_name="Grace", family_name="Hopper", emails=["grace@navy.example"], owner=rep)
    make_person(given_name="Hedy", family_name="Lamarr", emails=["hedy@example.com"])
    data = csv_bytes([["Name", "Email"], ["Grace Hopper", "grace@navy.example"], ["Hedy Lamarr", "hedy+news@example.com"]])
    # when the rep previews it
    preview = run_import(upload(data, actor=rep), actor=rep, dry_run=True)
    # then the rep's own person is offered with evidence, the hidden one never is
    rows = {r["row"]: r for r in preview.preview["rows"]}
    assert [c["person_id"] for c in rows[2]["candidates"]] == [str(mine.pk)]
    assert rows[3].get("candidates", []) == []
