"""S6 — sealed fields: ciphertext at rest, blind-index lookups, resumable key rotation."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.db import connection

from rapport.access.encryption import (
    DecryptionError,
    Keyring,
    blind_q,
    decrypt_text,
    encrypt_text,
    keyring,
    pending_rotation_rows,
    rotate_keys,
)
from rapport.core.testing import make_person
from rapport.people import services as people
from rapport.people.models import Person


def _raw_person(pk) -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT birth_date, gender, income_band, income_band_index FROM people_person WHERE id = %s",
                       [pk.hex if connection.vendor == "sqlite" else pk])
        row = cursor.fetchone()
    return dict(zip(["birth_date", "gender", "income_band", "income_band_index"], row, strict=True))


def _with_demographics(actor, name: str, band: str, born: dt.date) -> Person:
    person = make_person(actor=actor, given_name=name)
    return people.person_update(actor=actor, person=person, changes={
        "income_band": band, "birth_date": born, "gender": "female"})


def test_raw_sql_reads_only_ciphertext(private_keyring, staff_user):
    # given
    ada = _with_demographics(staff_user, "Ada", "over_100k", dt.date(1815, 12, 10))
    # when
    raw = _raw_person(ada.pk)
    # then
    assert raw["birth_date"].startswith(f"{private_keyring.active}$")
    # The key id holds its creation time, so the year is looked for in the sealed part only.
    sealed_birth_date = raw["birth_date"].removeprefix(f"{private_keyring.active}$")
    assert "1815" not in sealed_birth_date and "female" not in raw["gender"]
    assert "100k" not in raw["income_band"] and "100k" not in raw["income_band_index"]
    fresh = Person.objects.get(pk=ada.pk)
    assert (fresh.birth_date, fresh.gender, fresh.income_band) == (dt.date(1815, 12, 10), "female", "over_100k")


def test_equal_values_encrypt_differently_and_blind_index_finds_them(private_keyring, staff_user):
    a = _with_demographics(staff_user, "A", "20k_40k", dt.date(1990, 1, 1))
    b = _with_demographics(staff_user, "B", "20k_40k", dt.date(1991, 1, 1))
    _with_demographics(staff_user, "C", "over_100k", dt.date(1990, 1, 1))
    assert _raw_person(a.pk)["income_band"] != _raw_person(b.pk)["income_band"]
    found = Person.objects.filter(blind_q(Person, "income_band", "20k_40k"))
    assert sorted(p.given_name for p in found) == ["A", "B"]
    born = Person.objects.filter(blind_q(Person, "birth_date", dt.date(1990, 1, 1)))
    assert sorted(p.given_name for p in born) == ["A", "C"]


def test_plain_lookups_on_sealed_fields_are_refused(private_keyring):
    from django.core.exceptions import FieldError

    with pytest.raises(FieldError):
        list(Person.objects.filter(income_band="over_100k"))


def test_ciphertext_moved_to_another_column_or_edited_does_not_open(private_keyring):
    sealed = encrypt_text("over_100k", "people.Person.income_band")
    assert decrypt_text(sealed, "people.Person.income_band") == "over_100k"
    with pytest.raises(DecryptionError):
        decrypt_text(sealed, "people.Person.gender")
    with pytest.raises(DecryptionError):
        decrypt_text(sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1], "people.Person.income_band")


def test_rotation_leaves_every_value_readable_and_searchable(private_keyring, staff_user):
    # given
    people_made = [_with_demographics(staff_user, f"P{i}", "40k_70k" if i % 2 else "under_20k",
                                      dt.date(1980, 1, 1 + i)) for i in range(7)]
    people.person_update(actor=staff_user, person=people_made[0], changes={"notes": "history entry"})
    old_key = private_keyring.active
    # when
    report = rotate_keys(batch_size=3)
    # then
    new_key = keyring().active
    assert report.new_key == new_key != old_key
    assert report.rows["people.Person"] == 7
    assert all(_raw_person(p.pk)["income_band"].startswith(f"{new_key}$") for p in people_made)
    assert all(_raw_person(p.pk)["income_band_index"].startswith(f"{new_key}:") for p in people_made)
    assert sum(pending_rotation_rows().values()) == 0
    assert Person.objects.filter(blind_q(Person, "income_band", "40k_70k")).count() == 3
    assert [Person.objects.get(pk=p.pk).birth_date for p in people_made] == [
        dt.date(1980, 1, 1 + i) for i in range(7)]
    from rapport.access.audit import verify_chain

    assert verify_chain().ok


def test_rotation_resumes_after_an_interruption(private_keyring, staff_user, monkeypatch):
    # given
    made = [_with_demographics(staff_user, f"P{i}", "over_100k", dt.date(1970, 1, 1)) for i in range(5)]
    import rapport.access.encryption as enc

    real = enc._rotate_batch
    calls = {"n": 0}

    def crash_after_first(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    from rapport.access.models import AuditEntry

    sealed_rows = Person.objects.count() + AuditEntry.objects.filter(changes__isnull=False).count()
    monkeypatch.setattr(enc, "_rotate_batch", crash_after_first)
    with pytest.raises(KeyboardInterrupt):
        rotate_keys(batch_size=2)
    monkeypatch.setattr(enc, "_rotate_batch", real)
    half_key = keyring().active
    # mid-rotation: the committed batches are under the new key, the rest under the old one;
    # everything stays readable and searchable
    assert 0 < sum(pending_rotation_rows().values()) < sealed_rows
    assert Person.objects.filter(blind_q(Person, "income_band", "over_100k")).count() == 5
    # when: run again
    report = rotate_keys(batch_size=2)
    # then: it finished the same rotation instead of adding a key
    assert report.resumed and report.new_key is None and keyring().active == half_key
    assert len(keyring().keys) == 2
    assert sum(pending_rotation_rows().values()) == 0
    assert {Person.objects.get(pk=p.pk).income_band for p in made} == {"over_100k"}


def test_keys_command_rotate_and_status(private_keyring, staff_user, capsys):
    _with_demographics(staff_user, "Ada", "over_100k", dt.date(1815, 12, 10))
    call_command("keys", "rotate", "--batch-size", "10")
    out = capsys.readouterr().out
    assert "New active key" in out and "every row is under key" in out
    call_command("keys", "status")
    assert "0 row(s) under an older key" in capsys.readouterr().out


def test_keyring_file_is_created_private_and_reloaded(tmp_path, settings):
    import os
    import stat

    import rapport.access.encryption as enc

    settings.RAPPORT_KEYS_FILE = str(tmp_path / "k.json")
    saved = enc._cached
    enc._cached = None
    try:
        ring = keyring()
        mode = stat.S_IMODE(os.stat(tmp_path / "k.json").st_mode)
        assert mode == 0o600 and ring.source == tmp_path / "k.json"
        assert Keyring.from_json(ring.to_json()).keys == ring.keys
    finally:
        enc._cached = saved


def test_attachment_files_rotate_too(private_keyring, staff_user, tmp_path, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from rapport.access import services
    from rapport.access.models import Attachment

    settings.MEDIA_ROOT = tmp_path
    ada = make_person(actor=staff_user, given_name="Ada")
    attachment = services.attachment_add(actor=staff_user, record=ada,
                                         upload=SimpleUploadedFile("a.txt", b"hello", "text/plain"))
    rotate_keys()
    attachment = Attachment.objects.get(pk=attachment.pk)
    assert attachment.key_id == keyring().active
    assert services.attachment_read(user=staff_user, attachment=attachment) == b"hello"
