"""C1 — personal data held by the people app."""

from rapport.privacy.datamap import Category as C
from rapport.privacy.datamap import ErasureAction as E
from rapport.privacy.datamap import LawfulBasis as B
from rapport.privacy.datamap import Sensitivity as S
from rapport.privacy.datamap import declare, declare_model

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
