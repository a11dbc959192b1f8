"""C1 — personal data held by the people app."""

from rapport.privacy.datamap import Category as C
from rapport.privacy.datamap import ErasureAction as E
from rapport.privacy.datamap import LawfulBasis as B
from rapport.privacy.datamap import Sensitivity as S
from rapport.privacy.datamap import declare, declare_model, declare_not_personal

RELATIONSHIP = "life of the customer relationship + 6 years"
CRM = ("customer_relationship",)

declare_model("people.Person", person_path="", description="The customer's profile")
for name in ("honorific", "given_name", "middle_names", "family_name", "preferred_name",
             "given_key", "family_key", "preferred_key"):
    declare("people.Person", name, category=C.IDENTITY, sensitivity=S.MEDIUM, purposes=CRM,
            lawful_basis=B.LEGITIMATE_INTERESTS, retention=RELATIONSHIP)
for name in ("language", "timezone", "country"):
    declare("people.Person", name, category=C.DEMOGRAPHIC, sensitivity=S.LOW, purposes=CRM,
            lawful_basis=B.LEGITIMATE_INTERESTS, retention=RELATIONSHIP)
declare("people.Person", "notes", category=C.BEHAVIOURAL, sensitivity=S.MEDIUM, purposes=CRM,
        lawful_basis=B.LEGITIMATE_INTERESTS, retention=RELATIONSHIP)
# P1 optional demographics: sealed at rest (S6); the blind indexes are erased with their fields.
for name, category in (("birth_date", C.DEMOGRAPHIC), ("birth_date_index", C.DEMOGRAPHIC),
                       ("gender", C.DEMOGRAPHIC), ("gender_index", C.DEMOGRAPHIC),
                       ("income_band", C.FINANCIAL), ("income_band_index", C.FINANCIAL)):
    declare("people.Person", name, category=category, sensitivity=S.HIGH, purposes=CRM,
            lawful_basis=B.CONSENT, retention=RELATIONSHIP, erasure=E.ANONYMISE,
            description="Optional; given by the person")
declare("people.Person", "tags", category=C.BEHAVIOURAL, sensitivity=S.LOW, purposes=(*CRM, "marketing"),
        lawful_basis=B.LEGITIMATE_INTERESTS, retention=RELATIONSHIP, erasure=E.ANONYMISE,
        description="Labels staff put on the person (cleared on erasure)")

declare_model("people.ContactPoint", person_path="person", description="Ways to reach the person")
for name in ("value", "normalised", "search_key", "label", "source"):
    declare("people.ContactPoint", name, category=C.CONTACT, sensitivity=S.MEDIUM,
            purposes=(*CRM, "marketing", "service"), lawful_basis=B.LEGITIMATE_INTERESTS,
            retention=RELATIONSHIP, erasure=E.DELETE_ROW)

declare_model("people.Employment", person_path="person", description="Jobs held, past and present")
declare("people.Employment", "title", category=C.IDENTITY, sensitivity=S.LOW, purposes=CRM,
        lawful_basis=B.LEGITIMATE_INTERESTS, retention=RELATIONSHIP, erasure=E.DELETE_ROW)

declare_model("people.Interaction", person_path="person", description="The timeline")
for name in ("summary", "body"):
    declare("people.Interaction", name, category=C.BEHAVIOURAL, sensitivity=S.MEDIUM, purposes=CRM,
            lawful_basis=B.LEGITIMATE_INTERESTS, retention=RELATIONSHIP, erasure=E.ANONYMISE)
for name in ("kind", "verified", "primary"):
    declare("people.ContactPoint", name, category=C.CONTACT, sensitivity=S.LOW, purposes=CRM,
            lawful_basis=B.LEGITIMATE_INTERESTS, retention=RELATIONSHIP, erasure=E.DELETE_ROW)
for name in ("organisation", "start_date", "end_date"):
    declare("people.Employment", name, category=C.IDENTITY, sensitivity=S.LOW, purposes=CRM,
            lawful_basis=B.LEGITIMATE_INTERESTS, retention=RELATIONSHIP, erasure=E.DELETE_ROW)
for name in ("channel", "kind", "direction", "occurred_at", "sentiment"):
    declare("people.Interaction", name, category=C.BEHAVIOURAL, sensitivity=S.LOW, purposes=CRM,
            lawful_basis=B.LEGITIMATE_INTERESTS, retention=RELATIONSHIP, erasure=E.KEEP)

declare_not_personal("people.Organisation", ["name", "name_key"],
                     reason="a company's name is business data; people link to it through Employment")
declare_not_personal("people.Tag", ["name"], reason="a label shared by many records")
