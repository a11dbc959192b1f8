"""I1–I3 benchmark data — synthetic people with known truth, for measuring identity resolution.

Why a generator of our own: FEBRL is small (1,000 / 5,000 records) and Australian-only; the
issue's goals are at 100,000 and 1,000,000 records. Each output row keeps the true entity id
(``entity_id``) so precision/recall over pairs can be computed (bench/identity.py).

Value pools come from Faker (several English-speaking locales, for realistic names, streets,
towns and postcodes); drawing from pools with one seeded ``random.Random`` keeps a million
rows fast and the file identical for the same ``--seed``.

Corruption of the duplicate records (rates per field, independent), as in real CRM exports:
typos (insert, delete, substitute, transpose one character), nicknames (Bob for Robert, from
``identity/data/nicknames.csv``), first/last names swapped, missing fields, moved addresses,
several emails per person (gmail dots, +tags, case) and phones in several formats. Households
share a surname, an address and often a landline, so different people look alike (the hard
non-matches); popular names make many more.

    .venv/bin/python bench/identity_data.py --size 100000 --seed 1 --out /tmp/people.csv
    .venv/bin/python bench/identity_data.py --size 20000 --no-national-id --out /tmp/p.csv
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
import string
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NICKNAMES = ROOT / "src" / "rapport" / "identity" / "data" / "nicknames.csv"
LOCALES = ("en_GB", "en_US", "en_IE", "en_AU", "en_CA", "en_NZ")
COLUMNS = ["id", "entity_id", "given_name", "family_name", "email", "phone", "house_number",
           "street", "locality", "postcode", "birth_date", "national_id"]
DOMAINS = ("gmail.com", "googlemail.com", "yahoo.co.uk", "hotmail.com", "outlook.com",
           "btinternet.com", "icloud.com", "proton.me", "example.org", "example.net")

# How many records an entity has (1 = no duplicate), and the chance a person lives in a
# household with others (same surname and address, different person).
RECORDS_PER_ENTITY = ((1, 0.55), (2, 0.27), (3, 0.12), (4, 0.06))
HOUSEHOLD_SHARE = 0.3

# Corruption rates of a duplicate record (the first record of an entity is left clean).
RATES = {
    "given_typo": 0.08, "family_typo": 0.08, "nickname": 0.10, "swap_names": 0.03,
    "given_missing": 0.02, "email_missing": 0.20, "phone_missing": 0.25, "birth_missing": 0.10,
    "birth_typo": 0.04, "address_missing": 0.10, "moved": 0.10, "street_typo": 0.05,
    "other_email": 0.25, "other_phone": 0.25, "nid_missing": 0.05, "nid_typo": 0.02,
}


@dataclass
class Pools:
    given: list[str]
    family: list[str]
    streets: list[str]
    towns: list[str]
    postcodes: list[str]
    nicknames: dict[str, list[str]] = field(default_factory=dict)  # canonical → nicknames
    # Leading digits of valid UK mobile and landline numbers (the rest is random).
    mobile_prefixes: list[str] = field(default_factory=list)
    landline_prefixes: list[str] = field(default_factory=list)


@dataclass
class Entity:
    entity_id: int
    given: str
    family: str
    birth: dt.date
    emails: list[str]
    phones: list[str]
    address: tuple[str, str, str, str]  # house number, street, town, postcode
    national_id: str


def build_pools(seed: int) -> Pools:
    """Distinct names and places from Faker, sampled once (Faker is too slow per row)."""
    from faker import Faker

    fake = Faker(list(LOCALES))
    fake.seed_instance(seed)
    given: set[str] = set()
    family: set[str] = set()
    for locale in LOCALES:
        provider = fake[locale]
        for _ in range(3000):
            given.add(provider.first_name())
            family.add(provider.last_name())
    gb = fake["en_GB"]
    streets = sorted({gb.street_name() for _ in range(20000)})
    towns = sorted({gb.city() for _ in range(5000)})
    postcodes = sorted({gb.postcode() for _ in range(60000)})
    nicknames: dict[str, list[str]] = defaultdict(list)
    with NICKNAMES.open(encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("#") or line.startswith("nickname,"):
                continue
            nick, _, canonical = line.strip().partition(",")
            if nick and canonical:
                nicknames[canonical].append(nick)
    rng = random.Random(seed)
    return Pools(sorted(given), sorted(family), streets, towns, postcodes, dict(nicknames),
                 _valid_prefixes(rng, "07"), _valid_prefixes(rng, "01"))


def _valid_prefixes(rng: random.Random, start: str, wanted: int = 300) -> list[str]:
    """Five-digit prefixes whose numbers phonenumbers takes as valid UK numbers, so that the
    people services (which refuse invalid numbers) would store every generated phone."""
    import phonenumbers

    found: set[str] = set()
    for _ in range(20_000):
        prefix = start + "".join(rng.choice(string.digits) for _ in range(3))
        samples = [prefix + "".join(rng.choice(string.digits) for _ in range(6)) for _ in range(3)]
        if all(phonenumbers.is_valid_number(phonenumbers.parse(n, "GB")) for n in samples):
            found.add(prefix)
            if len(found) >= wanted:
                break
    return sorted(found)


class Popular:
    """Draws popular values far more often than rare ones (name frequencies are long-tailed):
    the value of rank r (in a seeded shuffle of the pool) has weight 1 / (r + 10), so the most
    common surname is about 2% of people, like Smith in the UK."""

    def __init__(self, pool: list[str], rng: random.Random) -> None:
        self.pool = list(pool)
        rng.shuffle(self.pool)
        total, self.cum = 0.0, []
        for rank in range(len(self.pool)):
            total += 1.0 / (rank + 10)
            self.cum.append(total)

    def __call__(self, rng: random.Random) -> str:
        return rng.choices(self.pool, cum_weights=self.cum)[0]


def _phone(rng: random.Random, prefixes: list[str], taken: set[str]) -> str:
    """A number nobody else has (a household's shared landline is handed on explicitly)."""
    while True:
        number = rng.choice(prefixes) + "".join(rng.choice(string.digits) for _ in range(6))
        if number not in taken:
            taken.add(number)
            return number


def _email(rng: random.Random, given: str, family: str, taken: set[str]) -> str:
    """An address built from the name, as people choose them, but a mailbox nobody else has:
    two people called Saul Cashman do not share one (a number is added, as providers make
    people do)."""
    g, f = _ascii(given), _ascii(family)
    local = rng.choice([f"{g}.{f}", f"{g}{f}", f"{g[:1]}.{f}", f"{f}.{g}", f"{g}_{f}",
                        f"{g}{f}{rng.randrange(1, 99)}", f"{g[:1]}{f}{rng.randrange(1, 999)}"])
    domain = rng.choice(DOMAINS)
    while True:
        mailbox = local.replace(".", "").replace("_", "") + "@" + (
            "gmail.com" if domain == "googlemail.com" else domain)
        if mailbox not in taken:
            taken.add(mailbox)
            return f"{local}@{domain}"
        local = f"{local}{rng.randrange(1, 10)}"


def _ascii(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch in string.ascii_lowercase) or "x"


def make_entities(size: int, seed: int, pools: Pools) -> list[tuple[Entity, int]]:
    """Entities with their record counts, adding up to ``size`` records."""
    rng = random.Random(seed)
    counts, weights = zip(*RECORDS_PER_ENTITY, strict=True)
    out: list[tuple[Entity, int]] = []
    total = 0
    household: Entity | None = None
    household_left = 0
    given_names, family_names = Popular(pools.given, rng), Popular(pools.family, rng)
    taken_emails: set[str] = set()
    taken_phones: set[str] = set()
    while total < size:
        count = min(rng.choices(counts, weights)[0], size - total)
        given = given_names(rng)
        birth = dt.date(1930, 1, 1) + dt.timedelta(days=rng.randrange(80 * 365))
        if household_left > 0 and household is not None:
            family, address = household.family, household.address
            landline = household.phones[-1]
            household_left -= 1
        else:
            family = family_names(rng)
            address = (str(rng.randrange(1, 300)), rng.choice(pools.streets),
                       rng.choice(pools.towns), rng.choice(pools.postcodes))
            landline = _phone(rng, pools.landline_prefixes, taken_phones)
        emails = [_email(rng, given, family, taken_emails)]
        if rng.random() < 0.4:
            emails.append(_email(rng, given, family, taken_emails))
        phones = [_phone(rng, pools.mobile_prefixes, taken_phones)]
        if rng.random() < 0.4:
            phones.append(landline)
        national_id = "".join(rng.choice(string.ascii_uppercase) for _ in range(2)) + \
            "".join(rng.choice(string.digits) for _ in range(6)) + rng.choice("ABCD")
        entity = Entity(len(out) + 1, given, family, birth, emails, phones, address, national_id)
        if household_left == 0 and rng.random() < HOUSEHOLD_SHARE:
            household, household_left = entity, rng.choice((1, 1, 2, 3))
            entity.phones.append(landline)
        out.append((entity, count))
        total += count
    return out


def _typo(rng: random.Random, text: str) -> str:
    if len(text) < 2:
        return text
    i = rng.randrange(len(text))
    letter = rng.choice(string.ascii_lowercase)
    kind = rng.randrange(4)
    if kind == 0:
        return text[:i] + letter + text[i:]
    if kind == 1:
        return text[:i] + text[i + 1:]
    if kind == 2:
        return text[:i] + letter + text[i + 1:]
    i = min(i, len(text) - 2)
    return text[:i] + text[i + 1] + text[i] + text[i + 2:]


def _email_variant(rng: random.Random, email: str) -> str:
    local, _, domain = email.partition("@")
    roll = rng.random()
    if domain in ("gmail.com", "googlemail.com") and roll < 0.3:
        local = local.replace(".", "") if "." in local else local[:2] + "." + local[2:]
    elif roll < 0.45:
        local = f"{local}+{rng.choice(['crm', 'news', 'shop'])}" if domain.startswith("gmail") else local
    elif roll < 0.6:
        return email.upper() if rng.random() < 0.5 else email.title()
    return f"{local}@{domain}"


def _phone_format(rng: random.Random, phone: str) -> str:
    national = phone[1:]
    return rng.choice([phone, f"{phone[:5]} {phone[5:]}", f"+44 {national[:4]} {national[4:]}",
                       f"0044{national}", f"({phone[:5]}) {phone[5:8]} {phone[8:]}",
                       f"+44{national}"])


def _birth(rng: random.Random, birth: dt.date) -> str:
    text = birth.isoformat()
    if rng.random() < RATES["birth_typo"]:
        if birth.day <= 12 and rng.random() < 0.5:
            text = f"{birth.year:04d}-{birth.day:02d}-{birth.month:02d}"
        else:
            digits = list(text)
            position = rng.choice([2, 3, 5, 6, 8, 9])
            digits[position] = rng.choice(string.digits)
            candidate = "".join(digits)
            try:
                dt.date.fromisoformat(candidate)
                text = candidate
            except ValueError:
                pass
    return text.replace("-", "") if rng.random() < 0.3 else text


def records_for(rng: random.Random, entity: Entity, count: int, pools: Pools,
                national_id: bool) -> list[dict[str, str]]:
    rows = []
    for n in range(count):
        clean = n == 0

        def r(key: str, clean: bool = clean) -> bool:
            return not clean and rng.random() < RATES[key]

        given, family = entity.given, entity.family
        if r("nickname") and given.lower() in pools.nicknames:
            given = rng.choice(pools.nicknames[given.lower()]).title()
        if r("given_typo"):
            given = _typo(rng, given)
        if r("family_typo"):
            family = _typo(rng, family)
        if r("swap_names"):
            given, family = family, given
        if r("given_missing"):
            given = ""
        emails = entity.emails if clean or not r("other_email") else entity.emails[::-1]
        email = "" if r("email_missing") else (_email_variant(rng, emails[0]) if not clean else emails[0])
        phones = entity.phones if clean or not r("other_phone") else entity.phones[::-1]
        phone = "" if r("phone_missing") else _phone_format(rng, phones[0])
        house, street, town, postcode = entity.address
        if r("moved"):
            house, street = str(rng.randrange(1, 300)), rng.choice(pools.streets)
            town, postcode = rng.choice(pools.towns), rng.choice(pools.postcodes)
        if r("street_typo"):
            street = _typo(rng, street)
        if r("address_missing"):
            house = street = town = postcode = ""
        nid = entity.national_id if national_id else ""
        if nid and r("nid_missing"):
            nid = ""
        elif nid and r("nid_typo"):
            nid = _typo(rng, nid)
        rows.append({"entity_id": str(entity.entity_id), "given_name": given,
                     "family_name": family, "email": email, "phone": phone,
                     "house_number": house, "street": street, "locality": town,
                     "postcode": postcode, "birth_date": "" if r("birth_missing") else _birth(rng, entity.birth),
                     "national_id": nid})
    return rows


def generate(size: int, *, seed: int = 1, national_id: bool = True) -> list[dict[str, str]]:
    """``size`` rows (shuffled, ids 1..size) with the true ``entity_id`` of each."""
    pools = build_pools(seed)
    rng = random.Random(seed * 7919 + 1)
    rows: list[dict[str, str]] = []
    for entity, count in make_entities(size, seed, pools):
        rows.extend(records_for(rng, entity, count, pools, national_id))
    rng.shuffle(rows)
    for number, row in enumerate(rows, start=1):
        row["id"] = str(number)
    return rows


def write_csv(rows: list[dict[str, str]], path: Path, *, national_id: bool = True) -> Path:
    columns = COLUMNS if national_id else [c for c in COLUMNS if c != "national_id"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-national-id", action="store_true", help="leave the national_id column out")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rows = generate(args.size, seed=args.seed, national_id=not args.no_national_id)
    write_csv(rows, args.out, national_id=not args.no_national_id)
    entities = len({row["entity_id"] for row in rows})
    print(f"{len(rows)} records of {entities} people → {args.out}")


if __name__ == "__main__":
    main()
