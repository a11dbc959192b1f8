"""S6 — a raw dump of every table shows no plaintext of sealed values: not in the person row,
not in the field history that recorded the change, not in the attachment file on disk."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from rapport.access import services
from rapport.core.testing import make_person
from rapport.people import services as people

SECRETS = ("over_100k", "1815-12-10", "non_binary", "ANALYTICAL ENGINE NOTES")


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return Path(settings.MEDIA_ROOT)


def _dump() -> str:
    """Every text column of every table, as raw SQL reads it."""
    parts = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 - names from the schema
            parts.extend(str(value) for row in cursor.fetchall() for value in row if value is not None)
    return "\n".join(parts)


def test_no_plaintext_of_sealed_values_anywhere_in_the_database_or_files(private_keyring, staff_user, media_root):
    # given
    ada = make_person(actor=staff_user, given_name="Ada", family_name="Lovelace")
    ada = people.person_update(actor=staff_user, person=ada, changes={
        "income_band": "over_100k", "birth_date": dt.date(1815, 12, 10), "gender": "non_binary"})
    services.attachment_add(actor=staff_user, record=ada,
                            upload=SimpleUploadedFile("notes.txt", b"ANALYTICAL ENGINE NOTES"))
    # when
    dump = _dump()
    files = b"".join(p.read_bytes() for p in media_root.rglob("*") if p.is_file())
    # then
    assert "Lovelace" in dump  # the dump is real: plain fields are there
    for secret in SECRETS:
        assert secret not in dump, secret
        assert secret.encode() not in files, secret
