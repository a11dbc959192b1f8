"""I1 shortcuts of the import path give exactly what the identity normalisers give."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rapport.identity.normalise import InvalidIdentifier, normalise_email, normalise_phone
from rapport.imports.fastnorm import normalise_point, simple_email

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
