"""C2 — which marketing rules apply, chosen by the person's country. Data, not code paths.

Each ``Regime`` says, per channel, whether marketing is opt-in (a valid consent of an accepted
kind is required) or opt-out (allowed until the person withdraws or objects). Each
``PhoneList`` is a national telephone preference / do-not-call list: the countries it covers,
the imported list kinds that count as a screening against it, and how recent that screening
must be for telephone marketing. The gate (``rapport.privacy.gate``) reads these tables;
``docs/privacy.md`` explains them.

Unknown or missing countries get the strictest regime (opt-in on every channel but post).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from rapport.privacy.models import Channel, ConsentBasis

OPT_IN = "opt_in"
OPT_OUT = "opt_out"

# Implied consent lapses (Canada's CASL s. 10(10)): months after the purchase / enquiry.
IMPLIED_CONSENT_MONTHS: dict[str, int] = {
    ConsentBasis.IMPLIED_PURCHASE: 24,
    ConsentBasis.IMPLIED_ENQUIRY: 6,
}


@dataclass(frozen=True)
class ChannelRule:
    mode: str  # OPT_IN or OPT_OUT
    accepted: frozenset[str] = frozenset()  # consent bases that satisfy an opt-in rule

    def accepts(self, basis: str) -> bool:
        return basis in self.accepted


@dataclass(frozen=True)
class Regime:
    key: str
    label: str
    law: str
    channels: dict[str, ChannelRule] = field(default_factory=dict)

    def rule(self, channel: str) -> ChannelRule:
        return self.channels[channel]


_EXPRESS = frozenset({ConsentBasis.CONSENT})
_WITH_SOFT = frozenset({ConsentBasis.CONSENT, ConsentBasis.SOFT_OPT_IN})
_CASL = frozenset({ConsentBasis.CONSENT, ConsentBasis.IMPLIED_PURCHASE, ConsentBasis.IMPLIED_ENQUIRY})
_OUT = ChannelRule(OPT_OUT)

REGIMES: dict[str, Regime] = {r.key: r for r in (
    Regime("uk", "United Kingdom", "UK GDPR + PECR", {
        Channel.EMAIL: ChannelRule(OPT_IN, _WITH_SOFT),
        Channel.SMS: ChannelRule(OPT_IN, _WITH_SOFT),
        Channel.PHONE: _OUT,   # live calls: allowed unless objected or TPS-registered
        Channel.POST: _OUT,
        Channel.SOCIAL: ChannelRule(OPT_IN, _EXPRESS),
    }),
    Regime("eu", "European Union / EEA", "GDPR + ePrivacy Directive", {
        Channel.EMAIL: ChannelRule(OPT_IN, _WITH_SOFT),
        Channel.SMS: ChannelRule(OPT_IN, _WITH_SOFT),
        Channel.PHONE: ChannelRule(OPT_IN, _EXPRESS),  # member states differ; the strict reading
        Channel.POST: _OUT,
        Channel.SOCIAL: ChannelRule(OPT_IN, _EXPRESS),
    }),
    Regime("us", "United States", "CAN-SPAM (email), TCPA (calls, SMS)", {
        Channel.EMAIL: _OUT,
        Channel.SMS: ChannelRule(OPT_IN, _EXPRESS),
        Channel.PHONE: _OUT,
        Channel.POST: _OUT,
        Channel.SOCIAL: ChannelRule(OPT_IN, _EXPRESS),
    }),
    Regime("ca", "Canada", "CASL (electronic messages), CRTC Unsolicited Telecommunications Rules", {
        Channel.EMAIL: ChannelRule(OPT_IN, _CASL),
        Channel.SMS: ChannelRule(OPT_IN, _CASL),
        Channel.PHONE: _OUT,
        Channel.POST: _OUT,
        Channel.SOCIAL: ChannelRule(OPT_IN, _CASL),
    }),
    Regime("default", "Other countries", "Strictest reading: opt-in for every electronic channel", {
        Channel.EMAIL: ChannelRule(OPT_IN, _EXPRESS),
        Channel.SMS: ChannelRule(OPT_IN, _EXPRESS),
        Channel.PHONE: ChannelRule(OPT_IN, _EXPRESS),
        Channel.POST: _OUT,
        Channel.SOCIAL: ChannelRule(OPT_IN, _EXPRESS),
    }),
)}

EU_EEA = ("AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV",
          "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO")
COUNTRY_REGIME: dict[str, str] = {
    **dict.fromkeys(EU_EEA, "eu"),
    **dict.fromkeys(("GB", "GG", "JE", "IM"), "uk"),
    "US": "us",
    "CA": "ca",
}




@dataclass(frozen=True)
class PhoneList:
    """A national telephone preference / do-not-call list and the countries it covers."""

    key: str
    name: str
    # ``SuppressionList`` kinds whose import counts as a screening against this list.
    list_kinds: tuple[str, ...]
    countries: tuple[str, ...]
    # Telephone marketing to these countries needs a screening at most this many days old.
    screening_days: int


PHONE_LISTS: dict[str, PhoneList] = {p.key: p for p in (
    # TPS for consumers, CTPS for corporate subscribers: a screening against either counts.
    PhoneList("uk_tps", "TPS", ("tps", "ctps"), ("GB", "GG", "JE", "IM"), 28),
    PhoneList("us_dnc", "National Do Not Call Registry", ("us_dnc",), ("US",), 31),
    PhoneList("ca_dncl", "National DNCL", ("ca_dncl",), ("CA",), 31),
)}
COUNTRY_PHONE_LIST: dict[str, str] = {c: p.key for p in PHONE_LISTS.values() for c in p.countries}


def regime_for(country: str | None) -> Regime:
    """The regime for an ISO 3166-1 alpha-2 country code (the strict default when unknown)."""
    return REGIMES[COUNTRY_REGIME.get((country or "").upper(), "default")]


def phone_list_for(country: str | None) -> PhoneList | None:
    """The national telephone list covering ``country`` (None: no screening rule applies)."""
    key = COUNTRY_PHONE_LIST.get((country or "").upper())
    return PHONE_LISTS[key] if key else None


def implied_consent_expiry(basis: str, occurred_at: datetime) -> datetime | None:
    """When a consent of ``basis`` captured at ``occurred_at`` lapses (None: it does not)."""
    months = IMPLIED_CONSENT_MONTHS.get(basis)
    return add_months(occurred_at, months) if months else None


def add_months(moment, months: int):  # type: ignore[no-untyped-def]
    """Same day ``months`` later; the last day of that month when it has no such day.

    Works on dates and datetimes (used for CASL expiry and statutory deadlines).
    """
    import calendar

    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)
