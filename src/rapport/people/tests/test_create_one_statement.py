"""P1/S5 — a create's person, contact points and audit entry in one statement (PostgreSQL, decision 0039).

``people.services._insert_new_person`` inserts the rows inside the audit's append after the
guessed chain head (``access.audit.record_person_access_with`` + ``TogetherInsert.run_after``):
all of it is written or none of it, in autocommit without BEGIN or COMMIT. SQLite, tags and an
audit that gives up keep the transaction path; every path must write the same rows.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from rapport.access import audit
from rapport.access.audit import verify_chain
from rapport.access.models import AuditChainHead, AuditEntry
from rapport.core.testing import make_person
from rapport.people import services
from rapport.people.models import ContactPoint, Person
from rapport.privacy.suppression import Suppressed, suppress

EMAIL = services.ContactPointInput(kind="email", value="Ada.Lovelace@example.com")
PHONE = services.ContactPointInput(kind="phone", value="+44 7911 123456")
postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'")


def _create(actor, **kwargs):  # type: ignore[no-untyped-def]
    kwargs.setdefault("contact_points", [EMAIL, PHONE])
    return services.person_create_checked(actor=actor, given_name="Ada", family_name="Lovelace", **kwargs)


def _chain_is_one_line() -> None:
    seqs = list(AuditEntry.objects.order_by("seq").values_list("seq", flat=True))
    head = AuditChainHead.objects.get()
    last = AuditEntry.objects.order_by("-seq").first()
    assert seqs == list(range(1, len(seqs) + 1)) and (head.seq, head.hash) == (last.seq, last.hash)
    report = verify_chain()
    assert report.ok, report.problem


def _stale_guess() -> None:
    head = AuditChainHead.objects.get()
    audit._last_head[connections["default"]] = (head.seq - 1, "0" * 64)


@pytest.fixture
def chain(transactional_db, staff_user):  # type: ignore[no-untyped-def]
    """Autocommit (a test inside a transaction would be inside the caller's), with a head row."""
    make_person(actor=staff_user, given_name="First")
    return staff_user


@pytest.mark.parametrize("tags", [(), ("vip",)], ids=["untagged", "tagged"])
def test_a_create_writes_the_person_their_points_and_one_entry(chain, tags):
    # when
    done = _create(chain, tags=tags)
    # then: the rows as stored are the ones returned, and one create entry names the person
    person = Person.objects.get(pk=done.person.pk)
    assert (person.given_name, person.family_name, person.owner_id) == ("Ada", "Lovelace", chain.pk)
    assert sorted(ContactPoint.objects.filter(person=person).values_list("kind", "normalised")) == [
        ("email", "ada.lovelace@example.com"), ("phone", "+447911123456")]
    assert {p.pk for p in done.written} == set(ContactPoint.objects.filter(person=person).values_list("pk", flat=True))
    assert not done.person._state.adding and all(not p._state.adding for p in done.written)
    [entry] = AuditEntry.objects.filter(person_id=person.pk)
    assert (entry.action, entry.channel, entry.actor_id, entry.object_type, entry.object_id) == (
        "create", "api", chain.pk, "people.person", str(person.pk))
    assert list(person.tags.values_list("name", flat=True)) == list(tags)
    _chain_is_one_line()


@pytest.mark.parametrize("in_transaction", [False, True], ids=["autocommit", "in-transaction"])
def test_a_suppressed_identifier_is_refused_with_nothing_written(chain, in_transaction):
    # given
    suppress(phones=["+447911123456"])
    people, entries = Person.objects.count(), AuditEntry.objects.count()
    head = AuditChainHead.objects.values_list("seq", "hash").get()
    # when / then
    with pytest.raises(Suppressed):
        if in_transaction:
            with transaction.atomic():
                _create(chain)
        else:
            _create(chain)
    assert (Person.objects.count(), AuditEntry.objects.count()) == (people, entries)
    assert AuditChainHead.objects.values_list("seq", "hash").get() == head
    assert not ContactPoint.objects.filter(normalised="+447911123456").exists()


@postgres_only
def test_the_duplicate_check_refreshes_a_stale_guess(chain):
    """The head this connection moved last is stale once another process appended (most creates,
    with two server workers): the duplicate check's statement reads the head, so the append that
    follows does not miss."""
    # given: another connection appended since this one last did
    _create(chain, contact_points=[EMAIL])  # caches warm, as on a server
    _stale_guess()
    entries = AuditEntry.objects.count()
    # when
    with CaptureQueriesContext(connection) as queries:
        done = _create(chain, contact_points=[services.ContactPointInput(kind="email", value="ada2@example.com"),
                                              PHONE])
    # then: one try, and it wrote everything
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) == 2, statements
    assert "UNION ALL SELECT -2" in statements[0] and statements[1].startswith("WITH moved AS (UPDATE")
    assert AuditEntry.objects.count() == entries + 1
    assert ContactPoint.objects.filter(person_id=done.person.pk).count() == 2
    _chain_is_one_line()


@postgres_only
def test_an_autocommit_create_is_two_statements_and_no_transaction(chain, monkeypatch):
    """Pins the create's statements: the duplicate check (with the suppression lookup), then the
    person, points and entry together. A BEGIN/COMMIT or a separate insert coming back fails here."""
    _create(chain, contact_points=[EMAIL])  # this connection now knows the head
    commits = []
    wrapper = connections["default"]
    real_commit = wrapper.commit
    monkeypatch.setattr(wrapper, "commit", lambda: (commits.append(1), real_commit())[1])
    # when
    with CaptureQueriesContext(connection) as queries:
        done = _create(chain, contact_points=[services.ContactPointInput(kind="email", value="ada2@example.com"),
                                              PHONE])
    # then
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) == 2, statements
    together = statements[1]
    assert together.startswith("WITH moved AS (UPDATE") and "FOR UPDATE" not in together
    assert '"people_person"' in together and '"people_contactpoint"' in together
    assert commits == [] and not wrapper.in_atomic_block
    assert AuditEntry.objects.filter(person_id=done.person.pk, action="create").count() == 1
    _chain_is_one_line()


@postgres_only
@pytest.mark.parametrize("in_transaction", [False, True], ids=["autocommit", "in-transaction"])
def test_a_stale_guess_is_tried_again_and_appends_exactly_one_entry(chain, in_transaction, monkeypatch):
    # given: the head moves after the duplicate check read it (as another process's append would)
    from rapport.identity import realtime

    real_policy = realtime.apply_policy
    monkeypatch.setattr(realtime, "apply_policy", lambda **kw: (_stale_guess(), real_policy(**kw))[1])
    entries = AuditEntry.objects.count()
    # when
    with CaptureQueriesContext(connection) as queries:
        if in_transaction:
            with transaction.atomic():
                done = _create(chain)
        else:
            done = _create(chain)
    # then: the missed try wrote nothing and read the head; the second wrote everything
    together = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("WITH moved AS")]
    assert len(together) == 2, together
    assert ("FOR UPDATE" in together[0]) is in_transaction
    assert "FOR UPDATE" in together[1]  # autocommit too: the try after a miss is in a transaction
    assert AuditEntry.objects.count() == entries + 1
    assert Person.objects.filter(pk=done.person.pk).count() == 1
    assert ContactPoint.objects.filter(person_id=done.person.pk).count() == 2
    _chain_is_one_line()


@postgres_only
def test_a_head_that_keeps_moving_falls_back_to_the_transaction_path(chain, monkeypatch):
    # given: every try finds the head moved again
    real = audit._after_params
    tries = []

    def always_stale(plan, row, last, key):  # type: ignore[no-untyped-def]
        tries.append(last)
        return real(plan, row, (last[0] - 1, "0" * 64), key)  # never the head: the statement reads it

    monkeypatch.setattr(audit, "_after_params", always_stale)
    people = Person.objects.count()
    # when
    done = _create(chain)
    # then: AFTER_ATTEMPTS tries wrote nothing; the transaction path wrote the person once (its
    # own append tried AFTER_ATTEMPTS more times before reserving)
    assert len(tries) == 2 * audit.AFTER_ATTEMPTS
    assert Person.objects.count() == people + 1
    assert ContactPoint.objects.filter(person_id=done.person.pk).count() == 2
    assert AuditEntry.objects.filter(person_id=done.person.pk).count() == 1
    _chain_is_one_line()


@postgres_only
@pytest.mark.parametrize("in_transaction", [False, True], ids=["autocommit", "in-transaction"])
def test_threads_creating_at_once_leave_one_chain_and_every_person_audited(chain, in_transaction):
    """Four connections create at once, so most guesses are stale; some creates are tagged (the
    transaction path) and some threads also append views, as the server's requests would."""
    start = threading.Barrier(4)
    errors: list[BaseException] = []
    made: list[str] = []

    def work(n: int) -> None:
        try:
            start.wait()
            for i in range(15):
                points = [services.ContactPointInput(kind="email", value=f"p{n}.{i}@example.com")]
                tags = ("t",) if i % 5 == 0 else ()
                if in_transaction:
                    with transaction.atomic():
                        done = _create(chain, contact_points=points, tags=tags)
                else:
                    done = _create(chain, contact_points=points, tags=tags)
                made.append(str(done.person.pk))
                if n % 2:
                    audit.record_person_access(actor=chain, action="view", people=[done.person], channel="api")
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert len(made) == 60
    created = set(AuditEntry.objects.filter(action="create", person_id__in=made).values_list("object_id", flat=True))
    assert created == set(made)
    assert AuditEntry.objects.filter(action="create", person_id__in=made).count() == 60
    assert Person.objects.filter(pk__in=made).count() == 60
    assert ContactPoint.objects.filter(person_id__in=made).count() == 60
    # no person without their entry, no entry without their person
    people = {str(pk) for pk in Person.objects.values_list("pk", flat=True)}
    assert set(AuditEntry.objects.filter(action="create").values_list("object_id", flat=True)) <= people
    _chain_is_one_line()
