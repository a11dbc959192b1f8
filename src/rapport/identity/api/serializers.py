"""A1 — shapes of the identity API (strict: unknown input fields are a 400)."""

from __future__ import annotations

from rest_framework import serializers

from rapport.core.api.conventions import StrictFieldsMixin
from rapport.identity.merge import CHOICES, STRATEGIES, SURVIVORSHIP_FIELDS
from rapport.identity.models import DuplicateSuggestion, MergeRecord


class PersonRef(serializers.Serializer):
    id = serializers.UUIDField()
    display_name = serializers.CharField()


class EvidenceOut(serializers.Serializer):
    field = serializers.CharField()
    level = serializers.CharField()
    weight = serializers.FloatField()


class SuggestionOut(serializers.ModelSerializer):
    left = PersonRef()
    right = PersonRef()
    evidence = EvidenceOut(many=True)

    class Meta:
        model = DuplicateSuggestion
        fields = ["id", "left", "right", "probability", "evidence", "status", "found_by", "created_at",
                  "decided_at"]


class MergeIn(StrictFieldsMixin, serializers.Serializer):
    survivor = serializers.UUIDField()
    merged = serializers.UUIDField()
    field_choices = serializers.DictField(child=serializers.ChoiceField(choices=CHOICES), required=False,
                                          default=dict)
    strategy = serializers.ChoiceField(choices=STRATEGIES, required=False, default="most_recent")
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")

    def validate_field_choices(self, value: dict) -> dict:
        unknown = sorted(set(value) - set(SURVIVORSHIP_FIELDS))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return value


class RejectIn(StrictFieldsMixin, serializers.Serializer):
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class NotDuplicateIn(StrictFieldsMixin, serializers.Serializer):
    left = serializers.UUIDField()
    right = serializers.UUIDField()
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class MergeRecordOut(serializers.ModelSerializer):
    merged_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    unmerged_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = MergeRecord
        fields = ["id", "survivor", "merged_person_id", "status", "field_choices", "reason", "probability",
                  "merged_by", "created_at", "unmerged_by", "unmerged_at"]


class CandidateCheckIn(StrictFieldsMixin, serializers.Serializer):
    given_name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    family_name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    emails = serializers.ListField(child=serializers.CharField(max_length=320), required=False, default=list,
                                   max_length=20)
    phones = serializers.ListField(child=serializers.CharField(max_length=64), required=False, default=list,
                                   max_length=20)
    threshold = serializers.FloatField(required=False, min_value=0.0, max_value=1.0, default=0.5)

    def validate(self, attrs: dict) -> dict:
        if not (attrs["given_name"] or attrs["family_name"] or attrs["emails"] or attrs["phones"]):
            raise serializers.ValidationError({"given_name": ["Give a name, an email or a phone to check."]})
        return attrs


class UnmergeOut(serializers.Serializer):
    merge = MergeRecordOut()
    survivor = serializers.UUIDField()
    restored = serializers.UUIDField()


class CandidateOut(serializers.Serializer):
    id = serializers.UUIDField()
    display_name = serializers.CharField()
    score = serializers.FloatField()
    evidence = EvidenceOut(many=True)
