"""S1/S2 — the authorisation matrix: every seed role × every route × (own, shared, private).

Expectations come from ``rapport.access.matrix`` (the seed role definitions and the route
classification), never from ``sharing.restrict`` itself; each request runs in a rolled-back
savepoint so every probe sees the same world. The organisation-wide defaults are set to
private here, so "someone else's record" really is private; the shared record is shared
read-only with the user by hand.
"""

from __future__ import annotations

import re
import uuid
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import get_resolver, reverse
from rest_framework.test import APIClient

from rapport.access import matrix, services
from rapport.access.matrix import CASES, OWN, PRIVATE, SHARED, Probe, RouteAccess
from rapport.access.models import Access, Role
from rapport.access.seeds import ORGANISATION, PERSON, ROLE_SEEDS
from rapport.access.tests.routes import iter_routes
from rapport.core import testing
from rapport.people import services as people_services
from rapport.privacy import services as privacy_services

DOC = Path(__file__).resolve().parents[4] / "docs" / "security.md"
ROLE_KEYS = [seed["key"] for seed in ROLE_SEEDS]
VERBS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def all_routes() -> dict[str, Any]:
    return {route.name: route for route in iter_routes(get_resolver())}


# ------------------------------------------------------------------------ the world


class World:
    """The user under test, their own, a shared and a private record of each type."""

    def __init__(self, admin: Any, role_key: str | None) -> None:
        roles = {r.key: r for r in Role.objects.all()}
        self.admin = admin
        self.other = testing.make_user("matrix_other", role=roles["sales-rep"])
        third = testing.make_user("matrix_third", role=roles["sales-rep"])
        self.user = testing.make_user(f"matrix_{role_key}", role=roles[role_key]) if role_key else None
        owner_of = {OWN: self.user or self.other, SHARED: self.other, PRIVATE: self.other}
        self.objects: dict[str, dict[str, Any]] = {case: {} for case in CASES}
        employer = testing.make_organisation(actor=admin, name="Employer of record", owner=admin)
        for case in CASES:
            objs = self.objects[case]
            person = testing.make_person(actor=admin, given_name="Matrix", family_name=f"{case.title()}mark",
                                         owner=owner_of[case], emails=[f"{case}@matrix-example.com"])
            organisation = testing.make_organisation(actor=admin, name=f"Matrix {case.title()}org",
                                                     owner=owner_of[case])
            objs.update(person=person, organisation=organisation,
                        contact_point=person.contact_points.get(),
                        job=people_services.employment_start(actor=admin, person=person, organisation=employer),
                        attachment=services.attachment_add(
                            actor=admin, record=person,
                            upload=SimpleUploadedFile(f"{case}-file.txt", b"hello", content_type="text/plain")),
                        receipt=privacy_services.record_consent(
                            person=person, purpose="newsletter", channel="email", granted=True,
                            lawful_basis="consent", source="staff", captured_by=admin).receipt_id,
                        hold=privacy_services.place_legal_hold(actor=admin, person=person, reason="Matter 1"),
                        interaction=people_services.interaction_log(
                            actor=admin, person=person, channel="phone", kind="call", summary="Called")[0])
            if case == SHARED and self.user is not None:
                services.record_share(actor=admin, record=organisation, access=Access.READ, user=self.user)
                objs["share"] = services.record_share(actor=admin, record=person, access=Access.READ,
                                                      user=self.user)
            else:
                objs["share"] = services.record_share(actor=admin, record=person, access=Access.READ, user=third)
        self.shared_objects = {
            "role": roles["marketing"], "spare_role": services.role_save(actor=admin, name="Spare role", permissions={}),
            "team": services.team_save(actor=admin, name="Matrix team", member_ids=[]),
            "user": self.other,
            "rule": services.sharing_rule_save(actor=admin, name="Matrix rule", object_type=PERSON,
                                               owner_team=None, criteria={"country": "ZZ"},
                                               target_role=roles["auditor"], target_team=None,
                                               access=Access.READ),
        }

    def value(self, key: str, case: str) -> Any:
        if key.startswith("="):
            if key == "=missing":
                return str(uuid.uuid4())
            return 987654321 if key == "=missing-int" else key[1:]
        found = self.objects[case].get(key, self.shared_objects.get(key))
        return getattr(found, "pk", found)

    def markers(self, listing: str, case: str) -> str:
        objs = self.objects[case]
        if listing == PERSON:
            return objs["person"].family_name
        if listing == ORGANISATION:
            return objs["organisation"].name
        return objs["attachment"].filename


@pytest.fixture(autouse=True)
def quiet_refusals():
    """Hundreds of refusals are expected here; Django logging each with a traceback is slow noise."""
    import logging

    logger = logging.getLogger("django.request")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


@pytest.fixture
def world_for(db, admin_user, fast_passwords):
    def build(role_key: str | None) -> World:
        for object_type in (PERSON, ORGANISATION):
            services.sharing_default_set(actor=admin_user, object_type=object_type, access=Access.PRIVATE)
        return World(admin_user, role_key)

    return build


# ------------------------------------------------------------------------- requests


def _client(world: World, api: bool) -> Any:
    if world.user is None:
        return APIClient() if api else Client()
    if api:
        _, key = services.token_create(user=world.user, name="matrix", scopes=["read", "write", "export"])
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return client
    client = Client()
    client.force_login(world.user)
    return client


def _fill(value: Any, world: World, case: str) -> Any:
    if isinstance(value, str):
        return re.sub(r"\{(\w+)\}", lambda m: str(world.value(m.group(1), case)), value)
    if isinstance(value, list):
        return [_fill(v, world, case) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, world, case) for k, v in value.items()}
    return value


class Raised(Exception):
    pass


def request(client: Any, method: str, url: str, body: Any, api: bool) -> Any:
    """One request inside a savepoint that is rolled back; the client's cookies survive it.

    A view that raises becomes ``Raised`` naming the innermost frame of Rapport's own code.
    """
    try:
        return _request(client, method, url, body, api)
    except Exception as err:
        import traceback

        frames = [f for f in traceback.extract_tb(err.__traceback__) if "/rapport/" in f.filename
                  and "/tests/" not in f.filename]
        where = f" at {frames[-1].filename.split('/src/')[-1]}:{frames[-1].lineno}" if frames else ""
        raise Raised(f"{method} {url} raised {type(err).__name__}: {err}{where}") from err


def _request(client: Any, method: str, url: str, body: Any, api: bool) -> Any:
    cookies = {name: morsel.value for name, morsel in client.cookies.items()}
    try:
        with transaction.atomic():
            call = getattr(client, method.lower())
            if api:
                response = call(url, data=body, format="json") if method != "GET" else call(url)
            else:
                response = call(url, data=body or {})
            transaction.set_rollback(True)
    finally:
        client.cookies = SimpleCookie(cookies)
    return response


def verdict(response: Any) -> str:
    """allowed, denied (403 / sign-in), hidden (404), or the problem."""
    status = response.status_code
    location = response.get("Location", "") if status in (301, 302, 303) else ""
    if status == 404:
        return "hidden"
    if status in (401, 403) or location.startswith(("/login/?", "/mfa/")):
        return "denied"
    if status == 405:
        return "method not allowed (misclassified?)"
    if status >= 500:
        return f"server error {status}"
    return "allowed"


def url_for(route: RouteAccess, probe: Probe, world: World, case: str) -> str:
    path = reverse(route.name, kwargs={k: world.value(v, case) for k, v in route.args.items()})
    return f"{path}?{probe.query}" if probe.query else path


def body_text(response: Any) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode("utf-8", "replace")
    return response.content.decode("utf-8", "replace")


def check_route(route: RouteAccess, role: matrix.RoleSpec | None, world: World, clients: dict[bool, Any]
                ) -> list[str]:
    failures = []
    client = clients[route.is_api]
    for probe in route.probes:
        kind = probe.kind(route)
        cases = CASES if kind in {"record", "listing"} else (OWN,)
        if kind == "listing":
            try:
                response = request(client, probe.method, url_for(route, probe, world, OWN), None, route.is_api)
            except Raised as err:
                failures.append(f"{route.name}: {err}")
                continue
            got = verdict(response)
            may = role is not None and role.may(probe.needs)
            if may and got != "allowed":
                failures.append(f"{route.name} {probe.method}: expected the list, got {response.status_code}")
                continue
            if got not in {"allowed", "denied", "hidden"}:
                failures.append(f"{route.name} {probe.method}: {got}")
                continue
            text = body_text(response) if got == "allowed" else ""
            for case in cases:
                shown = world.markers(probe.listing or PERSON, case) in text
                want = expected_for(role, route, probe, case)
                if shown != want:
                    failures.append(f"{route.name} {probe.method} [{case}]: record "
                                    f"{'missing from' if want else 'leaks into'} the answer")
            continue
        for case in cases:
            url = url_for(route, probe, world, case)
            try:
                response = request(client, probe.method, url, _fill(probe.body, world, case), route.is_api)
            except Raised as err:
                failures.append(f"{route.name} [{case}]: {err}")
                continue
            got = verdict(response)
            want = expected_for(role, route, probe, case)
            if probe.missing_object and got == "hidden":
                got = "allowed" if want else "hidden"
            if want and got != "allowed":
                failures.append(f"{route.name} {probe.method} [{case}]: expected allowed, got "
                                f"{response.status_code} ({got})")
            elif not want:
                role_may = role is not None and role.may(probe.needs)
                if kind == "record" and role_may and case == PRIVATE and got != "hidden":
                    failures.append(f"{route.name} {probe.method} [{case}]: a record the user may not "
                                    f"see must be 404, got {response.status_code}")
                elif got not in {"denied", "hidden"}:
                    failures.append(f"{route.name} {probe.method} [{case}]: expected denied, got "
                                    f"{response.status_code} ({got})")
    return failures


def expected_for(role: matrix.RoleSpec | None, route: RouteAccess, probe: Probe, case: str) -> bool:
    return matrix.expected(role, route, probe, case)


# -------------------------------------------------------------------------------- tests


def test_every_route_is_classified():
    missing = matrix.unclassified(all_routes())
    assert not missing, (
        "These routes are not in the authorisation matrix. Classify each in "
        "src/rapport/access/matrix.py (public / signed_in / role / record / listing), or call "
        "rapport.access.matrix.register_route from your app, then run "
        "`rapport access matrix --format md --write docs/security.md`:\n  " + "\n  ".join(missing))


def test_classified_routes_exist():
    stale = sorted(set(matrix.ROUTES) - set(all_routes()))
    assert not stale, f"Classified in the matrix but no longer in the URL map: {', '.join(stale)}"


def test_installed_seed_roles_match_their_definitions(db):
    for seed in ROLE_SEEDS:
        role = Role.objects.get(key=seed["key"])
        assert role.is_administrator == bool(seed.get("is_administrator"))
        assert {k: sorted(v) for k, v in role.permissions.items()} == \
            {k: sorted(v) for k, v in seed.get("permissions", {}).items()}


@pytest.mark.parametrize("role_key", [*ROLE_KEYS, matrix.ANONYMOUS])
def test_authorisation_matrix(role_key, world_for):
    # given
    world = world_for(None if role_key == matrix.ANONYMOUS else role_key)
    role = next((r for r in matrix.seed_roles() if r.key == role_key), None)
    clients = {False: _client(world, api=False), True: _client(world, api=True)}
    known = all_routes()
    # when
    failures = []
    for name in sorted(matrix.ROUTES):
        if name in known:
            failures += check_route(matrix.ROUTES[name], role, world, clients)
    # then
    assert not failures, f"{len(failures)} authorisation mismatches for {role_key}:\n  " + "\n  ".join(failures)


def test_a_token_on_someone_elses_private_record_is_404_for_every_verb(world_for):
    # given: a sales rep with every scope but admin, and another rep's private records
    world = world_for("sales-rep")
    client = _client(world, api=True)
    role = next(r for r in matrix.seed_roles() if r.key == "sales-rep")
    record_routes = [r for r in matrix.ROUTES.values() if r.is_api and r.args
                     and any(p.kind(r) == "record" for p in r.probes)]
    assert len(record_routes) > 10
    # when / then: 404 for every verb the route serves; for the others the same answer as
    # for an id that does not exist, so nothing tells the record is there
    for route in record_routes:
        for verb in VERBS:
            url = reverse(route.name, kwargs={k: world.value(v, PRIVATE) for k, v in route.args.items()})
            nowhere = reverse(route.name, kwargs={k: uuid.uuid4() for k in route.args})
            body = _fill(route.probes[0].body, world, PRIVATE)
            response = request(client, verb, url, body, api=True)
            baseline = request(client, verb, nowhere, body, api=True)
            assert response.status_code == baseline.status_code, f"{verb} {route.name}: {response.status_code}"
            probe = next((p for p in route.probes if p.method == verb), None)
            if probe is not None and role.may(probe.needs):
                assert response.status_code == 404, f"{verb} {route.name}: {response.status_code}"
            assert b"Privatemark" not in response.content


def test_docs_security_md_carries_the_current_matrix():
    text = DOC.read_text(encoding="utf-8")
    assert matrix.MATRIX_BEGIN in text and matrix.MATRIX_END in text, "docs/security.md lost its matrix markers"
    current = text.split(matrix.MATRIX_BEGIN, 1)[1].split(matrix.MATRIX_END, 1)[0].strip()
    assert current == matrix.markdown().strip(), (
        "docs/security.md is stale: run `rapport access matrix --format md --write docs/security.md`")
