"""I1 — the people services normalise contact points exactly as the identity normalisers do.

The services normalise through ``imports.fastnorm.normalise_point(..., cache_phones=False)``, which
answers plain addresses and usual phone layouts with the import path's shortcuts; whatever it
answers, or refuses, must be what ``normalise_contact_value`` gives: the same stored values, the
same error messages.
"""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rapport.identity import normalise as identity_normalise
from rapport.identity.normalise import InvalidIdentifier, normalise_contact_value
from rapport.imports.fastnorm import normalise_point
from rapport.people import services
from rapport.people.services import ContactPointInput

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
FORMATS = (phonenumbers.PhoneNumberFormat.NATIONAL, phonenumbers.PhoneNumberFormat.INTERNATIONAL,
           phonenumbers.PhoneNumberFormat.E164)
EXAMPLES = sorted({phonenumbers.format_number(number, layout)
                   for region in ("GB", "US", "DE", "FR", "IE", "IT", "AR", "BR", "IN", "JE", "CA", "AU")
                   for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE,
                                phonenumbers.PhoneNumberType.TOLL_FREE)
                   if (number := phonenumbers.example_number_for_type(region, kind)) is not None
                   for layout in FORMATS})


def normalise_point_value(kind: str, value: str, *, region: str | None):  # type: ignore[no-untyped-def]
    """What the people services call."""
    return normalise_point(kind, value, region, cache_phones=False)


def _outcome(function, kind: str, value: str, region: str | None):  # type: ignore[no-untyped-def]
    try:
        return function(kind, value, region=region)
    except InvalidIdentifier as err:
        return ("invalid", str(err))


@st.composite
def phone_texts(draw: st.DrawFn) -> str:
    """A real number's layout with a digit changed, dropped or added, or a prefix put in front."""
    chars = list(draw(st.sampled_from(EXAMPLES)))
    for _ in range(draw(st.integers(0, 2))):
        digits = [i for i, c in enumerate(chars) if c.isdigit()]
        i = draw(st.sampled_from(digits))
        action = draw(st.sampled_from(["change", "drop", "add", "separator"]))
        if action == "change":
            chars[i] = draw(st.sampled_from("0123456789"))
        elif action == "drop" and len(digits) > 1:
            del chars[i]
        elif action == "add":
            chars.insert(i, draw(st.sampled_from("0123456789")))
        else:
            chars.insert(i, draw(st.sampled_from([" ", "-", ".", "(", ")", "+", "x"])))
    return draw(st.sampled_from(["", "", "0", "00", "+", " "])) + "".join(chars)


ADDRESS_PART = st.text(alphabet="abcXYZ019._+-", min_size=1, max_size=20)


@settings(max_examples=1500, deadline=None)
@given(st.one_of(st.emails().map(str), st.tuples(ADDRESS_PART, ADDRESS_PART, st.sampled_from(
    ["com", "CO.uk", "test", "local", "x", "io"])).map(lambda t: f"{t[0]}@{t[1]}.{t[2]}"), st.text(max_size=40)))
@example("Ada.Lovelace+crm@Mail.Example.co.uk")
@example(" bench.0a1b2c@example.com ")
@example("a@b.test")
@example("Zoë@Example.com")
def test_emails_as_the_identity_normaliser(value):
    assert _outcome(normalise_point_value, "email", value, None) == _outcome(
        normalise_contact_value, "email", value, None)


@settings(max_examples=1500, deadline=None)
@given(st.one_of(phone_texts(), st.text(alphabet="0123456789 +-().", max_size=20)),
       st.one_of(st.none(), st.sampled_from(["GB", "gb", "US", "DE", "IT", "AR", "BR", "JE"]), st.sampled_from(REGIONS)))
@example("+44 7911 123456", "GB")
@example("07911 123456", None)
@example("+44 (0)20 7946 0018", "GB")
@example("0044 7500 000123", "GB")
@example("12", "GB")
def test_phones_as_the_identity_normaliser(value, region):
    assert _outcome(normalise_point_value, "phone", value, region) == _outcome(
        normalise_contact_value, "phone", value, region)


@pytest.mark.parametrize(("kind", "value"), [("url", "Example.com/A"), ("social", " @Ada "),
                                             ("address", "1 Main St\n\nLondon")])
def test_other_kinds_go_to_the_identity_normaliser(kind, value):
    assert normalise_point_value(kind, value, region="GB") == normalise_contact_value(kind, value, region="GB")


def test_a_create_takes_the_shortcuts_for_the_usual_values(monkeypatch):
    # given: the libraries' normalisers unavailable
    def refused(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the shortcut should have answered")

    monkeypatch.setattr(identity_normalise, "validate_email", refused)
    monkeypatch.setattr(identity_normalise.phonenumbers, "parse", refused)
    # when: the services normalise an API create's contact points
    points = services._normalise_contact_points(
        [ContactPointInput("email", "Bench.X1@Example.com"), ContactPointInput("phone", "+44 7911 123456")],
        region="GB")
    # then: the stored forms, without either library
    assert [(p.normalised, p.search_key) for p in points] == [
        ("bench.x1@example.com", "benchx1examplecom"), ("+447911123456", "7911123456")]
