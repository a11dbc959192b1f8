"""A3 — API input and output shapes for imports, mapping templates and exports."""

from __future__ import annotations

from rest_framework import serializers

from rapport.core.api.conventions import StrictFieldsMixin
from rapport.imports.models import Import, ImportIssue, ImportMapping


class ImportOutputSerializer(serializers.ModelSerializer):
    progress_percent = serializers.IntegerField(read_only=True)
    brings_consent = serializers.BooleanField(read_only=True)
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)

    class Meta:
        model = Import
        fields = ["id", "file_name", "file_size", "format", "encoding", "delimiter", "sheet", "sheets", "headers",
                  "sample", "preset", "mapping", "mapping_name", "policy", "consent_purpose", "consent_source",
                  "consent_lawful_basis", "consent_collected_on", "consent_notice_version", "consent_confirmed",
                  "brings_consent", "chunk_size", "total_rows", "next_row", "progress_percent", "counts",
                  "preview", "report_rows", "status", "error", "created_by", "created_at", "started_at",
                  "finished_at", "undone_at"]
        read_only_fields = fields


class ImportUploadSerializer(StrictFieldsMixin, serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True)  # the service explains what is wrong
    encoding = serializers.CharField(required=False, allow_blank=True, default="")
    delimiter = serializers.CharField(required=False, allow_blank=True, default="", max_length=2)
    sheet = serializers.CharField(required=False, allow_blank=True, default="", max_length=100)
    chunk_size = serializers.IntegerField(required=False, min_value=100, max_value=20000, default=None)


class ConsentSerializer(StrictFieldsMixin, serializers.Serializer):
    purpose = serializers.CharField(required=False, allow_blank=True, max_length=64)
    source = serializers.CharField(required=False, allow_blank=True, max_length=200)
    lawful_basis = serializers.CharField(required=False, allow_blank=True, max_length=32)
    collected_on = serializers.DateField(required=False, allow_null=True)
    notice_version = serializers.CharField(required=False, allow_blank=True, max_length=64)
    confirmed = serializers.BooleanField(required=False)


class ImportConfigureSerializer(StrictFieldsMixin, serializers.Serializer):
    mapping = serializers.JSONField(required=False)
    mapping_name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    policy = serializers.ChoiceField(choices=Import.Policy.choices, required=False)
    consent = ConsentSerializer(required=False)
    encoding = serializers.CharField(required=False, allow_blank=True, max_length=32)
    delimiter = serializers.CharField(required=False, allow_blank=True, max_length=2)
    sheet = serializers.CharField(required=False, allow_blank=True, max_length=100)


class ImportIssueSerializer(serializers.ModelSerializer):
    class Meta:
        model = ImportIssue
        fields = ["row", "column", "kind", "message", "phase"]
        read_only_fields = fields


class MappingSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    class Meta:
        model = ImportMapping
        fields = ["id", "name", "mapping", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
