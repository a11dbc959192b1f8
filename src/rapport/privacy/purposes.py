"""C2/C4/C8 — the purposes the business contacts people for, and their class.

Marketing purposes (topics) need a lawful basis under the person's jurisdiction and respect
every preference; service purposes (transactional messages, security and breach notices)
skip marketing consent but are still logged and still respect erasure and restriction.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PurposeClass(StrEnum):
    MARKETING = "marketing"
    SERVICE = "service"


@dataclass(frozen=True)
class Purpose:
    key: str
    label: str
    purpose_class: PurposeClass
    description: str
    # The UK/EU soft opt-in covers marketing of the business's own similar products only.
    soft_opt_in: bool = False

    @property
    def is_marketing(self) -> bool:
        return self.purpose_class == PurposeClass.MARKETING


PURPOSES: dict[str, Purpose] = {p.key: p for p in (
    Purpose("newsletter", "Newsletter", PurposeClass.MARKETING,
            "News about the business and its products.", soft_opt_in=True),
    Purpose("offers", "Offers on similar products", PurposeClass.MARKETING,
            "Offers and promotions for products like those the customer bought.", soft_opt_in=True),
    Purpose("events", "Events and invitations", PurposeClass.MARKETING,
            "Invitations to events, webinars and shows."),
    Purpose("surveys", "Surveys and research", PurposeClass.MARKETING,
            "Market research and satisfaction surveys not tied to a case."),
    Purpose("sales_outreach", "Sales outreach", PurposeClass.MARKETING,
            "Direct approaches by sales staff."),
    Purpose("transactional", "Orders, accounts and service", PurposeClass.SERVICE,
            "Messages needed to deliver what the customer asked for (receipts, confirmations)."),
    Purpose("security_notice", "Security and breach notices", PurposeClass.SERVICE,
            "Telling customers about a personal-data breach or a threat to their account (C8)."),
)}

MARKETING_PURPOSES = tuple(k for k, p in PURPOSES.items() if p.is_marketing)
SERVICE_PURPOSES = tuple(k for k, p in PURPOSES.items() if not p.is_marketing)


def get_purpose(key: str) -> Purpose:
    """The purpose ``key`` or a ValueError naming the valid ones."""
    try:
        return PURPOSES[key]
    except KeyError:
        raise ValueError(f"Unknown purpose {key!r}; choose one of {', '.join(PURPOSES)}.") from None
