"""S8 — attachments: visibility follows the record, the restricted flag, sealed storage, and
downloads only through the authorised view (audited)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from rapport.access import services
from rapport.access.models import Access, Attachment, AuditEntry
from rapport.access.selectors import attachment_list
from rapport.core.testing import make_organisation, make_person, token_client


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def private_people(admin_user):
    services.sharing_default_set(actor=admin_user, object_type="people.person", access=Access.PRIVATE)


def upload(name="contract.pdf", data=b"%PDF-1.4 secret terms", kind="application/pdf"):
    return SimpleUploadedFile(name, data, kind)


def test_stored_sealed_and_served_through_the_view(client, user_in, media):
    # given
    rita = user_in("sales-rep", "rita")
    ada = make_person(actor=rita, given_name="Ada")
    attachment = services.attachment_add(actor=rita, record=ada, upload=upload())
    # then: the bytes on disk are not the file
    stored = (media / attachment.storage_name).read_bytes()
    assert b"secret terms" not in stored and attachment.sha256
    # when: downloaded through the view
    client.force_login(rita)
    response = client.get(reverse("access:attachment-download", kwargs={"pk": attachment.pk}))
    # then
    assert response.status_code == 200 and response.content == b"%PDF-1.4 secret terms"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert AuditEntry.objects.filter(action="view_attachment", person_id=ada.pk).exists()
    # media is not served by any URL
    assert client.get(f"/media/{attachment.storage_name}").status_code == 404


def test_visibility_follows_the_record(client, private_people, user_in):
    rita, sam = user_in("sales-rep", "rita"), user_in("sales-rep", "sam")
    ada = make_person(actor=rita, given_name="Ada")
    attachment = services.attachment_add(actor=rita, record=ada, upload=upload())
    assert attachment_list(user=sam, record=ada) == []
    client.force_login(sam)
    assert client.get(reverse("access:attachment-download", kwargs={"pk": attachment.pk})).status_code == 404
    api = token_client(sam, ["read", "write"])
    assert api.get(f"/api/v1/attachments/{attachment.pk}/").status_code == 404
    assert api.get(f"/api/v1/attachments/{attachment.pk}/content/").status_code == 404
    assert api.delete(f"/api/v1/attachments/{attachment.pk}/").status_code == 404
    # once shared, it follows
    services.record_share(actor=rita, record=ada, user=sam, access=Access.READ)
    assert [a.pk for a in attachment_list(user=sam, record=ada)] == [attachment.pk]


def test_restricted_files_need_owner_uploader_or_permission(user_in):
    rita, sam, boss = user_in("sales-rep", "rita"), user_in("sales-rep", "sam"), user_in("sales-manager", "boss")
    ada = make_person(actor=rita, given_name="Ada")
    secret = services.attachment_add(actor=rita, record=ada, upload=upload(), restricted=True)
    public = services.attachment_add(actor=rita, record=ada, upload=upload("note.txt", b"hi", "text/plain"))
    assert {a.pk for a in attachment_list(user=sam, record=ada)} == {public.pk}
    assert {a.pk for a in attachment_list(user=rita, record=ada)} == {public.pk, secret.pk}
    assert {a.pk for a in attachment_list(user=boss, record=ada)} == {public.pk, secret.pk}


def test_only_those_who_may_change_the_record_attach(user_in):
    rita, mo = user_in("sales-rep", "rita"), user_in("marketing", "mo")
    ada = make_person(actor=rita, given_name="Ada")
    with pytest.raises(services.NotAllowed):
        services.attachment_add(actor=mo, record=ada, upload=upload())


def test_organisation_attachments_and_the_ui_page(client, user_in):
    rita = user_in("sales-rep", "rita")
    acme = make_organisation(actor=rita, name="Acme")
    client.force_login(rita)
    url = reverse("access:attachments", kwargs={"object_type": "people.organisation", "pk": acme.pk})
    response = client.post(url, {"file": upload("price list.csv", b"a,b", "text/csv"), "description": "2027"})
    assert response.status_code == 302
    page = client.get(url).content.decode()
    assert "price list.csv" in page
    assert Attachment.objects.get().object_type == "people.organisation"


def test_empty_and_oversized_files_are_refused(client, user_in, settings):
    rita = user_in("sales-rep", "rita")
    ada = make_person(actor=rita, given_name="Ada")
    with pytest.raises(services.DomainError):
        services.attachment_add(actor=rita, record=ada, upload=upload(data=b""))
    settings.RAPPORT_MAX_ATTACHMENT = 10
    with pytest.raises(services.DomainError):
        services.attachment_add(actor=rita, record=ada, upload=upload(data=b"x" * 11))
    client.force_login(rita)
    response = client.post(reverse("access:attachments", kwargs={"object_type": "people.person", "pk": ada.pk}),
                           {"file": upload(data=b"x" * 11)})
    assert response.status_code == 400 and "Files up to" in response.content.decode()


def test_filenames_are_made_safe(user_in):
    rita = user_in("sales-rep", "rita")
    ada = make_person(actor=rita, given_name="Ada")
    attachment = services.attachment_add(actor=rita, record=ada, upload=upload('../../etc/"pass"wd'))
    assert attachment.filename == "passwd"
