"""A3 — the bulk writer's ids and connection setting (decision 0020)."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection

from rapport.imports import bulk


def test_chunk_ids_are_distinct_version_4_uuids_sharing_one_prefix_per_call() -> None:
    # given / when
    first, second = bulk.new_hex_ids(5000), bulk.new_hex_ids(5000)

    # then: valid v4 UUIDs in the 32-hex-digit form both databases take, all distinct
    for text in first + second:
        value = uuid.UUID(text)
        assert len(text) == 32 and value.hex == text
        assert value.version == 4 and value.variant == uuid.RFC_4122
    assert len(set(first) | set(second)) == 10000
    # one random 48-bit prefix per call keeps a chunk's keys together in the id indexes…
    assert {text[:12] for text in first} == {first[0][:12]}
    assert first[0][:12] != second[0][:12]
    # …and the rest of each id is random (not a counter a neighbour's id would give away)
    tails = sorted(text[13:] for text in first)
    assert tails != [text[13:] for text in first]
    assert len({text[13:16] for text in first}) > 1000


def test_prefixes_spread_over_the_key_space() -> None:
    # the export splits people by the first hex digit of their ids (decision 0016)
    firsts = {bulk.new_hex_ids(1)[0][0] for _ in range(400)}
    assert len(firsts) == 16


@pytest.mark.django_db
def test_tune_connection_sets_the_sqlite_page_cache() -> None:
    bulk.tune_connection()
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        assert cursor.fetchone()[0] == -bulk.SQLITE_CACHE_MB * 1024
