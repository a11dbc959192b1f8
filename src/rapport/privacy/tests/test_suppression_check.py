"""I5 — ``ensure_not_suppressed``: the check every create runs, one (prepared) query, the same
answers for raw and already normalised values, whatever the number of identifiers."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rapport.identity.normalise import normalise_contact_value
from rapport.privacy import suppression
from rapport.privacy.models import SuppressionEntry
from rapport.privacy.suppression import Suppressed, ensure_not_suppressed, import_list, suppress

pytestmark = pytest.mark.django_db

RAW = {"email": ["J.Smith+news@Gmail.com", "ann@example.org", "Bob@Example.COM"],
       "phone": ["+44 20 7946 0018", "+1 (415) 555-0100", "+447911123456"]}


@pytest.mark.parametrize("kind", ["email", "phone"])
def test_normalised_values_give_the_digests_of_their_raw_form(kind):
    # given: values as the people services store them (normalised once, with the person's region)
    for raw in RAW[kind]:
        stored = normalise_contact_value(kind, raw, region="GB").normalised
        # then: the check may skip parsing them again, it looks up the same digests
        assert suppression._stored_digests(kind, stored) == suppression.identifier_digests(kind, raw)


def test_a_suppressed_identifier_is_refused_with_the_first_given_value_named():
    # given
    suppress(emails=["jsmith@gmail.com"], phones=["+447911123456"])
    # when / then: another layout of the same mailbox, raw or normalised
    for normalised in (False, True):
        values = ["jsmith@gmail.com"] if normalised else ["J.Smith+x@googlemail.com"]
        with pytest.raises(Suppressed) as err:
            ensure_not_suppressed(emails=["free@example.com", *values], phones=["+447911123456"],
                                  normalised=normalised)
        assert err.value.field_errors == {"emails": [str(err.value)]}
        assert values[0] in str(err.value) and "suppression list" in str(err.value)
    with pytest.raises(Suppressed) as err:
        ensure_not_suppressed(emails=["free@example.com"], phones=["07911 123456", "+442079460018"])
    assert list(err.value.field_errors) == ["phones"] and "07911 123456" in str(err.value)
    ensure_not_suppressed(emails=["free@example.com"], phones=["+442079460018"])  # nothing suppressed


def test_external_lists_never_block_a_create():
    import datetime as dt

    import_list(name="TPS", kind="tps", screened_on=dt.date.today(), values=["+447911123456"])
    import_list(name="Mail", kind="email_dnc", screened_on=dt.date.today(), values=["ann@example.org"])
    assert SuppressionEntry.objects.filter(source="list").count() == 2
    ensure_not_suppressed(emails=["ann@example.org"], phones=["+447911123456"])


def test_one_query_per_check_prepared_or_not():
    suppress(phones=["+447911123456"])
    many = [f"+4479111{n:05d}" for n in range(40)]  # more digests than are prepared
    assert 2 * len(many) > suppression.PREPARED_DIGESTS
    for phones in (["+442079460018"], many, [*many, "+447911123456"], ["+447911123456"]):
        with CaptureQueriesContext(connection) as ctx:
            try:
                ensure_not_suppressed(phones=phones, normalised=True)
                refused = False
            except Suppressed:
                refused = True
        assert refused == ("+447911123456" in phones)
        assert len(ctx.captured_queries) == 1
        assert '"privacy_suppressionentry"' in ctx.captured_queries[0]["sql"]
    with CaptureQueriesContext(connection) as ctx:
        ensure_not_suppressed(emails=["", None], phones=[])  # type: ignore[list-item]
    assert ctx.captured_queries == []
