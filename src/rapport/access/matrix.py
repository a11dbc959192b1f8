"""S1/S2 — the authorisation matrix: what every seed role may do on every route of the URL map.

Each named route of the staff UI and the API is classified here once, by what it needs:

- ``public``: anyone, signed in or not (sign-in page, health, the double opt-in link);
- ``signed_in``: any signed-in user, whatever their role (home, own security settings);
- ``role``: role permissions only (``permission_required`` / DRF ``object_type``), no record;
- ``record``: role permissions *and* the sharing model on one person or organisation — the
  route is probed on the user's own record, a record shared with them (read only), and
  someone else's private record;
- ``listing``: a list, search or export; it answers every signed-in user but shows a
  record only when the role may read that type and the sharing model lets the user see it.

``expected(role, probe, case)`` derives allow/deny from the seed role definitions
(``seeds.ROLE_SEEDS``) alone — independently of ``sharing.restrict`` — so the matrix test
compares the implementation against the written policy. ``markdown()`` renders the same
data as the table in docs/security.md (``rapport access matrix --format md``).

A new route must be classified in ``ROUTES`` (or by ``register_route`` from the app that
adds it); the matrix test fails and lists every route that is not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rapport.access.seeds import ATTACHMENT, AUDIT, ORGANISATION, PERSON, ROLE_SEEDS, SETTINGS

OWN, SHARED, PRIVATE = "own", "shared", "private"
CASES = (OWN, SHARED, PRIVATE)
ANONYMOUS = "anonymous"
RIGHTS = "privacy.rightsrequest"
PRIVACY_SETTINGS = "privacy.settings"

Need = tuple[str, str]  # (object type, action)


@dataclass(frozen=True)
class Probe:
    """One request the matrix makes on a route, and what deciding it takes."""

    method: str
    needs: tuple[Need, ...] = ()       # role permissions, all of them
    record: str | None = None          # decided per record (own / shared / private) by sharing
    write: bool = False                # needs read-write access to the record (the shared one is read only)
    listing: str | None = None         # a list/search/export of this type: visible records appear, others not
    query: str = ""                    # query string, e.g. "q=Matrix"
    body: dict[str, Any] | None = None  # request body; "{person}" etc. are filled per case
    missing_object: bool = False       # the route's object does not exist: allowed means "not 403"

    def kind(self, route: RouteAccess) -> str:
        if self.listing:
            return "listing"
        if self.record:
            return "record"
        return route.kind if route.kind in {"public", "signed_in"} else "role"


@dataclass(frozen=True)
class RouteAccess:
    name: str                          # namespaced URL name, e.g. "people:person-detail"
    kind: str                          # public | signed_in | role | record | listing
    probes: tuple[Probe, ...]
    args: dict[str, str] = field(default_factory=dict)  # URL kwarg -> fixture key ("person", "=literal")
    note: str = ""

    @property
    def is_api(self) -> bool:
        return self.name.startswith("api:") or self.name in {"schema", "api-docs", "api-redoc"}


ROUTES: dict[str, RouteAccess] = {}


def register_route(route: RouteAccess) -> RouteAccess:
    """Classify a route (apps adding routes may call this from ``AppConfig.ready()``)."""
    ROUTES[route.name] = route
    return route


# ------------------------------------------------------------------------ classification


def _public(name: str, *methods: str, args: dict[str, str] | None = None, note: str = "") -> None:
    register_route(RouteAccess(name, "public", tuple(Probe(m) for m in methods), args or {}, note))


def _signed_in(name: str, *methods: str, query: str = "", missing: bool = False, note: str = "") -> None:
    register_route(RouteAccess(name, "signed_in", tuple(Probe(m, query=query, missing_object=missing)
                                                        for m in methods), {}, note))


def _role(name: str, probes: dict[str, tuple[Need, ...]], *, args: dict[str, str] | None = None,
          missing: bool = False, body: dict[str, Any] | None = None, note: str = "") -> None:
    register_route(RouteAccess(name, "role", tuple(
        Probe(m, needs=needs, missing_object=missing, body=body) for m, needs in probes.items()), args or {}, note))


def _record(name: str, record: str, probes: dict[str, tuple[tuple[Need, ...], bool]], *,
            args: dict[str, str] | None = None, query: str = "", body: dict[str, Any] | None = None,
            note: str = "") -> None:
    key = "person" if record == PERSON else "organisation"
    register_route(RouteAccess(name, "record", tuple(
        Probe(m, needs=needs, record=record, write=write, query=query, body=body)
        for m, (needs, write) in probes.items()), args if args is not None else {"pk": key}, note))


def _listing(name: str, listing: str, needs: tuple[Need, ...], *, query: str = "", note: str = "") -> None:
    register_route(RouteAccess(name, "listing", (Probe("GET", needs=needs, listing=listing, query=query),),
                               {}, note))


READ_P = ((PERSON, "read"),)
UPDATE_P = ((PERSON, "update"),)
READ_O = ((ORGANISATION, "read"),)
UPDATE_O = ((ORGANISATION, "update"),)
MANAGE = ((SETTINGS, "manage"),)
PMANAGE = ((PRIVACY_SETTINGS, "manage"),)
CREATE_P = ((PERSON, "create"),)

# Public and every-signed-in-user routes.
_public("healthz", "GET")
_public("login", "GET")
_public("logout", "POST")
_public("privacy:consent-confirm", "GET", args={"token": "=not-a-real-token"},
        note="the double opt-in link in a customer's email")
_signed_in("home", "GET")
_signed_in("access:account-security", "GET", note="the user's own MFA and tokens")
_signed_in("access:mfa-setup", "GET")
_signed_in("access:mfa-qr", "GET", missing=True, note="QR code of the user's own pending TOTP device (404: none)")
_signed_in("access:mfa-verify", "GET")
_signed_in("access:mfa-recovery-codes", "POST")
_signed_in("api:me", "GET")
_public("schema", "GET", note="the OpenAPI description: no data")
_public("api-docs", "GET")
_public("api-redoc", "GET")
_signed_in("privacy:processing-record", "GET")
_signed_in("api:privacy-processing-record", "GET")
_signed_in("privacy:suppression", "GET", note="changes need privacy settings")
_signed_in("privacy:retention", "GET", note="the dry-run report; changes need privacy settings")
_signed_in("api:privacy-retention", "GET")
_signed_in("api:privacy-notices", "GET", note="publishing a notice needs privacy settings")
_signed_in("imports:export", "GET", note="the export form; the download is a listing")
_signed_in("api:import-targets", "GET")

# Lists, searches and exports: only visible records appear.
_listing("people:person-list", PERSON, READ_P)
_listing("people:search", PERSON, READ_P, query="q=Matrix")
_listing("people:organisation-list", ORGANISATION, READ_O)
_listing("people:organisation-pick", ORGANISATION, READ_O, query="q=Matrix")
_listing("imports:export-download", PERSON, ((PERSON, "export"),), query="what=people&format=csv")
_listing("api:export-people", PERSON, ((PERSON, "export"),), query="format=csv")
_listing("api:export-organisations", ORGANISATION, ((ORGANISATION, "export"),), query="format=csv")
_listing("api:attachment-list", ATTACHMENT, ((ATTACHMENT, "read"), (PERSON, "read")),
         note="files on people: they follow their record's visibility")

# One person or organisation: role permission and the sharing model.
_record("people:person-detail", PERSON, {"GET": (READ_P, False)})
_record("people:person-edit", PERSON, {"GET": (UPDATE_P, True)})
_record("people:person-timeline", PERSON, {"GET": (READ_P, False)})
_record("people:interaction-create", PERSON, {"POST": (UPDATE_P, True)})
_record("people:contact-point-add", PERSON, {"POST": (UPDATE_P, True)})
_record("people:contact-point-edit", PERSON, {"GET": (UPDATE_P, True)},
        args={"pk": "person", "point_pk": "contact_point"})
_record("people:contact-point-remove", PERSON, {"POST": (UPDATE_P, True)},
        args={"pk": "person", "point_pk": "contact_point"})
_record("people:employment-start", PERSON, {"POST": (UPDATE_P, True)})
_record("people:employment-end", PERSON, {"POST": (UPDATE_P, True)}, args={"pk": "person", "job_pk": "job"})
_record("people:organisation-detail", ORGANISATION, {"GET": (READ_O, False)})
_record("people:organisation-edit", ORGANISATION, {"GET": (UPDATE_O, True)})
_record("access:break-glass", PERSON, {"GET": (READ_P, False)})
_record("access:demographics", PERSON, {"GET": (UPDATE_P, True)})
_record("access:attachments", PERSON, {"GET": (READ_P, False)}, args={"object_type": "=people.person", "pk": "person"})
_record("access:share", PERSON, {"GET": (UPDATE_P, True)}, args={"object_type": "=people.person", "pk": "person"})
_record("access:restrict", PERSON, {"POST": (UPDATE_P, True)}, args={"object_type": "=people.person", "pk": "person"})
_record("access:history", PERSON, {"GET": (READ_P, False)}, args={"object_type": "=people.person", "pk": "person"})
_record("access:unshare", PERSON, {"POST": (UPDATE_P, True)}, args={"pk": "share"},
        note="a share of the record, made by an administrator")
_record("access:attachment-download", PERSON, {"GET": (((ATTACHMENT, "read"), *READ_P), False)},
        args={"pk": "attachment"})
_record("access:attachment-delete", PERSON, {"POST": (((ATTACHMENT, "delete"), *UPDATE_P), True)},
        args={"pk": "attachment"})
_record("api:attachment-detail", PERSON, {"GET": (((ATTACHMENT, "read"), *READ_P), False),
                                          "DELETE": (((ATTACHMENT, "delete"), *UPDATE_P), True)},
        args={"pk": "attachment"})
_record("api:attachment-content", PERSON, {"GET": (((ATTACHMENT, "read"), *READ_P), False)},
        args={"pk": "attachment"})
_record("privacy:consent-record", PERSON, {"GET": (UPDATE_P, True)})
_record("privacy:consent-history", PERSON, {"GET": (READ_P, False)})
_record("privacy:consent-receipt", PERSON, {"GET": (READ_P, False)}, args={"pk": "person", "receipt_id": "receipt"})
_record("privacy:preferences-edit", PERSON, {"GET": (UPDATE_P, True)})
_record("privacy:person-export", PERSON, {"GET": (((PERSON, "export"),), False)})
_record("privacy:gate-check", PERSON, {"GET": (READ_P, False)}, query="channel=email&purpose=newsletter")
_record("privacy:person-status", PERSON, {"POST": (UPDATE_P, True)}, args={"pk": "person", "action": "=object"})
_record("privacy:legal-hold-release", PERSON, {"POST": (UPDATE_P, True)}, args={"pk": "hold"})
_record("api:privacy-consents", PERSON, {"GET": (READ_P, False), "POST": (UPDATE_P, True)})
_record("api:privacy-consent-state", PERSON, {"GET": (READ_P, False)})
_record("api:privacy-preferences", PERSON, {"GET": (READ_P, False), "PATCH": (UPDATE_P, True)},
        body={"email_allowed": False})
_record("api:privacy-export", PERSON, {"GET": (((PERSON, "export"),), False)})
_record("api:privacy-receipt", PERSON, {"GET": (READ_P, False)}, args={"receipt_id": "receipt"})
_record("api:privacy-decide", PERSON, {"POST": (READ_P, False)}, args={},
        body={"person": "{person}", "channel": "email", "purpose": "newsletter"})

# The people API (A1).
register_route(RouteAccess("api:person-list", "role", (
    Probe("GET", needs=READ_P, listing=PERSON), Probe("POST", needs=CREATE_P, body={}))))
_record("api:person-detail", PERSON, {"GET": (READ_P, False), "PATCH": (UPDATE_P, True)}, body={})
_record("api:person-contact-points", PERSON, {"GET": (READ_P, False), "POST": (UPDATE_P, True)}, body={})
_record("api:contact-point-detail", PERSON, {"GET": (READ_P, False), "PATCH": (UPDATE_P, True),
                                             "DELETE": (UPDATE_P, True)}, args={"pk": "contact_point"}, body={})
register_route(RouteAccess("api:organisation-list", "role", (
    Probe("GET", needs=READ_O, listing=ORGANISATION), Probe("POST", needs=((ORGANISATION, "create"),), body={}))))
_record("api:organisation-detail", ORGANISATION, {"GET": (READ_O, False), "PATCH": (UPDATE_O, True),
                                                  "DELETE": (((ORGANISATION, "delete"),), True)}, body={})
_role("api:employment-list", {"GET": READ_P, "POST": UPDATE_P}, body={},
      note="jobs of the people the caller may see")
_record("api:employment-detail", PERSON, {"GET": (READ_P, False), "PATCH": (UPDATE_P, True)}, args={"pk": "job"},
        body={})
_role("api:interaction-list", {"GET": READ_P, "POST": UPDATE_P}, body={},
      note="timelines of the people the caller may see")
_record("api:interaction-detail", PERSON, {"GET": (READ_P, False), "PATCH": (UPDATE_P, True),
                                           "DELETE": (UPDATE_P, True)}, args={"pk": "interaction"}, body={})

# Role permissions only.
for _name in ("access:audit-search", "access:audit-verify", "api:audit-list"):
    _role(_name, {"GET": ((AUDIT, "read"),)})
for _name in ("access:settings", "access:role-create", "access:team-create", "access:user-list", "access:sharing",
              "access:rule-create"):
    _role(_name, {"GET": MANAGE})
for _name, _arg in (("access:role-edit", "role"), ("access:role-fields", "role"), ("access:team-edit", "team"),
                    ("access:user-edit", "user"), ("access:rule-edit", "rule")):
    _role(_name, {"GET": MANAGE}, args={"pk": _arg})
for _name, _arg in (("access:role-delete", "spare_role"), ("access:team-delete", "team"),
                    ("access:rule-delete", "rule")):
    _role(_name, {"POST": MANAGE}, args={"pk": _arg})
_role("privacy:request-list", {"GET": ((RIGHTS, "read"),)})
_role("privacy:request-create", {"GET": ((RIGHTS, "create"),)})
_role("privacy:request-detail", {"GET": ((RIGHTS, "read"),)}, args={"pk": "=missing"}, missing=True)
_role("privacy:request-action", {"POST": ((RIGHTS, "update"),)}, args={"pk": "=missing", "action": "=verify"},
      missing=True, note="each action asks for its own permissions; an unknown request is a 404")
_role("privacy:suppression-remove", {"POST": PMANAGE}, args={"pk": "=missing-int"}, missing=True)
_role("privacy:retention-run", {"POST": PMANAGE})
_role("privacy:retention-policy", {"POST": PMANAGE}, args={"pk": "=missing"}, missing=True)
_role("privacy:security-notice", {"GET": PMANAGE})
_role("api:privacy-requests", {"GET": ((RIGHTS, "read"),), "POST": ((RIGHTS, "create"),)})
_role("api:privacy-request", {"GET": ((RIGHTS, "read"),)}, args={"pk": "=missing"}, missing=True)
_role("api:privacy-request-action", {"POST": ((RIGHTS, "update"),)}, args={"pk": "=missing", "action": "=verify"},
      missing=True)
_role("api:privacy-suppressions", {"GET": PMANAGE, "POST": PMANAGE})
_role("api:privacy-suppression-lists", {"GET": PMANAGE})
_role("api:privacy-security-notices", {"GET": PMANAGE})
_role("api:privacy-suppression-check", {"POST": CREATE_P})
_role("api:privacy-decide-batch", {"POST": READ_P}, body={"people": ["{person}"], "channel": "email",
                                                          "purpose": "newsletter"},
      note="people the caller may not see are left out of the answer")
_role("imports:index", {"GET": CREATE_P})
_role("people:person-create", {"GET": CREATE_P, "POST": CREATE_P}, body={"given_name": "Created"})
_role("people:organisation-create", {"GET": ((ORGANISATION, "create"),), "POST": ((ORGANISATION, "create"),)},
      body={"name": "Created Ltd"})
_role("identity:queue", {"GET": READ_P}, note="each pair still shows only people the user may see")
_role("identity:pair", {"GET": READ_P}, args={"pk": "=missing"}, missing=True)
for _name in ("identity:merge", "identity:reject", "identity:unmerge"):
    _role(_name, {"POST": ((PERSON, "merge"),)}, args={"pk": "=missing"}, missing=True)
_role("api:identity-suggestions", {"GET": READ_P})
_role("api:identity-merges", {"GET": READ_P, "POST": ((PERSON, "merge"),)}, body={})
_role("api:identity-not-duplicates", {"POST": ((PERSON, "merge"),)}, body={})
_role("api:identity-candidates", {"POST": READ_P}, body={})
for _name in ("api:identity-suggestion-reject", "api:identity-unmerge"):
    _role(_name, {"POST": ((PERSON, "merge"),)}, args={"pk": "=missing"}, missing=True, body={})
for _name, _method in (("imports:detail", "GET"), ("imports:mapping", "GET"), ("imports:progress", "GET"),
                       ("imports:run", "POST"), ("imports:undo", "POST"), ("imports:errors", "GET")):
    _role(_name, {_method: CREATE_P}, args={"pk": "=missing"}, missing=True,
          note="imports are visible to whoever started them")
_role("api:import-list", {"GET": READ_P, "POST": CREATE_P})
_role("api:import-mapping-list", {"GET": READ_P})
for _name in ("api:import-mapping-detail", "api:import-detail", "api:import-issues", "api:import-errors"):
    _role(_name, {"GET": READ_P}, args={"pk": "=missing"}, missing=True)
for _name in ("api:import-preview", "api:import-run", "api:import-undo"):
    _role(_name, {"POST": CREATE_P}, args={"pk": "=missing"}, missing=True)


# ---------------------------------------------------------------------------- expectations


@dataclass(frozen=True)
class RoleSpec:
    key: str
    name: str
    is_administrator: bool
    permissions: dict[str, frozenset[str]]

    def may(self, needs: Iterable[Need]) -> bool:
        return self.is_administrator or all(action in self.permissions.get(ot, frozenset()) for ot, action in needs)


def seed_roles() -> list[RoleSpec]:
    """The seed roles as written in ``seeds.ROLE_SEEDS`` (not as edited in a database)."""
    return [RoleSpec(seed["key"], seed["name"], bool(seed.get("is_administrator")),
                     {ot: frozenset(actions) for ot, actions in seed.get("permissions", {}).items()})
            for seed in ROLE_SEEDS]


def expected(role: RoleSpec | None, route: RouteAccess, probe: Probe, case: str | None = None) -> bool:
    """Whether ``role`` (None: not signed in) is let through ``probe`` on the record of ``case``.

    For listings: whether the record of ``case`` appears in the answer.
    """
    kind = probe.kind(route)
    if kind == "public":
        return True
    if role is None:
        return False
    if kind == "signed_in":
        return True
    if not role.may(probe.needs):
        return False
    if kind in {"record", "listing"}:
        if role.is_administrator or case == OWN:
            return True
        if case == SHARED:
            return not probe.write
        return False
    return True


def unclassified(route_names: Iterable[str]) -> list[str]:
    return sorted(set(route_names) - set(ROUTES))


# ------------------------------------------------------------------------------ the table


def _cell(role: RoleSpec | None, route: RouteAccess, probe: Probe) -> str:
    if probe.kind(route) in {"record", "listing"} and role is not None:
        marks = ["✓" if expected(role, route, probe, case) else "✗" for case in CASES]
        if probe.kind(route) == "listing":
            return "".join(marks) if any(m == "✓" for m in marks) else "empty"
        return "".join(marks)
    return "✓" if expected(role, route, probe) else "✗"


def markdown() -> str:
    """The matrix as a Markdown table (the one in docs/security.md)."""
    roles = seed_roles()
    header = ["Route", "Method", "Kind", "Anonymous", *(r.name for r in roles)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in sorted(ROUTES):
        route = ROUTES[name]
        for probe in route.probes:
            cells = [f"`{name}`", probe.method, probe.kind(route), _cell(None, route, probe),
                     *(_cell(role, route, probe) for role in roles)]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


MATRIX_BEGIN = "<!-- matrix:begin (generated by `rapport access matrix --format md`; do not edit) -->"
MATRIX_END = "<!-- matrix:end -->"


def as_rows() -> list[dict[str, Any]]:
    """The matrix as data: one row per route and method, a verdict per role and case."""
    roles = seed_roles()
    rows = []
    for name in sorted(ROUTES):
        route = ROUTES[name]
        for probe in route.probes:
            kind = probe.kind(route)
            cases = CASES if kind in {"record", "listing"} else ("any",)
            rows.append({
                "route": name, "method": probe.method, "kind": kind, "note": route.note,
                "anonymous": expected(None, route, probe, OWN),
                "roles": {role.key: {case: expected(role, route, probe, case if case != "any" else OWN)
                                     for case in cases} for role in roles},
            })
    return rows
