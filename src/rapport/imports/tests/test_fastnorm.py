"""I1 shortcuts of the import path give exactly what the identity normalisers give."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rapport.identity.normalise import InvalidIdentifier, normalise_email, normalise_phone
from rapport.imports.fastnorm import normalise_point, simple_email, simple_phone

ATOM = st.text(alphabet="abcXYZ019", min_size=1, max_size=70)
SEP = st.sampled_from([".", "_", "+", "-", "..", "@", " ", "é", '"', ""])
LABEL = st.text(alphabet="abcXYZ09-", min_size=1, max_size=70)
TLD = st.one_of(st.sampled_from(["com", "io", "CO", "test", "local", "localhost", "onion", "arpa", "invalid",
                                 "c0m", "x", "xn--p1ai", "museum", "a" * 64, "a" * 63]), LABEL)


@st.composite
def addresses(draw: st.DrawFn) -> str:
    local = draw(ATOM) + "".join(draw(st.lists(st.tuples(SEP, ATOM).map("".join), max_size=4)))
    domain = ".".join([*draw(st.lists(LABEL, min_size=0, max_size=4)), draw(TLD)])
    pad = draw(st.sampled_from(["", " ", "\t"]))
    return pad + local + draw(st.sampled_from(["@", "@@", ""])) + domain + pad


def _slow(value: str):
    try:
        return normalise_email(value)
    except InvalidIdentifier:
        return "invalid"


@settings(max_examples=3000, deadline=None)
@given(st.one_of(addresses(), st.text(max_size=80), st.emails().map(str)))
@example("P1.1@example.com")
@example("E1.1@EXAMPLE.COM")
@example("a@b.test")
@example("a@" + "b" * 64 + ".com")
@example("a" * 65 + "@b.com")
@example("a@" + ".".join(["b" * 63] * 4) + ".com")
def test_simple_email_is_normalise_email_whenever_it_answers(value):
    fast = simple_email(value)
    if fast is not None:
        assert fast == _slow(value)


def test_the_usual_addresses_take_the_shortcut():
    for value in ("ada@example.com", "Ada.Lovelace+crm@Mail.Example.co.uk", " x_y-z@a-b.io "):
        assert simple_email(value) == normalise_email(value)


@pytest.mark.parametrize(("value", "region"), [("07500 000123", "GB"), ("+44 7500 000123", None),
                                               ("020 7946 0018", "gb"), ("+1 202-555-0143", "US")])
def test_phones_and_other_kinds_as_the_normalisers(value, region):
    assert normalise_point("phone", value, region) == normalise_phone(value, region)
    assert normalise_point("phone", value, region) == normalise_phone(value, region)  # from the cache
    with pytest.raises(InvalidIdentifier):
        normalise_point("phone", "12", region)
    with pytest.raises(InvalidIdentifier):
        normalise_point("email", "not an address", region)
    assert normalise_point("email", "Zoë@Example.com") == normalise_email("Zoë@Example.com")


# ------------------------------------------------------------------------------- phones

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
TYPES = [t for t in vars(phonenumbers.PhoneNumberType).values() if isinstance(t, int)]
FORMATS = [phonenumbers.PhoneNumberFormat.NATIONAL, phonenumbers.PhoneNumberFormat.INTERNATIONAL,
           phonenumbers.PhoneNumberFormat.E164]


def _examples() -> list[str]:
    """Every example number of every region's metadata, in national, international and E.164 form."""
    found = set()
    for region in REGIONS:
        for kind in TYPES:
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                found.update(phonenumbers.format_number(number, f) for f in FORMATS)
    return sorted(found)


EXAMPLES = _examples()


@st.composite
def phone_texts(draw: st.DrawFn) -> str:
    """An example number from the metadata, its digits changed, cut or lengthened, its layout redone."""
    text = draw(st.sampled_from(EXAMPLES))
    chars = list(text)
    for _ in range(draw(st.integers(0, 3))):
        digits = [i for i, c in enumerate(chars) if c.isdigit()]
        if not digits:
            break
        i = draw(st.sampled_from(digits))
        action = draw(st.sampled_from(["change", "drop", "add", "separator"]))
        if action == "change":
            chars[i] = draw(st.sampled_from("0123456789"))
        elif action == "drop":
            del chars[i]
        elif action == "add":
            chars.insert(i, draw(st.sampled_from("0123456789")))
        else:
            chars.insert(i, draw(st.sampled_from([" ", "-", ".", "(", ")", "  ", "+", "/", "x"])))
    prefix = draw(st.sampled_from(["", "", "", "0", "00", "+", "(", " ", "011"]))
    return prefix + "".join(chars)


def _slow_phone(value: str, region: str):
    try:
        return normalise_phone(value, region)
    except InvalidIdentifier:
        return "invalid"


@settings(max_examples=4000, deadline=None)
@given(st.one_of(phone_texts(), st.text(alphabet="0123456789 +-().", max_size=24)),
       st.one_of(st.sampled_from(["GB", "US", "DE", "FR", "IE", "IT", "AR", "BR", "IN", "JE", "CA"]),
                 st.sampled_from(REGIONS)))
@example("07500 000123", "GB")
@example("+44 7500 000123", "GB")
@example("+44 (0)20 7946 0018", "GB")
@example("(202) 555-0143", "US")
@example("0044 7500 000123", "GB")
@example("447500000123", "GB")
@example("06 12 34 56 78", "IT")
@example("+39 06 1234 5678", "GB")
@example("+800 1234 5678", "GB")
def test_simple_phone_is_normalise_phone_whenever_it_answers(value, region):
    fast = simple_phone(value, region)
    if fast is not None:
        assert fast == _slow_phone(value, region)


def test_the_usual_phone_layouts_take_the_shortcut():
    for value, region in (("07500 000123", "GB"), ("+44 7500 000123", "GB"), ("020 7946 0018", "GB"),
                          ("+44 (0)20 7946 0018", "GB"), ("(202) 555-0143", "US"), ("+1 202-555-0143", "GB"),
                          ("030 1234567", "DE"), ("+33 1 23 45 67 89", "GB")):
        assert simple_phone(value, region) == normalise_phone(value, region)
    answered = sum(simple_phone(text, "GB") is not None for text in EXAMPLES if text.startswith("+"))
    valid = sum(_slow_phone(text, "GB") != "invalid" for text in EXAMPLES if text.startswith("+"))
    assert answered >= 0.8 * valid  # most of the metadata's own examples, in international form
