"""S5 — break-glass: restricted (VIP) records ask roles that require it for a reason first."""

from __future__ import annotations

from django.urls import reverse

from rapport.access import services
from rapport.access.models import AuditEntry
from rapport.core.testing import make_person


def test_restricted_record_requires_a_reason_once_per_window(client, user_in, admin_user):
    # given
    desk, boss = user_in("front-desk", "desk"), user_in("sales-manager", "boss")
    vip = make_person(actor=admin_user, given_name="Famous")
    services.record_restrict(actor=admin_user, record=vip, note="celebrity")
    # when / then
    assert services.require_reason(desk, vip)
    assert not services.require_reason(boss, vip)  # the manager's role does not ask
    client.force_login(desk)
    url = reverse("access:break-glass", kwargs={"pk": vip.pk})
    assert client.get(url).status_code == 200
    short = client.post(url, {"reason": "because"})
    assert short.status_code == 400
    ok = client.post(url, {"reason": "Caller on the phone about order 1234", "next": "/people/"})
    assert ok.status_code == 302 and ok["Location"] == "/people/"
    entry = AuditEntry.objects.get(action="break_glass")
    assert entry.reason == "Caller on the phone about order 1234" and entry.person_id == vip.pk
    assert not services.require_reason(desk, vip)


def test_unrestricted_records_need_no_reason(user_in, admin_user, client):
    desk = user_in("front-desk", "desk")
    plain = make_person(actor=admin_user, given_name="Plain")
    assert not services.require_reason(desk, plain)
    client.force_login(desk)
    response = client.get(reverse("access:break-glass", kwargs={"pk": plain.pk}))
    assert response.status_code == 302


def test_restricting_is_audited_and_needs_change_rights(user_in, admin_user):
    import pytest

    rep = user_in("sales-rep", "rep")
    other = make_person(actor=admin_user, given_name="Other")
    with pytest.raises(services.NotAllowed):
        services.record_restrict(actor=rep, record=other)
    services.record_restrict(actor=admin_user, record=other)
    services.record_unrestrict(actor=admin_user, record=other)
    assert list(AuditEntry.objects.filter(person_id=other.pk, action__in=["restrict", "unrestrict"])
                .order_by("seq").values_list("action", flat=True)) == ["restrict", "unrestrict"]
