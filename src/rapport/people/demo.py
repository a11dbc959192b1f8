"""O — deterministic demo data: people, organisations, employment histories and a timeline.

People and organisations go through the people services, so demo data obeys the same rules as
real data (normalisation, audit, validation). Interactions are bulk-inserted: there are ten
times as many and they carry no rules beyond the model's. The same seed gives the same data.
The demo users' password is generated per install and written to ``var/demo-credentials.txt``
(mode 600); it is never a committed constant.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from rapport.access.models import User
from rapport.identity.normalise import InvalidIdentifier, normalise_contact_value
from rapport.people.models import Interaction, Organisation, Person
from rapport.people.services import (
    ContactPointInput,
    employment_start,
    organisation_create,
    person_create,
)

Progress = Callable[[str, int, int], None]

COUNTRIES: dict[str, dict[str, Any]] = {
    "GB": {"locale": "en_GB", "language": "en-GB", "timezone": "Europe/London",
           "phones": ["020 7946 0{n3}", "+44 20 7946 0{n3}", "0161 496 0{n3}", "07700 900{n3}"]},
    "IE": {"locale": "en_IE", "language": "en-IE", "timezone": "Europe/Dublin",
           "phones": ["01 555 0{n3}", "+353 1 555 0{n3}", "087 555 0{n3}"]},
    "US": {"locale": "en_US", "language": "en-US", "timezone": "America/New_York",
           "phones": ["(201) 555-0{n3}", "+1 201-555-0{n3}", "212.555.0{n3}"]},
    "CA": {"locale": "en_CA", "language": "en-CA", "timezone": "America/Toronto",
           "phones": ["(416) 555-0{n3}", "+1 604 555 0{n3}"]},
    "DE": {"locale": "de_DE", "language": "de-DE", "timezone": "Europe/Berlin",
           "phones": ["030 12345{n3}", "+49 30 12345{n3}", "0151 2345{n3}"]},
    "FR": {"locale": "fr_FR", "language": "fr-FR", "timezone": "Europe/Paris",
           "phones": ["01 23 45 6{n1} {n2}", "+33 1 23 45 6{n1} {n2}", "06 12 34 5{n1} {n2}"]},
}
COUNTRY_WEIGHTS = {"GB": 40, "IE": 10, "US": 20, "CA": 8, "DE": 12, "FR": 10}

TAGS = ["vip", "press", "supplier", "volunteer", "donor", "newsletter"]
SECTORS = ["Logistics", "Media", "Foods", "Energy", "Health", "Software", "Retail", "Finance",
           "Publishing", "Engineering"]
TITLES = ["Director", "Buyer", "Editor", "Account Manager", "Engineer", "Analyst", "Head of Sales",
          "Office Manager", "Reporter", "Consultant", "Chief Executive", "Procurement Lead"]

# (channel, kind, direction, summaries)
INTERACTION_SHAPES: list[tuple[str, str, str, list[str]]] = [
    ("phone", "call", "inbound", ["Called about their order", "Asked for a callback", "Query about an invoice",
                                  "Rang to complain about a late delivery", "Thanked us for quick help"]),
    ("phone", "call", "outbound", ["Follow-up call after the meeting", "Left a voicemail",
                                   "Called to confirm the appointment"]),
    ("email", "email", "inbound", ["Asked for a quote", "Sent updated billing details", "Complained about billing",
                                   "Request to change delivery address", "Praised the support team"]),
    ("email", "email", "outbound", ["Sent the proposal", "Sent the monthly newsletter", "Replied with pricing"]),
    ("sms", "note", "outbound", ["Appointment reminder sent", "Delivery notification sent"]),
    ("meeting", "meeting", "internal", ["Quarterly review", "Introductory meeting", "Contract negotiation"]),
    ("post", "letter", "inbound", ["Letter of complaint received", "Signed contract returned by post",
                                   "Thank-you card received"]),
    ("post", "letter", "outbound", ["Renewal letter posted", "Welcome pack posted"]),
    ("web", "web_form", "inbound", ["Contact form: product question", "Contact form: partnership enquiry"]),
    ("web", "competition_entry", "inbound", ["Entered the summer competition"]),
    ("web", "survey", "inbound", ["Completed the satisfaction survey"]),
    ("social", "social_message", "inbound", ["Mentioned us on social media", "Direct message about opening hours"]),
    ("in_person", "purchase", "inbound", ["Bought at the front desk", "Visited the showroom"]),
    ("in_person", "coupon", "inbound", ["Redeemed a discount coupon"]),
    ("press", "note", "inbound", ["Quoted in a newspaper article", "Letter published in the local paper"]),
    ("internal", "note", "internal", ["Account handed over to a new owner", "Internal note: prefers email"]),
]


@dataclass
class DemoResult:
    people: int = 0
    organisations: int = 0
    employments: int = 0
    interactions: int = 0
    users: dict[str, str] = field(default_factory=dict)
    password: str = ""
    credentials_file: Path | None = None


def generate(*, seed: int = 1, people: int = 1000, organisations: int = 200,
             interactions_per_person: int = 11, progress: Progress | None = None,
             credentials_file: Path | None = None) -> DemoResult:
    """Create demo users, organisations, people, jobs and interactions; return what was made."""
    from faker import Faker

    rng = random.Random(seed)
    fakers = {code: Faker(spec["locale"]) for code, spec in COUNTRIES.items()}
    for i, fake in enumerate(fakers.values()):
        fake.seed_instance(seed * 100 + i)
    report = progress or (lambda stage, done, total: None)
    result = DemoResult()

    admin = _demo_users(result, credentials_file)
    staff = list(User.objects.filter(username__in=["sam", "fran"]))
    now = timezone.now()

    orgs: list[Organisation] = []
    for i in range(organisations):
        fake = fakers[rng.choice(list(COUNTRIES))]
        parent = orgs[rng.randrange(len(orgs))] if orgs and i % 4 == 3 else None
        base = fake.last_name()
        name = f"{base} {rng.choice(SECTORS)}" + (" (subsidiary)" if parent else "")
        domain = f"{_slug(base)}-{i}.example"
        orgs.append(organisation_create(actor=admin, name=name, domain=domain, parent=parent,
                                        tags=["supplier"] if i % 10 == 0 else ()))
        report("organisations", i + 1, organisations)
    result.organisations = len(orgs)

    codes = list(COUNTRY_WEIGHTS)
    weights = list(COUNTRY_WEIGHTS.values())
    created: list[Person] = []
    for i in range(people):
        code = rng.choices(codes, weights)[0]
        spec = COUNTRIES[code]
        fake = fakers[code]
        given, family = fake.first_name(), fake.last_name()
        created.append(person_create(
            actor=admin, given_name=given, family_name=family,
            preferred_name=given[:3] if i % 17 == 0 else "",
            language=spec["language"], timezone_name=spec["timezone"], country=code,
            tags=[TAGS[i % len(TAGS)]] if i % 5 == 0 else (),
            owner=staff[i % len(staff)] if staff else admin,
            contact_points=_contact_points(rng, fake, code, given, family, i),
            channel="import",
        ))
        report("people", i + 1, people)
    result.people = len(created)

    for i, person in enumerate(created):
        if not orgs or i % 3 == 2:
            continue
        first = orgs[rng.randrange(len(orgs))]
        start = (now - dt.timedelta(days=rng.randint(400, 3000))).date()
        employment_start(actor=admin, person=person, organisation=first, title=rng.choice(TITLES),
                         start_date=start, channel="import")
        result.employments += 1
        if i % 4 == 0:  # changed company: the old job ends, the new one is current
            second = orgs[rng.randrange(len(orgs))]
            if second.pk != first.pk:
                moved = start + dt.timedelta(days=rng.randint(100, 380))
                employment_start(actor=admin, person=person, organisation=second,
                                 title=rng.choice(TITLES), start_date=moved, channel="import")
                result.employments += 1
        report("employment", i + 1, len(created))

    result.interactions = _interactions(rng, created, orgs, [admin, *staff], now,
                                        interactions_per_person, report)
    return result


def _demo_users(result: DemoResult, credentials_file: Path | None) -> User:
    path = credentials_file or Path(settings.VAR_DIR) / "demo-credentials.txt"
    password = secrets.token_urlsafe(12)
    specs = [("admin", True, "Ada", "Administrator"), ("sam", False, "Sam", "Sales"),
             ("fran", False, "Fran", "Front Desk")]
    admin: User | None = None
    with transaction.atomic():
        for username, is_admin, first, last in specs:
            user, _ = User.objects.get_or_create(
                username=username,
                defaults={"first_name": first, "last_name": last, "email": f"{username}@rapport.example",
                          "is_staff": is_admin, "is_superuser": is_admin})
            user.set_password(password)
            user.save()
            result.users[username] = "Administrator" if is_admin else "Staff"
            admin = user if is_admin else admin
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("".join(f"{name} {password}\n" for name in result.users))
    os.chmod(path, 0o600)
    result.password, result.credentials_file = password, path
    assert admin is not None
    return admin


def _contact_points(rng: random.Random, fake: Any, code: str, given: str, family: str,
                    i: int) -> list[ContactPointInput]:
    local = f"{_slug(given)}.{_slug(family)}{i}"
    points = [ContactPointInput(kind="email", value=f"{local}@{rng.choice(['example.com', 'example.org', 'mail.example'])}",
                                label="home", source="demo", verified=i % 3 == 0, primary=True)]
    if i % 2 == 0:
        points.append(ContactPointInput(kind="email", value=f"{local}@work.example", label="work", source="demo"))
    for label, primary in (("mobile", True), ("work", False))[: 1 + i % 2]:
        phone = _phone(rng, code, i)
        if phone:
            points.append(ContactPointInput(kind="phone", value=phone, label=label, source="demo",
                                            primary=primary))
    address = fake.address().replace("\n", ", ")
    points.append(ContactPointInput(kind="address", value=address, label="home", source="demo"))
    if i % 4 == 0:
        points.append(ContactPointInput(kind="social", value=f"@{local[:20]}", label="social", source="demo"))
    return points


def _phone(rng: random.Random, code: str, i: int) -> str | None:
    """A plausible phone number typed in one of the country's usual formats (None if invalid)."""
    template = rng.choice(COUNTRIES[code]["phones"])
    value = template.format(n3=f"{rng.randrange(1000):03d}", n1=rng.randrange(10), n2=f"{rng.randrange(100):02d}")
    try:
        normalise_contact_value("phone", value, region=code)
    except InvalidIdentifier:
        return None
    return value


def _interactions(rng: random.Random, people: list[Person], orgs: list[Organisation], users: list[User],
                  now: dt.datetime, per_person: int, report: Progress) -> int:
    total = 0
    batch: list[Interaction] = []
    span = int(dt.timedelta(days=730).total_seconds())
    for i, person in enumerate(people):
        for _ in range(rng.randint(max(per_person - 4, 1), per_person + 4)):
            channel, kind, direction, summaries = rng.choice(INTERACTION_SHAPES)
            summary = rng.choice(summaries)
            sentiment = ("complaint" if "omplain" in summary else
                         "compliment" if any(w in summary for w in ("Thank", "Praised")) else
                         rng.choices(["neutral", "complaint", "compliment"], [90, 5, 5])[0])
            batch.append(Interaction(
                person=person, organisation=orgs[rng.randrange(len(orgs))] if orgs and rng.random() < 0.2 else None,
                channel=channel, kind=kind, direction=direction,
                occurred_at=now - dt.timedelta(seconds=rng.randrange(span)),
                summary=summary, body=f"{summary}. Demo record.", sentiment=sentiment,
                created_by=rng.choice(users),
            ))
        if len(batch) >= 2000 or i == len(people) - 1:
            Interaction.objects.bulk_create(batch, batch_size=500)
            total += len(batch)
            batch = []
        report("interactions", i + 1, len(people))
    return total


def _slug(text: str) -> str:
    import unicodedata

    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in ascii_text.lower() if ch.isalnum()) or "x"
