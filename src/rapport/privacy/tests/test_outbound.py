"""C4/C8 — the outbound module is the only way out, and it always asks the gate first."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.core import mail

from rapport.privacy import outbound
from rapport.privacy.gate import decisions_about
from rapport.privacy.models import SecurityNotice, Touch

SRC = Path(__file__).resolve().parents[2]  # src/rapport
OUTBOUND = SRC / "privacy" / "outbound.py"
# Modules and names that send something to a person.
SENDING_MODULES = ("smtplib", "twilio", "vonage", "nexmo", "messagebird", "plivo", "boto3", "sinch")
MAIL_NAMES = {"send_mail", "send_mass_mail", "mail_admins", "mail_managers", "EmailMessage",
              "EmailMultiAlternatives", "get_connection"}


def _senders_in(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name == "django.core.mail"
                      or a.name.split(".")[0] in SENDING_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("django.core.mail"):
                found += [f"{node.module}.{a.name}" for a in node.names]
            elif node.module == "django.core" and any(a.name == "mail" for a in node.names):
                found.append("django.core.mail")
            elif node.module.split(".")[0] in SENDING_MODULES:
                found.append(node.module)
        elif isinstance(node, ast.Attribute) and node.attr in MAIL_NAMES and isinstance(node.value, ast.Name) \
                and node.value.id == "mail":
            found.append(f"mail.{node.attr}")
    return found


def test_nothing_but_the_outbound_module_can_send():
    offenders = {}
    for path in SRC.rglob("*.py"):
        if path == OUTBOUND or "tests" in path.parts or "migrations" in path.parts:
            continue
        found = _senders_in(path)
        if found:
            offenders[str(path.relative_to(SRC))] = found
    assert offenders == {}, f"Send through rapport.privacy.outbound (the contact gate) instead: {offenders}"


def test_the_check_sees_each_way_of_importing_a_sender(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import smtplib\nfrom django.core.mail import send_mail\nfrom django.core import mail\n"
                      "from twilio.rest import Client\nmail.send_mail('s', 'b', 'f', ['t'])\n")
    assert _senders_in(sample) == ["smtplib", "django.core.mail.send_mail", "django.core.mail",
                                   "twilio.rest", "mail.send_mail"]
    assert _senders_in(OUTBOUND)  # the one module that may send does


@pytest.mark.django_db
def test_send_email_asks_the_gate_and_sends_only_when_allowed(make_person, grant, staff_user):
    person = make_person(emails=["ann@example.com"], country="GB")
    refused = outbound.send_email(person=person, purpose="newsletter", subject="Hi", body="News", actor=staff_user)
    assert not refused.sent and refused.decision.codes == ["no_consent"]
    assert mail.outbox == [] and not Touch.objects.exists()
    grant(person)
    sent = outbound.send_email(person=person, purpose="newsletter", subject="Hi", body="News", actor=staff_user)
    assert sent.sent and [m.to for m in mail.outbox] == [["ann@example.com"]]
    assert Touch.objects.get().purpose == "newsletter"
    assert len(decisions_about(person)) == 2  # both asks logged


@pytest.mark.django_db
def test_sms_and_calls_go_through_the_gate_to_the_configured_sender(make_person, staff_user):
    person = make_person(phones=["+1 415 555 2671"], country="US", timezone_name="UTC")
    refused = outbound.send_sms(person=person, purpose="offers", text="Sale!", actor=staff_user)
    assert not refused.sent and "no_consent" in refused.decision.codes  # TCPA: SMS needs opt-in
    result = outbound.send_sms(person=person, purpose="transactional", text="Your order shipped")
    assert result.sent and outbound.OUTBOX[-1]["to"] == "+14155552671"


@pytest.mark.django_db
def test_security_notice_skips_marketing_consent_but_not_erasure(make_person, staff_user):
    from rapport.privacy.erasure import erase_person

    told = make_person(emails=["told@example.com"], country="GB")  # no marketing consent at all
    erased = make_person(emails=["gone@example.com"])
    no_email = make_person(given_name="Nomail")
    erase_person(actor=staff_user, person=erased)
    notice = outbound.send_security_notice(people=[told.pk, erased.pk, no_email.pk], subject="Breach",
                                           body="We lost a laptop.", actor=staff_user)
    assert (notice.audience_size, notice.sent_count) == (3, 1)
    assert notice.skipped == {"erased": 1, "no_contact_point": 2}
    assert [m.to for m in mail.outbox] == [["told@example.com"]]
    assert SecurityNotice.objects.count() == 1
