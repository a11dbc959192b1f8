"""I5/C4 — contact points' keyed digests, so the gate's batch joins instead of hashing.

The suppression list stores identifiers only as HMACs (``suppression``). To find which of a
million people are on it, the batch used to hash every address of the audience in Python.
``ContactDigest`` keeps each contact point's HMACs instead (decision 0018):

- database triggers on ``people_contactpoint`` (migration 0006, one tested path per database)
  add a row with no digest when a point is inserted, clear it (and bump its ``version``) when
  its value or kind changes, and delete it with the point — whoever writes the table;
- ``refresh`` fills the rows that have no digest yet (the audience's, before matching), each
  written only if its ``version`` is still the one read, so a point changed meanwhile stays
  cleared for the next batch;
- ``suppressed_people`` joins the list's entries to the digests (an index probe per entry);
- the key's fingerprint is stored too: a changed suppression key clears every digest.

The digests are a derived cache: losing them costs the next batch the hashing, never an answer.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import QuerySet

from rapport.privacy import suppression
from rapport.privacy.models import ContactDigest, ContactDigestKey, SuppressionEntry

# The contact point kinds whose digests the suppression list can match (the rest get "").
SUPPRESSIBLE = {"email": SuppressionEntry.Kind.EMAIL, "phone": SuppressionEntry.Kind.PHONE,
                "address": SuppressionEntry.Kind.ADDRESS}
# Rows updated per statement when filling.
FILL_CHUNK = 5000


def refresh(where: str = "", params: tuple | list = ()) -> int:
    """Fill in the digests the triggers left empty, for contact points matching ``where``
    (SQL on ``cp``, the contact point table, e.g. `` AND cp.person_id IN (…)``). Returns how
    many were filled."""
    from rapport.people.models import ContactPoint

    _check_key()
    digest_t, point_t = ContactDigest._meta.db_table, ContactPoint._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT d.point_id, d.version, cp.kind, cp.normalised FROM {digest_t} d "  # noqa: S608
                       f"JOIN {point_t} cp ON cp.id = d.point_id WHERE d.digest IS NULL{where}", params)
        missing = cursor.fetchall()
        if not missing:
            return 0
        rows = [(digest, canonical, point_id, version)
                for (digest, canonical), (point_id, version, _, _) in zip(
                    digests_of([(kind, value) for _, _, kind, value in missing]), missing, strict=True)]
        update = (f"UPDATE {digest_t} SET digest = %s, canonical = %s "  # noqa: S608
                  "WHERE point_id = %s AND version = %s")
        for start in range(0, len(rows), FILL_CHUNK):
            cursor.executemany(update, rows[start:start + FILL_CHUNK])
    return len(rows)


def digests_of(points: list[tuple[str, str]]) -> list[tuple[str, str | None]]:
    """(digest, canonical digest or None) of each (kind, normalised value): the HMACs
    ``suppression.keyed_digest`` gives its compared forms; ("", None) for other kinds."""
    firsts: list[bytes] = []
    seconds: list[tuple[int, bytes]] = []
    slots: list[int] = []
    for kind, value in points:
        entry_kind = SUPPRESSIBLE.get(kind)
        if entry_kind is None:
            slots.append(-1)
            continue
        if entry_kind == SuppressionEntry.Kind.EMAIL:
            forms = [value]
            # Only a +tag or a Gmail domain changes an (already normalised) email.
            if "+" in value or "mail.com" in value:
                other = suppression.canonical_email(value)
                if other != value:
                    seconds.append((len(slots), other.encode()))
        else:
            forms = sorted(suppression.stored_forms(entry_kind, value))
            for other in forms[1:]:
                seconds.append((len(slots), other.encode()))
        slots.append(len(firsts))
        firsts.append(forms[0].encode())
    first = suppression.keyed_digests(firsts)
    second = dict(zip([i for i, _ in seconds], suppression.keyed_digests([f for _, f in seconds]), strict=True))
    return [("", None) if slot < 0 else (first[slot], second.get(i)) for i, slot in enumerate(slots)]


def suppressed_people(contact_kind: str, entries: QuerySet) -> list[Any]:
    """Person ids (as the gate's raw queries return them) with a contact point of
    ``contact_kind`` whose digest — or canonical digest — is among ``entries``' digests.

    Driven by the entries: each probes the digests' index, then the point's primary key.
    """
    from rapport.people.models import ContactPoint
    from rapport.privacy.gate import _fetch

    try:
        sub, sub_params = entries.order_by().values("digest").query.get_compiler(connection=connection).as_sql()
    except EmptyResultSet:  # e.g. no list kinds for the channel: nothing can match
        return []
    digest_t, point_t = ContactDigest._meta.db_table, ContactPoint._meta.db_table
    match = (f"SELECT cp.person_id FROM {digest_t} d JOIN {point_t} cp ON cp.id = d.point_id "  # noqa: S608
             "WHERE d.{column} IN ({sub}) AND cp.kind = %s")
    sql = " UNION ".join(match.format(column=column, sub=sub) for column in ("digest", "canonical"))
    return [pid for (pid,) in _fetch(sql, (*sub_params, contact_kind, *sub_params, contact_kind))]


def key_fingerprint() -> str:
    """Names the suppression key and the digest scheme (``v1``: ``digests_of``) without revealing
    the key; stored beside the digests."""
    return hashlib.sha256(b"rapport contact digests v1\0" + suppression.suppression_key()).hexdigest()


def _check_key() -> None:
    """Clear every digest made under another key (or an unknown one) and record this key's."""
    fingerprint = key_fingerprint()
    stored = ContactDigestKey.objects.order_by("pk").first()
    if stored is not None and stored.fingerprint == fingerprint:
        return
    digest_t = ContactDigest._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {digest_t} SET digest = NULL, canonical = NULL, version = version + 1 "  # noqa: S608
                       "WHERE digest IS NOT NULL")
    ContactDigestKey.objects.all().delete()
    ContactDigestKey.objects.create(fingerprint=fingerprint)
