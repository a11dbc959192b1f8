"""A1 — input and output shapes of the privacy API. No rules here: the services decide."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from rapport.core.api.conventions import StrictFieldsMixin
from rapport.privacy.models import (
    Channel,
    ConsentBasis,
    ConsentEvent,
    ConsentSource,
    ConsentState,
    ContactPreference,
    NoticeVersion,
    RightsRequest,
    RightsRequestEvent,
    SecurityNotice,
    SuppressionList,
)
from rapport.privacy.purposes import PURPOSES
from rapport.privacy.rights import CHANNELS


class Strict(StrictFieldsMixin, serializers.Serializer):
    pass


# ------------------------------------------------------------------------------ consent


class ConsentEventOut(serializers.ModelSerializer):
    notice_version = serializers.SerializerMethodField()
    captured_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ConsentEvent
        fields = ["id", "receipt_id", "person", "purpose", "channel", "granted", "pending", "lawful_basis",
                  "source", "captured_by", "notice_version", "ip", "user_agent", "proof", "occurred_at",
                  "created_at"]

    def get_notice_version(self, event: ConsentEvent) -> str | None:
        version = event.notice_version
        return f"{version.notice.key} v{version.version}" if version else None


class ConsentIn(Strict):
    purpose = serializers.ChoiceField(choices=list(PURPOSES))
    channel = serializers.ChoiceField(choices=Channel.values)
    granted = serializers.BooleanField()
    lawful_basis = serializers.ChoiceField(choices=ConsentBasis.values, default=ConsentBasis.CONSENT)
    source = serializers.ChoiceField(choices=[ConsentSource.API, ConsentSource.FORM, ConsentSource.IMPORT,
                                              ConsentSource.PORTAL, ConsentSource.STAFF], default=ConsentSource.API)
    notice_version = serializers.PrimaryKeyRelatedField(queryset=NoticeVersion.objects.all(), required=False,
                                                        allow_null=True)
    ip = serializers.IPAddressField(required=False, allow_null=True)
    user_agent = serializers.CharField(required=False, allow_blank=True, max_length=1000)
    proof = serializers.DictField(required=False)
    occurred_at = serializers.DateTimeField(required=False)
    double_opt_in = serializers.BooleanField(required=False, allow_null=True, default=None)


class ConsentStateOut(serializers.ModelSerializer):
    class Meta:
        model = ConsentState
        fields = ["purpose", "channel", "status", "lawful_basis", "since", "expires_at"]


# --------------------------------------------------------------------------- preferences


PREFERENCE_FIELDS = ["preferred_channel", "email_allowed", "phone_allowed", "sms_allowed", "post_allowed",
                     "social_allowed", "max_per_week", "quiet_start", "quiet_end"]


class PreferencesIn(Strict):
    preferred_channel = serializers.ChoiceField(choices=["", *Channel.values], required=False, allow_blank=True)
    email_allowed = serializers.BooleanField(required=False)
    phone_allowed = serializers.BooleanField(required=False)
    sms_allowed = serializers.BooleanField(required=False)
    post_allowed = serializers.BooleanField(required=False)
    social_allowed = serializers.BooleanField(required=False)
    max_per_week = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=50)
    quiet_start = serializers.TimeField(required=False, allow_null=True)
    quiet_end = serializers.TimeField(required=False, allow_null=True)
    topics = serializers.DictField(child=serializers.BooleanField(), required=False)


def preferences_out(preference: ContactPreference | None, topics: dict[str, bool]) -> dict[str, Any]:
    if preference is None:
        data: dict[str, Any] = {name: None for name in PREFERENCE_FIELDS}
        data.update({f"{c}_allowed": True for c in Channel.values})
        data["preferred_channel"] = ""
        data["version"] = 0
    else:
        data = {name: getattr(preference, name) for name in PREFERENCE_FIELDS}
        for name in ("quiet_start", "quiet_end"):
            data[name] = data[name].strftime("%H:%M") if data[name] else None
        data["version"] = preference.version
    data["topics"] = topics
    return data


# ------------------------------------------------------------------------------ the gate


class DecideIn(Strict):
    person = serializers.UUIDField()
    channel = serializers.ChoiceField(choices=Channel.values)
    purpose = serializers.ChoiceField(choices=list(PURPOSES))
    at = serializers.DateTimeField(required=False)


class DecideBatchIn(Strict):
    MAX = 10_000

    people = serializers.ListField(child=serializers.UUIDField(), min_length=1, max_length=MAX)
    channel = serializers.ChoiceField(choices=Channel.values)
    purpose = serializers.ChoiceField(choices=list(PURPOSES))
    at = serializers.DateTimeField(required=False)


def decision_out(person_id: Any, decision: Any) -> dict[str, Any]:
    return {"person": str(person_id), "allowed": decision.allowed,
            "reasons": [{"code": r.code, "message": r.message} for r in decision.reasons]}


# ------------------------------------------------------------------------ rights requests


class RightsRequestOut(serializers.ModelSerializer):
    overdue = serializers.SerializerMethodField()
    verified_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    completed_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    events = serializers.SerializerMethodField()

    class Meta:
        model = RightsRequest
        fields = ["id", "kind", "status", "person", "requester_name", "requester_contact", "channel", "details",
                  "received_on", "due_on", "overdue", "extension_reason", "extended_at", "verification_method",
                  "verified_at", "verified_by", "completed_at", "completed_by", "outcome", "version",
                  "created_at", "updated_at", "events"]

    def get_overdue(self, request: RightsRequest) -> bool:
        from rapport.privacy.rights import is_overdue

        return is_overdue(request)

    def get_events(self, request: RightsRequest) -> list[dict[str, Any]]:
        if not self.context.get("with_events"):
            return []
        return [{"action": e.action, "actor": e.actor.get_username() if e.actor else None, "note": e.note,
                 "at": e.at.isoformat()} for e in RightsRequestEvent.objects.filter(request=request)
                .select_related("actor")]


class RightsRequestIn(Strict):
    kind = serializers.ChoiceField(choices=RightsRequest.Kind.values)
    person = serializers.UUIDField(required=False, allow_null=True)
    requester_name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    requester_contact = serializers.CharField(required=False, allow_blank=True, max_length=320)
    channel = serializers.ChoiceField(choices=list(CHANNELS), default="email")
    details = serializers.CharField(required=False, allow_blank=True)
    received_on = serializers.DateField(required=False)


class RightsRequestPatch(Strict):
    person = serializers.UUIDField(required=False, allow_null=True)
    requester_name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    requester_contact = serializers.CharField(required=False, allow_blank=True, max_length=320)
    channel = serializers.ChoiceField(choices=list(CHANNELS), required=False)
    details = serializers.CharField(required=False, allow_blank=True)


class VerifyIn(Strict):
    method = serializers.CharField(max_length=100)
    note = serializers.CharField(required=False, allow_blank=True)


class ReasonIn(Strict):
    reason = serializers.CharField()


class CancelIn(Strict):
    reason = serializers.CharField(required=False, allow_blank=True)


class ExecuteIn(Strict):
    note = serializers.CharField(required=False, allow_blank=True)
    changes = serializers.DictField(required=False, help_text="Rectification: person fields to correct")


# ---------------------------------------------------------------------------- suppression


class SuppressIn(Strict):
    emails = serializers.ListField(child=serializers.CharField(max_length=320), required=False, max_length=1000)
    phones = serializers.ListField(child=serializers.CharField(max_length=64), required=False, max_length=1000)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=200)


class SuppressionListIn(Strict):
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=SuppressionList.Kind.values)
    screened_on = serializers.DateField()
    hashed = serializers.BooleanField(default=False)
    values = serializers.ListField(child=serializers.CharField(max_length=400), min_length=1, max_length=200_000)


class SuppressionListOut(serializers.ModelSerializer):
    class Meta:
        model = SuppressionList
        fields = ["id", "name", "kind", "screened_on", "entry_count", "created_at"]


class SuppressionCheckIn(Strict):
    emails = serializers.ListField(child=serializers.CharField(max_length=320), required=False, max_length=100)
    phones = serializers.ListField(child=serializers.CharField(max_length=64), required=False, max_length=100)


# -------------------------------------------------------------------------------- notices


class NoticeIn(Strict):
    key = serializers.SlugField(max_length=64)
    title = serializers.CharField(max_length=200)
    text = serializers.CharField()
    purposes = serializers.ListField(child=serializers.ChoiceField(choices=list(PURPOSES)), required=False)


class NoticeVersionOut(serializers.ModelSerializer):
    key = serializers.CharField(source="notice.key")
    title = serializers.CharField(source="notice.title")
    purposes = serializers.JSONField(source="notice.purposes")

    class Meta:
        model = NoticeVersion
        fields = ["id", "key", "title", "purposes", "version", "text", "published_at", "created_at"]


class SecurityNoticeIn(Strict):
    subject = serializers.CharField(max_length=200)
    body = serializers.CharField()
    people = serializers.ListField(child=serializers.UUIDField(), min_length=1, max_length=100_000)
    channel = serializers.ChoiceField(choices=[Channel.EMAIL, Channel.SMS, Channel.POST], default=Channel.EMAIL)


class SecurityNoticeOut(serializers.ModelSerializer):
    class Meta:
        model = SecurityNotice
        fields = ["id", "subject", "channel", "audience_size", "sent_count", "skipped", "created_at"]
