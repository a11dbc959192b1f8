"""A1 — input and output shapes of the people API. No rules here: the services decide.

Input serializers are strict (an unknown key is a 400 naming it); output serializers read
only what the selectors prefetched, so a page of any size costs the same queries.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from django.utils import timezone
from rest_framework import ISO_8601, serializers
from rest_framework.settings import api_settings

from rapport.core.api.conventions import StrictFieldsMixin
from rapport.people.models import ContactPoint, Employment, Interaction, Organisation, Person


class Strict(StrictFieldsMixin, serializers.Serializer):
    pass


# ---------------------------------------------------------------------------------- output


class ContactPointOut(serializers.ModelSerializer):
    class Meta:
        model = ContactPoint
        fields = ["id", "kind", "label", "value", "normalised", "source", "verified", "primary",
                  "created_at", "updated_at"]


class EmploymentOut(serializers.ModelSerializer):
    organisation_name = serializers.CharField(source="organisation.name", read_only=True)
    current = serializers.BooleanField(source="is_current", read_only=True)

    class Meta:
        model = Employment
        fields = ["id", "person", "organisation", "organisation_name", "title", "start_date", "end_date",
                  "current", "created_at", "updated_at"]


class _TagNames(serializers.Field):
    def to_representation(self, value: Any) -> list[str]:
        return [tag.name for tag in value.all()]


class PersonOut(serializers.ModelSerializer):
    display_name = serializers.CharField(read_only=True)
    tags = _TagNames(read_only=True)
    contact_points = ContactPointOut(many=True, read_only=True)
    employments = EmploymentOut(many=True, read_only=True)

    class Meta:
        model = Person
        fields = ["id", "display_name", "honorific", "given_name", "middle_names", "family_name",
                  "preferred_name", "language", "timezone", "country", "notes", "tags", "owner",
                  "birth_date", "gender", "income_band", "version", "contact_points", "employments",
                  "created_at", "updated_at"]

    def to_representation(self, instance: Person) -> dict[str, Any]:
        data = super().to_representation(instance)
        hidden = self.context.get("hidden", frozenset())  # S3: hidden means absent, not blank
        return {key: value for key, value in data.items() if key not in hidden}


class OrganisationOut(serializers.ModelSerializer):
    parent_name = serializers.CharField(source="parent.name", read_only=True, default=None)
    tags = _TagNames(read_only=True)

    class Meta:
        model = Organisation
        fields = ["id", "name", "domain", "parent", "parent_name", "notes", "tags", "owner", "version",
                  "created_at", "updated_at"]


class InteractionOut(serializers.ModelSerializer):
    class Meta:
        model = Interaction
        fields = ["id", "person", "organisation", "channel", "kind", "direction", "occurred_at", "summary",
                  "body", "sentiment", "source_system", "external_id", "created_by", "created_at",
                  "updated_at"]


# ----------------------------------------------------------------------------------- input


class ContactPointIn(Strict):
    kind = serializers.ChoiceField(choices=ContactPoint.Kind.choices)
    value = serializers.CharField(max_length=1000)
    label = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    source = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    verified = serializers.BooleanField(required=False, default=False)
    primary = serializers.BooleanField(required=False, default=False)


class ContactPointPatch(Strict):
    value = serializers.CharField(max_length=1000, required=False)
    label = serializers.CharField(max_length=32, required=False, allow_blank=True)
    source = serializers.CharField(max_length=64, required=False, allow_blank=True)
    verified = serializers.BooleanField(required=False)
    primary = serializers.BooleanField(required=False)


def _text(max_length: int) -> serializers.CharField:
    return serializers.CharField(max_length=max_length, required=False, allow_blank=True, default="")


class PersonIn(Strict):
    honorific = _text(32)
    given_name = _text(100)
    middle_names = _text(100)
    family_name = _text(100)
    preferred_name = _text(100)
    language = _text(16)
    timezone = _text(64)
    country = _text(2)
    notes = serializers.CharField(required=False, allow_blank=True, default="")
    tags = serializers.ListField(child=serializers.CharField(max_length=64), required=False, default=list)
    contact_points = ContactPointIn(many=True, required=False, default=list)


def person_in(data: Any) -> dict[str, Any]:
    """``PersonIn(data=data)``'s validated data. Plain input — known keys, strings within their
    lengths, real booleans, a known kind — is checked here without DRF building its fields
    (deep copies of every field, nested ones included, on every create); anything else goes
    through ``PersonIn``, which words every error. ``test_api_contract`` compares the two.
    """
    plain = plain_person_in(data)
    if plain is not None:
        return plain
    serializer = PersonIn(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


_PERSON_TEXT = {"honorific": 32, "given_name": 100, "middle_names": 100, "family_name": 100,
                "preferred_name": 100, "language": 16, "timezone": 64, "country": 2, "notes": None}
_POINT_TEXT = {"label": 32, "source": 64}
_POINT_FLAGS = ("verified", "primary")
_KINDS = frozenset(ContactPoint.Kind.values)
_NOT_PLAIN = re.compile("[\x00\ud800-\udfff]")  # DRF refuses these with its own messages


def plain_person_in(data: Any) -> dict[str, Any] | None:
    """What ``PersonIn`` would validate ``data`` to, or None when DRF must decide."""
    if type(data) is not dict or not data.keys() <= _PERSON_KEYS:
        return None
    out: dict[str, Any] = {}
    for name, max_length in _PERSON_TEXT.items():
        value = _plain_text(data.get(name, ""), max_length)
        if value is None:
            return None
        out[name] = value
    tags = data.get("tags", [])
    if type(tags) is not list:
        return None
    out["tags"] = [_plain_text(tag, 64, allow_blank=False) for tag in tags]
    if None in out["tags"]:
        return None
    points = data.get("contact_points", [])
    if type(points) is not list:
        return None
    out["contact_points"] = []
    for point in points:
        if type(point) is not dict or not point.keys() <= _POINT_KEYS:
            return None
        kind = point.get("kind")
        if type(kind) is not str or kind not in _KINDS:  # a list or dict kind is unhashable
            return None
        value = _plain_text(point.get("value"), 1000, allow_blank=False)
        if value is None:
            return None
        clean = {"kind": point["kind"], "value": value}
        for name, max_length in _POINT_TEXT.items():
            clean[name] = _plain_text(point.get(name, ""), max_length)
            if clean[name] is None:
                return None
        for name in _POINT_FLAGS:
            clean[name] = point.get(name, False)
            if type(clean[name]) is not bool:
                return None
        out["contact_points"].append(clean)
    return out


def _plain_text(value: Any, max_length: int | None, *, allow_blank: bool = True) -> str | None:
    if type(value) is not str or _NOT_PLAIN.search(value):
        return None
    value = value.strip()
    if (max_length is not None and len(value) > max_length) or (not value and not allow_blank):
        return None
    return value


class PersonPatch(Strict):
    honorific = serializers.CharField(max_length=32, required=False, allow_blank=True)
    given_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    middle_names = serializers.CharField(max_length=100, required=False, allow_blank=True)
    family_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    preferred_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    language = serializers.CharField(max_length=16, required=False, allow_blank=True)
    timezone = serializers.CharField(max_length=64, required=False, allow_blank=True)
    country = serializers.CharField(max_length=2, required=False, allow_blank=True)
    notes = serializers.CharField(required=False, allow_blank=True)
    birth_date = serializers.DateField(required=False, allow_null=True)
    gender = serializers.ChoiceField(choices=Person.Gender.choices, required=False, allow_null=True)
    income_band = serializers.ChoiceField(choices=Person.IncomeBand.choices, required=False, allow_null=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=64), required=False)


_PERSON_KEYS = frozenset(PersonIn().fields)
_POINT_KEYS = frozenset(ContactPointIn().fields)


class PersonFilter(Strict):
    """The list filters (A1); cursor and page_size are the paginator's and pass through."""

    name = serializers.CharField(required=False, allow_blank=True, default="")
    email = serializers.CharField(required=False, allow_blank=True, default="")
    phone = serializers.CharField(required=False, allow_blank=True, default="")
    organisation = serializers.CharField(required=False, allow_blank=True, default="")
    tag = serializers.CharField(required=False, allow_blank=True, default="")
    country = serializers.CharField(required=False, allow_blank=True, default="")
    updated_since = serializers.DateTimeField(required=False, allow_null=True, default=None)


class OrganisationIn(Strict):
    name = serializers.CharField(max_length=200)
    domain = _text(253)
    parent = serializers.UUIDField(required=False, allow_null=True, default=None)
    notes = serializers.CharField(required=False, allow_blank=True, default="")
    tags = serializers.ListField(child=serializers.CharField(max_length=64), required=False, default=list)


class OrganisationPatch(Strict):
    name = serializers.CharField(max_length=200, required=False)
    domain = serializers.CharField(max_length=253, required=False, allow_blank=True)
    parent = serializers.UUIDField(required=False, allow_null=True)
    notes = serializers.CharField(required=False, allow_blank=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=64), required=False)


class OrganisationFilter(Strict):
    name = serializers.CharField(required=False, allow_blank=True, default="")
    domain = serializers.CharField(required=False, allow_blank=True, default="")
    parent = serializers.UUIDField(required=False, allow_null=True, default=None)
    tag = serializers.CharField(required=False, allow_blank=True, default="")
    updated_since = serializers.DateTimeField(required=False, allow_null=True, default=None)


class EmploymentIn(Strict):
    person = serializers.UUIDField()
    organisation = serializers.UUIDField()
    title = _text(200)
    start_date = serializers.DateField(required=False, allow_null=True, default=None)
    end_other_jobs = serializers.BooleanField(required=False, default=True)


class EmploymentPatch(Strict):
    title = serializers.CharField(max_length=200, required=False, allow_blank=True)
    start_date = serializers.DateField(required=False, allow_null=True)
    end_date = serializers.DateField(required=False, allow_null=True)


class EmploymentFilter(Strict):
    person = serializers.UUIDField(required=False, allow_null=True, default=None)
    organisation = serializers.UUIDField(required=False, allow_null=True, default=None)
    current = serializers.BooleanField(required=False, allow_null=True, default=None)


class InteractionIn(Strict):
    person = serializers.UUIDField()
    organisation = serializers.UUIDField(required=False, allow_null=True, default=None)
    channel = serializers.ChoiceField(choices=Interaction.Channel.choices)
    kind = serializers.ChoiceField(choices=Interaction.Kind.choices)
    direction = serializers.ChoiceField(choices=Interaction.Direction.choices, required=False,
                                        default=Interaction.Direction.INBOUND)
    occurred_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    summary = serializers.CharField(max_length=300)
    body = serializers.CharField(required=False, allow_blank=True, default="")
    sentiment = serializers.ChoiceField(choices=Interaction.Sentiment.choices, required=False,
                                        default=Interaction.Sentiment.NEUTRAL)
    source_system = _text(64)
    external_id = _text(200)


class InteractionPatch(Strict):
    channel = serializers.ChoiceField(choices=Interaction.Channel.choices, required=False)
    kind = serializers.ChoiceField(choices=Interaction.Kind.choices, required=False)
    direction = serializers.ChoiceField(choices=Interaction.Direction.choices, required=False)
    occurred_at = serializers.DateTimeField(required=False)
    summary = serializers.CharField(max_length=300, required=False)
    body = serializers.CharField(required=False, allow_blank=True)
    sentiment = serializers.ChoiceField(choices=Interaction.Sentiment.choices, required=False)


class InteractionFilter(Strict):
    person = serializers.UUIDField()
    channel = serializers.ChoiceField(choices=Interaction.Channel.choices, required=False, allow_blank=True,
                                      default="")


# ------------------------------------------------------------------ fast output (lists)
#
# DRF's ModelSerializer rebuilds its fields for every instance of a nested serializer, which
# costs more than the queries for a page of 100 people. The views render with these plain
# functions; the classes above stay the documented schema, and
# ``test_api_contract.test_fast_output_equals_the_schema_serializers`` keeps the two identical.

_datetime = serializers.DateTimeField()
_date = serializers.DateField()


def timestamp_renderer() -> Callable[[Any], str | None]:
    """``DateTimeField().to_representation`` for the ISO 8601 default, at a fraction of the cost:
    the current time zone and format looked up once, for a page of timestamps.

    A list page renders about 600 timestamps; DRF's field looks up the format, the current
    time zone and awareness for each. Anything but an aware datetime with the ISO format
    takes DRF's own path.
    """
    if str(api_settings.DATETIME_FORMAT).lower() != ISO_8601:
        return lambda value: None if value is None else _datetime.to_representation(value)
    zone = timezone.get_current_timezone()

    def when(value: Any) -> str | None:
        if value is None:
            return None
        if getattr(value, "tzinfo", None) is None or not isinstance(value, datetime.datetime):
            return _datetime.to_representation(value)
        text = value.astimezone(zone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return when


def _day(value: Any) -> str | None:
    return _date.to_representation(value) if value is not None else None


def contact_point_out(point: ContactPoint | dict[str, Any], *,
                      when: Callable[[Any], str | None] | None = None) -> dict[str, Any]:
    """A contact point from a model instance or from a ``values()`` row (``CONTACT_POINT_COLUMNS``).

    ``when`` renders its timestamps (``timestamp_renderer()``, made once for a person's points)."""
    when = when or timestamp_renderer()
    row = point if isinstance(point, dict) else vars(point)
    return {"id": str(row["id"]), "kind": row["kind"], "label": row["label"], "value": row["value"],
            "normalised": row["normalised"], "source": row["source"], "verified": row["verified"],
            "primary": row["primary"], "created_at": when(row["created_at"]), "updated_at": when(row["updated_at"])}


def employment_out(job: Employment | dict[str, Any], *,
                   when: Callable[[Any], str | None] | None = None) -> dict[str, Any]:
    """A job from a model instance (organisation loaded) or from a ``values()`` row (``JOB_COLUMNS``)."""
    when = when or timestamp_renderer()
    if isinstance(job, dict):
        row, organisation_name = job, job["organisation__name"]
    else:
        row, organisation_name = vars(job), job.organisation.name
    return {"id": str(row["id"]), "person": str(row["person_id"]), "organisation": str(row["organisation_id"]),
            "organisation_name": organisation_name, "title": row["title"], "start_date": _day(row["start_date"]),
            "end_date": _day(row["end_date"]), "current": row["end_date"] is None,
            "created_at": when(row["created_at"]), "updated_at": when(row["updated_at"])}


PERSON_COLUMNS = ("id", "honorific", "given_name", "middle_names", "family_name", "preferred_name", "language",
                  "timezone", "country", "notes", "owner_id", "birth_date", "gender", "income_band", "version",
                  "created_at", "updated_at")


def person_out(person: Person | dict[str, Any], hidden: frozenset[str] = frozenset(), *,
               details: Any = None, when: Callable[[Any], str | None] | None = None) -> dict[str, Any]:
    """``PersonOut(person).data`` without DRF's per-instance field building; ``hidden`` keys left out.

    ``person`` is a model instance or a ``values(*PERSON_COLUMNS)`` row (list pages skip
    building model instances). ``details`` supplies contact points, tags and jobs keyed by
    person id: plain rows (``selectors.person_page_details``) or already rendered
    (``pages.person_details``). Without it they are read from the person's (prefetched)
    relations. ``when`` renders timestamps (``timestamp_renderer()``, made once per page).
    """
    when = when or timestamp_renderer()
    row = person if isinstance(person, dict) else vars(person)
    pk = row["id"]
    if details is not None:
        points, tags, jobs = details.contact_points[pk], details.tags[pk], details.employments[pk]
    else:
        assert isinstance(person, Person), "a row needs its details"
        points, tags, jobs = person.contact_points.all(), [t.name for t in person.tags.all()], person.employments.all()
    if not getattr(details, "rendered", False):
        points = [contact_point_out(p, when=when) for p in points]
        jobs = [employment_out(j, when=when) for j in jobs]
    owner = row["owner_id"]
    data = {
        "id": str(pk), "display_name": _display_name(row), "honorific": row["honorific"],
        "given_name": row["given_name"], "middle_names": row["middle_names"], "family_name": row["family_name"],
        "preferred_name": row["preferred_name"], "language": row["language"], "timezone": row["timezone"],
        "country": row["country"], "notes": row["notes"], "tags": list(tags),
        "owner": str(owner) if owner else None, "birth_date": _day(row["birth_date"]),
        "gender": row["gender"], "income_band": row["income_band"], "version": row["version"],
        "contact_points": points, "employments": jobs,
        "created_at": when(row["created_at"]), "updated_at": when(row["updated_at"]),
    }
    if hidden:
        data = {key: value for key, value in data.items() if key not in hidden}
    return data


def _display_name(row: dict[str, Any]) -> str:
    # The model's own rule, applied to a row.
    return Person.display_name.fget(SimpleNamespace(  # type: ignore[attr-defined]
        preferred_name=row["preferred_name"], given_name=row["given_name"], family_name=row["family_name"]))
