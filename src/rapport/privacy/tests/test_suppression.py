"""I5 — external do-not-contact lists (plain or hashed, with the date screened) and the 28-day rule
for telephone marketing; imported through the CLI, the staff page and the API."""

from __future__ import annotations

import datetime as dt
import hashlib
from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.utils import timezone

from rapport.core.errors import DomainError
from rapport.privacy import gate
from rapport.privacy.models import SuppressionEntry, SuppressionList
from rapport.privacy.suppression import import_list

pytestmark = pytest.mark.django_db

MOBILE = "+447911123456"


def _at_noon() -> dt.datetime:
    """Midday in London today: outside the default quiet hours."""
    import zoneinfo

    return timezone.now().astimezone(zoneinfo.ZoneInfo("Europe/London")).replace(hour=12, minute=0)


def _days_ago(days: int) -> dt.date:
    return timezone.localdate(_at_noon()) - dt.timedelta(days=days)


@pytest.fixture
def caller(make_person):
    """A UK person with a mobile number: live calls are opt-out there, so only the list decides."""
    return make_person(given_name="Cal", phones=["07911 123456"], emails=["cal@example.com"], country="GB",
                       timezone_name="Europe/London")


def _phone_codes(person) -> list[str]:
    at = _at_noon()
    single = gate.decide(person, "phone", "sales_outreach", at=at)
    batch = gate.decide_batch([person.pk], "phone", "sales_outreach", at=at)[person.pk]
    assert single == batch  # the batch form gives the same answer
    return single.codes


def test_phone_marketing_needs_a_screening_of_28_days_or_less(caller):
    # never screened: refused
    assert _phone_codes(caller) == ["dnc_list"]
    # screened 29 days ago: still refused, and the reason says why
    import_list(name="TPS November", kind="tps", screened_on=_days_ago(29), values=["+441234567890"])
    reason = gate.decide(caller, "phone", "sales_outreach", at=_at_noon()).reasons[0]
    assert reason.code == "dnc_list" and "28 days" in reason.message
    # screened 28 days ago: allowed (not on the list)
    import_list(name="TPS", kind="tps", screened_on=_days_ago(28), values=["+441234567890"])
    assert _phone_codes(caller) == []
    # service messages are not marketing: no screening needed
    SuppressionList.objects.all().delete()
    assert gate.decide(caller, "phone", "transactional", at=_at_noon()).allowed


def test_each_national_list_covers_its_own_countries(caller, make_person):
    # given: a UK, a US, a Canadian and an Australian person (no national list rule there)
    import zoneinfo

    at = timezone.now().astimezone(zoneinfo.ZoneInfo("America/New_York")).replace(hour=12, minute=0)
    us = make_person(given_name="Sam", phones=["+12125550123"], country="US", timezone_name="America/New_York")
    ca = make_person(given_name="Cat", phones=["+14165550123"], country="CA", timezone_name="America/Toronto")
    au = make_person(given_name="Aud", phones=["+61412345678"], country="AU", timezone_name="America/New_York")
    people = {"GB": caller, "US": us, "CA": ca, "AU": au}

    def refused() -> dict[str, str]:
        batch = gate.decide_batch([p.pk for p in people.values()], "phone", "sales_outreach", at=at)
        answers = {}
        for country, person in people.items():
            single = gate.decide(person, "phone", "sales_outreach", at=at)
            assert batch[person.pk] == single  # the batch form gives the same answer
            answers[country] = " ".join(r.message for r in single.reasons if r.code == "dnc_list")
        return answers

    # when: nothing screened, then only the UK's TPS recently, and the US list too long ago
    never = refused()
    import_list(name="TPS", kind="tps", screened_on=timezone.localdate(at) - dt.timedelta(days=3), values=[])
    import_list(name="US DNC", kind="us_dnc", screened_on=timezone.localdate(at) - dt.timedelta(days=32),
                values=[])
    import_list(name="Other", kind="phone_dnc", screened_on=timezone.localdate(at), values=[])
    some = refused()
    # then: each country follows its own list; Australia has no screening rule (its calls need
    # express consent there, which the person has not given)
    assert "TPS" in never["GB"] and "National Do Not Call Registry" in never["US"] and "DNCL" in never["CA"]
    assert never["AU"] == ""
    assert some["GB"] == "" and "31 days" in some["US"] and "DNCL" in some["CA"] and some["AU"] == ""
    assert gate.decide(au, "phone", "sales_outreach", at=at).codes == ["no_consent"]
    # when: the US list is screened again and the Canadian list imported
    import_list(name="US DNC", kind="us_dnc", screened_on=timezone.localdate(at) - dt.timedelta(days=31),
                values=[])
    import_list(name="DNCL", kind="ca_dncl", screened_on=timezone.localdate(at), values=["+14165550123"])
    last = refused()
    # then: the US is fresh (31 days is allowed); the Canadian number is on its list
    assert last["US"] == "" and last["GB"] == ""
    assert "external do-not-contact list" in last["CA"]


def test_the_batch_hmac_equals_the_single_one():
    from rapport.privacy import suppression

    forms = ["ann@example.com", "", "bob+x@gmail.com", "ünï@example.com", "+447911123456"]
    assert suppression.keyed_digests([f.encode() for f in forms]) == [suppression.keyed_digest(f) for f in forms]


def test_a_number_on_the_list_is_refused_plain_or_hashed(caller, make_person):
    import_list(name="TPS", kind="tps", screened_on=_days_ago(1), values=["07911 123456"])
    assert _phone_codes(caller) == ["dnc_list"]
    assert not SuppressionEntry.objects.filter(digest__contains="7911").exists()  # stored only as a hash
    # it does not stop storing the person, nor other channels
    assert gate.decide(caller, "post", "newsletter", at=_at_noon()).codes == ["no_contact_point"]
    # a pre-hashed list (SHA-256 of the E.164 number) matches too
    other = make_person(given_name="Hash", phones=["+44 7911 123457"], country="GB")
    import_list(name="CTPS hashed", kind="ctps", screened_on=_days_ago(1), hashed=True,
                values=[hashlib.sha256(b"+447911123457").hexdigest().upper()])
    assert _phone_codes(other) == ["dnc_list"]


def test_email_and_mail_preference_lists_block_their_channel(make_person, grant):
    person = make_person(given_name="Em", emails=["Em.Smith@Example.com"], country="GB")
    grant(person, purpose="newsletter", channel="email")
    from rapport.people.services import ContactPointInput, contact_point_add

    contact_point_add(actor=None, person=person, data=ContactPointInput(kind="address", value="1 High St\nLeeds"))
    assert gate.decide(person, "email", "newsletter").allowed
    import_list(name="Email DNC", kind="email_dnc", screened_on=_days_ago(3), values=["em.smith@example.com"])
    assert gate.decide(person, "email", "newsletter").codes == ["dnc_list"]
    assert gate.decide(person, "post", "newsletter").allowed
    import_list(name="MPS", kind="mps", screened_on=_days_ago(3), values=["1 High St\nLeeds"])
    assert gate.decide(person, "post", "newsletter").codes == ["dnc_list"]


@pytest.mark.parametrize("kwargs, field", [
    ({"kind": "fax_dnc"}, "kind"),
    ({"name": "  "}, "name"),
    ({"screened_on": dt.date.today() + dt.timedelta(days=1)}, "screened_on"),
    ({"hashed": True, "values": ["not-a-digest", "abc"]}, "values"),
])
def test_bad_lists_are_refused_whole(kwargs, field):
    values = {"name": "TPS", "kind": "tps", "screened_on": _days_ago(1), "values": ["+441234567890"], **kwargs}
    with pytest.raises(DomainError) as refused:
        import_list(**values)
    assert field in refused.value.field_errors
    assert not SuppressionList.objects.exists() and not SuppressionEntry.objects.exists()


# ------------------------------------------------------------------------------ adapters


def test_import_list_cli(caller, tmp_path):
    path = tmp_path / "tps.csv"
    path.write_text("# TPS extract\n07911 123456,2026-11-30\n+44 20 7946 0000\n\n")
    out = StringIO()
    call_command("privacy", "import-list", str(path), "--name", "TPS Dec", "--kind", "tps",
                 "--screened", str(_days_ago(2)), stdout=out)
    assert "Imported 2 entries" in out.getvalue()
    assert _phone_codes(caller) == ["dnc_list"]
    with pytest.raises(CommandError, match="No such file"):
        call_command("privacy", "import-list", str(tmp_path / "missing.txt"), "--name", "X", "--kind", "tps",
                     "--screened", "2026-01-01")
    with pytest.raises(CommandError, match="Not a date"):
        call_command("privacy", "import-list", str(path), "--name", "X", "--kind", "tps", "--screened", "yesterday")
    with pytest.raises(CommandError, match="future"):
        call_command("privacy", "import-list", str(path), "--name", "X", "--kind", "tps",
                     "--screened", str(dt.date.today() + dt.timedelta(days=5)))
    with pytest.raises(CommandError):
        call_command("privacy", "import-list", str(path), "--name", "X", "--kind", "fax", "--screened", "2026-01-01")


def test_suppression_page_imports_a_file_and_warns_when_stale(officer_client, caller):
    page = officer_client.get("/privacy/suppression/").content.decode()
    assert "never been screened" in page
    upload = SimpleUploadedFile("tps.csv", b"07911 123456\n+44 20 7946 0001\n")
    response = officer_client.post("/privacy/suppression/", {
        "form": "import", "name": "TPS upload", "kind": "tps", "screened_on": str(_days_ago(30)), "file": upload})
    assert response.status_code == 302
    page = officer_client.get("/privacy/suppression/").content.decode()
    assert "TPS upload" in page and "30 days ago (more than 28)" in page
    fresh = officer_client.post("/privacy/suppression/", {
        "form": "import", "name": "TPS pasted", "kind": "tps", "screened_on": str(_days_ago(0)),
        "values": "+44 20 7946 0002"})
    assert fresh.status_code == 302
    assert "more than 28" not in officer_client.get("/privacy/suppression/").content.decode()
    assert _phone_codes(caller) == ["dnc_list"]  # the uploaded list holds their number
    # bad input: form errors, nothing imported
    empty = officer_client.post("/privacy/suppression/", {"form": "import", "name": "X", "kind": "tps",
                                                         "screened_on": str(_days_ago(0))})
    assert empty.status_code == 400 and "Paste the identifiers or choose a file" in empty.content.decode()
    hashed = officer_client.post("/privacy/suppression/", {"form": "import", "name": "X", "kind": "tps",
                                                          "screened_on": str(_days_ago(0)), "hashed": "on",
                                                          "values": "nope"})
    assert hashed.status_code == 400 and "not a SHA-256 hex digest" in hashed.content.decode()
    assert SuppressionList.objects.count() == 2


def test_suppression_page_needs_the_manage_permission(client, staff_user):
    client.force_login(staff_user)
    refused = client.post("/privacy/suppression/", {"form": "manual", "kind": "email", "value": "x@example.com"})
    assert refused.status_code == 403 and not SuppressionEntry.objects.exists()


def test_suppression_list_api(officer_api, caller):
    created = officer_api.post("/api/v1/privacy/suppression-lists/", {
        "name": "TPS API", "kind": "tps", "screened_on": str(_days_ago(5)), "values": ["07911 123456"]},
        format="json")
    assert created.status_code == 201 and created.json()["entry_count"] == 1
    assert _phone_codes(caller) == ["dnc_list"]
    listed = officer_api.get("/api/v1/privacy/suppression-lists/").json()
    assert [entry["name"] for entry in listed] == ["TPS API"]
    overview = officer_api.get("/api/v1/privacy/suppressions/").json()
    assert overview["phone_screening_age_days"] == 5
    bad = officer_api.post("/api/v1/privacy/suppression-lists/", {
        "name": "X", "kind": "tps", "screened_on": str(dt.date.today() + dt.timedelta(days=1)), "values": ["1"]},
        format="json")
    assert bad.status_code == 400 and "screened_on" in bad.json()["errors"]
    missing = officer_api.post("/api/v1/privacy/suppression-lists/", {"kind": "tps"}, format="json")
    assert missing.status_code == 400 and {"name", "screened_on", "values"} <= set(missing.json()["errors"])


def test_manual_suppression_api_and_check(officer_api):
    added = officer_api.post("/api/v1/privacy/suppressions/", {"emails": ["No.More@gmail.com"]}, format="json")
    assert added.status_code == 201 and added.json()["added"] == 2  # as typed and as Gmail delivers it
    check = officer_api.post("/api/v1/privacy/suppressions/check/", {"emails": ["nomore+x@gmail.com"]},
                             format="json")
    assert check.status_code == 409 and "emails" in check.json()["errors"]
    clean = officer_api.post("/api/v1/privacy/suppressions/check/", {"emails": ["fine@example.com"]},
                             format="json")
    assert clean.status_code == 200 and clean.json() == {"suppressed": False}
