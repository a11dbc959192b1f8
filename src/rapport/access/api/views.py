"""S1/S5/S8 — API resources of the access app: who am I, attachments, the audit trail.

Attachments follow their record's visibility (``attachments_visible_to``): anything the
caller may not see is a 404 for every verb, never a 403 that would confirm it exists.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from rapport.access import selectors, services
from rapport.access.models import ApiToken, Attachment, AuditEntry
from rapport.access.permissions import OBJECT_TYPES, has_permission
from rapport.access.policy import access_context
from rapport.access.sharing import RECORD_TYPES, restrict
from rapport.core.api.pagination import CreatedCursorPagination


class MeView(APIView):
    """The caller: role, permissions per object type, and the token's scopes."""

    class OutputSerializer(serializers.Serializer):
        id = serializers.UUIDField()
        username = serializers.CharField()
        role = serializers.CharField()
        administrator = serializers.BooleanField()
        permissions = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
        scopes = serializers.ListField(child=serializers.CharField(), allow_null=True)

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request) -> Response:
        ctx = access_context(request.user)
        permissions = {label: [a for a in ot.actions if has_permission(request.user, label, a)]
                       for label, ot in OBJECT_TYPES.items()}
        token = request.auth if isinstance(request.auth, ApiToken) else None
        return Response(self.OutputSerializer({
            "id": request.user.pk, "username": request.user.get_username(), "role": ctx.role_name,
            "administrator": ctx.is_administrator,
            "permissions": {k: v for k, v in permissions.items() if v},
            "scopes": list(token.scopes) if token else None,
        }).data)


class AttachmentOutput(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Attachment
        fields = ["id", "object_type", "object_id", "filename", "content_type", "size", "sha256", "restricted",
                  "description", "created_at", "download_url"]

    def get_download_url(self, obj: Attachment) -> str:
        request = self.context.get("request")
        path = f"/api/v1/attachments/{obj.pk}/content/"
        return request.build_absolute_uri(path) if request else path


class AttachmentListView(APIView):
    """Files on records: list those you may see; upload (multipart) to records you may change."""

    object_type = "access.attachment"
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    class UploadSerializer(serializers.Serializer):
        object_type = serializers.ChoiceField(choices=[])
        object_id = serializers.UUIDField()
        file = serializers.FileField()
        restricted = serializers.BooleanField(default=False)
        description = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.fields["object_type"].choices = list(RECORD_TYPES)

    @extend_schema(responses=AttachmentOutput(many=True))
    def get(self, request: Request) -> Response:
        attachments = selectors.attachments_visible_to(request.user)
        object_type = request.query_params.get("object_type")
        object_id = request.query_params.get("object_id")
        if object_type:
            attachments = attachments.filter(object_type=object_type.lower())
        if object_id:
            try:
                attachments = attachments.filter(object_id=serializers.UUIDField().to_internal_value(object_id))
            except serializers.ValidationError as err:
                raise serializers.ValidationError({"object_id": err.detail}) from err
        paginator = CreatedCursorPagination()
        page = paginator.paginate_queryset(attachments, request, view=self)
        return paginator.get_paginated_response(AttachmentOutput(page, many=True, context={"request": request}).data)

    @extend_schema(request=UploadSerializer, responses={201: AttachmentOutput})
    def post(self, request: Request) -> Response:
        data = self.UploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        record_type = RECORD_TYPES[data.validated_data["object_type"]]
        record = restrict(record_type.model._default_manager.all(), request.user, "read").filter(
            pk=data.validated_data["object_id"]).first()
        if record is None:
            raise Http404("No such record.")
        attachment = services.attachment_add(
            actor=request.user, record=record, upload=data.validated_data["file"],
            restricted=data.validated_data["restricted"], description=data.validated_data["description"],
            request=request, channel="api")
        return Response(AttachmentOutput(attachment, context={"request": request}).data,
                        status=status.HTTP_201_CREATED)


class AttachmentDetailView(APIView):
    object_type = "access.attachment"

    def _get(self, request: Request, pk: Any) -> Attachment:
        try:
            return selectors.attachment_get(user=request.user, attachment_id=pk)
        except Attachment.DoesNotExist as err:
            raise Http404("No such attachment.") from err

    @extend_schema(responses=AttachmentOutput)
    def get(self, request: Request, pk: Any) -> Response:
        return Response(AttachmentOutput(self._get(request, pk), context={"request": request}).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: Any) -> Response:
        services.attachment_delete(actor=request.user, attachment=self._get(request, pk), request=request,
                                   channel="api")
        return Response(status=status.HTTP_204_NO_CONTENT)


class AttachmentContentView(APIView):
    object_type = "access.attachment"

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def get(self, request: Request, pk: Any) -> HttpResponse:
        try:
            attachment = selectors.attachment_get(user=request.user, attachment_id=pk)
        except Attachment.DoesNotExist as err:
            raise Http404("No such attachment.") from err
        data = services.attachment_read(user=request.user, attachment=attachment, request=request, channel="api")
        response = HttpResponse(data, content_type=attachment.content_type or "application/octet-stream")
        response["Content-Disposition"] = f'attachment; filename="{attachment.filename.encode("ascii", "ignore").decode() or "file"}"'
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "private, no-store"
        return response


class AuditEntryOutput(serializers.ModelSerializer):
    class Meta:
        model = AuditEntry
        fields = ["seq", "occurred_at", "actor_id", "actor_name", "action", "object_type", "object_id", "person_id",
                  "channel", "ip", "reason", "request_id"]


class AuditPagination(CreatedCursorPagination):
    ordering = ("-seq",)


class AuditListView(APIView):
    """The access audit trail (Auditors, Administrators); filters: actor, person_id, action, channel."""

    object_type = "access.auditentry"

    @extend_schema(responses=AuditEntryOutput(many=True))
    def get(self, request: Request) -> Response:
        params = request.query_params
        person_id = params.get("person_id") or None
        if person_id:
            person_id = serializers.UUIDField().to_internal_value(person_id)
        entries = selectors.audit_search(user=request.user, actor=params.get("actor", ""), person_id=person_id,
                                         action=params.get("action", ""), channel=params.get("channel", ""))
        paginator = AuditPagination()
        page = paginator.paginate_queryset(entries, request, view=self)
        return paginator.get_paginated_response(AuditEntryOutput(page, many=True).data)
