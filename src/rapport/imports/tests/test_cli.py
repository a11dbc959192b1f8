"""A3 — ``rapport import`` and ``rapport export`` on the command line."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.management import CommandError, call_command

from rapport.imports.models import Import, ImportMapping
from rapport.imports.tests.conftest import DATA, csv_bytes
from rapport.people.models import Person

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_dry_run_reports_and_writes_nothing(staff_user):
    out, err = run("import", str(DATA / "outlook_contacts.csv"), "--mapping", "auto", "--dry-run", "--user", "staff")
    assert "utf-16" in err and "(outlook export)" in err and "E-mail Address → email" in err
    assert "Preview of outlook_contacts.csv: Previewed" in out
    assert "created" in out and "row     5  invalid" in out and "Nothing was written" in out
    assert "row     5 [E-mail Address] invalid: not-an-email@" in out
    assert Person.objects.count() == 0


def test_import_with_a_saved_mapping_and_an_error_file(staff_user, tmp_path):
    # given a template saved from a first import
    run("import", str(DATA / "google_contacts.csv"), "--user", "staff", "--save-mapping", "Google")
    assert ImportMapping.objects.filter(name="Google").exists()
    Person.objects.all().delete()
    # when importing with it
    errors = tmp_path / "errors.csv"
    out, _ = run("import", str(DATA / "google_contacts.csv"), "--mapping", "Google", "--user", "staff",
                 "--policy", "overwrite", "--errors", str(errors))
    # then
    assert "Imported google_contacts.csv: Completed" in out and Person.objects.count() == 3
    assert next(csv.reader(io.StringIO(errors.read_text(encoding="utf-8-sig"))))[-1] == "Rapport problems"


def test_resume_and_undo_by_id(staff_user):
    out, _ = run("import", str(DATA / "outlook_contacts.csv"), "--user", "staff")
    imp = Import.objects.get()
    with pytest.raises(CommandError, match="nothing to resume"):
        run("import", "--resume", str(imp.pk), "--user", "staff")
    out, _ = run("import", "--undo", str(imp.pk), "--user", "staff")
    assert "undone" in out and Person.objects.count() == 0
    out, _ = run("import", "--list")
    assert str(imp.pk) in out and "undone" in out


def test_bad_input_is_a_command_error(staff_user, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(CommandError, match="The file is empty"):
        run("import", str(empty), "--user", "staff")
    with pytest.raises(CommandError, match="No such file"):
        run("import", str(tmp_path / "missing.csv"), "--user", "staff")
    with pytest.raises(CommandError, match="no saved mapping called 'Nope'"):
        run("import", str(DATA / "google_contacts.csv"), "--mapping", "Nope", "--user", "staff")
    consent = tmp_path / "consent.csv"
    consent.write_bytes(csv_bytes([["Name", "Email", "Email opt-in"], ["Ada", "ada@example.com", "yes"]]))
    with pytest.raises(CommandError, match="say where it came from"):
        run("import", str(consent), "--user", "staff")
    with pytest.raises(CommandError, match="No active user"):
        run("import", str(consent), "--user", "nobody")


def test_export_to_a_file_and_to_stdout(staff_user, make_person, tmp_path, capsysbinary):
    make_person(given_name="Ada", family_name="Lovelace", emails=["ada@example.com"], tags=["vip"])
    make_person(given_name="Alan", family_name="Turing", emails=["alan@example.com"])
    target = tmp_path / "vip.vcf"
    run("export", "people", "--format", "vcf", "--tag", "vip", "--user", "staff", "--output", str(target))
    text = target.read_text()
    assert text.count("BEGIN:VCARD") == 1 and "Lovelace" in text
    call_command("export", "people", "--format", "json", "--user", "staff", stdout=io.StringIO())
    assert b'"family_name": "Turing"' in capsysbinary.readouterr().out
    with pytest.raises(CommandError, match="needs --output"):
        run("export", "people", "--format", "xlsx", "--user", "staff")
    with pytest.raises(CommandError, match="cannot be filtered by domain"):
        run("export", "people", "--domain", "x.example", "--user", "staff")


def test_a_json_export_imports_back_with_its_bad_items_in_the_error_file(staff_user, make_person, tmp_path):
    # given a JSON export of two people, plus an item that is not a person
    make_person(given_name="Ada", family_name="Lovelace", emails=["ada@example.com"], tags=["vip"])
    make_person(given_name="Alan", family_name="Turing", phones=["+44 7911 123456"])
    exported = tmp_path / "people.json"
    run("export", "people", "--format", "json", "--user", "staff", "--output", str(exported))
    data = exported.read_text().rstrip().removesuffix("]") + ',\n"not a person"\n]\n'
    exported.write_text(data)
    Person.objects.all().delete()
    # when it is imported
    errors = tmp_path / "errors.csv"
    out, err = run("import", str(exported), "--user", "staff", "--errors", str(errors))
    # then both people are back and the odd item is reported
    assert "JSON" in err and "3 rows" in err
    assert "created            2" in out and "invalid            1" in out
    assert sorted(Person.objects.values_list("family_name", flat=True)) == ["Lovelace", "Turing"]
    assert Person.objects.get(family_name="Lovelace").tags.get().name == "vip"
    rows = list(csv.reader(io.StringIO(errors.read_text(encoding="utf-8-sig"))))
    assert rows == [["Item", "Rapport row", "Rapport problems"], ["item 3", "3", "Item 3 is not a person (a JSON object)."]]


def test_the_import_command_stays_single_threaded_so_the_run_may_read_ahead(staff_user, monkeypatch):
    # given: the run forks its read-ahead only from a single-threaded process (core.forking);
    # the progress bar must not start a thread of its own (rich's auto-refresh did)
    from rapport.core.forking import fork_safe_by_default
    from rapport.imports import services

    seen: list[bool] = []
    execute = services.import_execute

    def spying(**kwargs):
        progress = kwargs["progress"]

        def recording(current):
            seen.append(fork_safe_by_default())
            progress(current)

        return execute(**{**kwargs, "progress": recording})

    monkeypatch.setattr(services, "import_execute", spying)
    # when
    out, _ = run("import", str(DATA / "outlook_contacts.csv"), "--user", "staff")
    # then the bar was updated, with no other thread running
    assert "Completed" in out
    assert seen and all(seen)
