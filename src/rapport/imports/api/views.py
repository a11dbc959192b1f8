"""A3 — the import and export API: upload, configure, preview, run, undo, issues, error file,
mapping templates, and streaming exports of people and organisations.

Views parse and call one service; errors are the services' ``DomainError``s, turned into
RFC 9457 problems by the shared handler. Imports ask the role for ``create`` on people,
exports for ``export`` (and a token for the ``export`` scope).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.files.uploadhandler import FileUploadHandler
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from rapport.core.errors import DomainError
from rapport.imports import exports, selectors, services
from rapport.imports.api import serializers as s
from rapport.imports.mapping import TARGETS
from rapport.imports.models import Import, ImportMapping
from rapport.imports.sources import LineGuard


class _ImportMixin:
    object_type = "people.person"
    object_actions = {"GET": "read", "POST": "create", "PATCH": "create", "PUT": "create", "DELETE": "create"}

    def get_import(self, request: Request, pk: Any) -> Import:
        from django.http import Http404

        try:
            return selectors.import_get(user=request.user, import_id=pk)
        except Import.DoesNotExist as err:
            raise Http404("No such import.") from err


class LineCapUploadHandler(FileUploadHandler):
    """Checks an upload's line lengths as it arrives (``LineGuard``), so a file with a 1 GB
    line is refused after its first MiBs instead of being received and stored in full."""

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.guard = LineGuard()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.guard.feed(raw_data)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler (memory or temporary file) holds the upload


class ImportListCreate(_ImportMixin, generics.ListAPIView):
    """Your imports (newest first); POST a file (multipart) to start one."""

    serializer_class = s.ImportOutputSerializer
    parser_classes = [MultiPartParser, FormParser]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        if request.method == "POST":  # before authentication, which may parse the body (CSRF)
            request._request.upload_handlers.insert(0, LineCapUploadHandler(request._request))
        super().initial(request, *args, **kwargs)

    def get_queryset(self) -> Any:
        return selectors.import_list(user=self.request.user)

    @extend_schema(request=s.ImportUploadSerializer, responses={201: s.ImportOutputSerializer})
    def post(self, request: Request) -> Response:
        data = s.ImportUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        imp = services.import_create(actor=request.user, upload=upload, file_name=upload.name,
                                     encoding=data.validated_data["encoding"],
                                     delimiter=data.validated_data["delimiter"],
                                     sheet=data.validated_data["sheet"],
                                     chunk_size=data.validated_data.get("chunk_size"))
        return Response(s.ImportOutputSerializer(imp).data, status=status.HTTP_201_CREATED,
                        headers={"Location": f"{request.path}{imp.pk}/"})


class ImportDetail(_ImportMixin, APIView):
    """One import: what was detected, the mapping, progress, totals. PATCH sets the mapping,
    policy and consent provenance (before it runs)."""

    parser_classes = [JSONParser]

    @extend_schema(responses=s.ImportOutputSerializer)
    def get(self, request: Request, pk: Any) -> Response:
        return Response(s.ImportOutputSerializer(self.get_import(request, pk)).data)

    @extend_schema(request=s.ImportConfigureSerializer, responses=s.ImportOutputSerializer)
    def patch(self, request: Request, pk: Any) -> Response:
        imp = self.get_import(request, pk)
        data = s.ImportConfigureSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        imp = services.import_configure(actor=request.user, import_run=imp, mapping=values.get("mapping"),
                                        mapping_name=values.get("mapping_name", ""), policy=values.get("policy"),
                                        consent=values.get("consent"), encoding=values.get("encoding"),
                                        delimiter=values.get("delimiter"), sheet=values.get("sheet"))
        return Response(s.ImportOutputSerializer(imp).data)


class ImportAction(_ImportMixin, APIView):
    """POST preview/ (dry run), run/ or undo/."""

    action_name = ""
    parser_classes = [JSONParser]

    @extend_schema(request=None, responses={202: s.ImportOutputSerializer, 200: s.ImportOutputSerializer})
    def post(self, request: Request, pk: Any) -> Response:
        imp = self.get_import(request, pk)
        if self.action_name == "preview":
            imp = services.import_preview(actor=request.user, import_run=imp)
        elif self.action_name == "run":
            imp = services.import_start(actor=request.user, import_run=imp)
        else:
            imp = services.import_undo(actor=request.user, import_run=imp)
            return Response(s.ImportOutputSerializer(imp).data)
        return Response(s.ImportOutputSerializer(imp).data, status=status.HTTP_202_ACCEPTED)


class ImportIssues(_ImportMixin, generics.ListAPIView):
    """Rows that were invalid, suppressed or skipped, and warnings: row, column, message."""

    serializer_class = s.ImportIssueSerializer
    pagination_class = None

    @extend_schema(parameters=[OpenApiParameter("phase", str, enum=["preview", "run"]),
                               OpenApiParameter("kind", str), OpenApiParameter("limit", int)])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> Any:
        imp = self.get_import(self.request, self.kwargs["pk"])
        phase = self.request.query_params.get("phase") or None
        kind = self.request.query_params.get("kind")
        try:
            limit = min(max(int(self.request.query_params.get("limit", "1000")), 1), 10000)
        except ValueError as err:
            raise DomainError("limit must be a number.", field_errors={"limit": ["Not a number."]}) from err
        return selectors.import_issues(import_run=imp, phase=phase, kinds=(kind,) if kind else ())[:limit]


class ImportErrorFile(_ImportMixin, APIView):
    """The rows not imported, as CSV, with the reasons in the last column."""

    @extend_schema(responses={(200, "text/csv"): bytes})
    def get(self, request: Request, pk: Any) -> StreamingHttpResponse:
        imp = self.get_import(request, pk)
        response = StreamingHttpResponse(selectors.error_file(import_run=imp), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="errors-{imp.pk}.csv"'
        return response


class Targets(APIView):
    """The fields a column can be mapped to."""

    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> Response:
        return Response([{"key": t.key, "label": t.label, "group": t.group, "multi": t.multi}
                         for t in TARGETS.values()])


class MappingList(generics.ListCreateAPIView):
    """Saved mapping templates."""

    serializer_class = s.MappingSerializer
    queryset = ImportMapping.objects.order_by("name")
    pagination_class = None
    object_type = "people.person"
    object_actions = {"GET": "read", "POST": "create"}

    def perform_create(self, serializer: s.MappingSerializer) -> None:
        serializer.instance = services.mapping_save(actor=self.request.user, name=serializer.validated_data["name"],
                                                    mapping=serializer.validated_data["mapping"])


class MappingDetail(generics.RetrieveUpdateDestroyAPIView):
    serializer_class = s.MappingSerializer
    queryset = ImportMapping.objects.all()
    object_type = "people.person"
    object_actions = {"GET": "read", "PUT": "create", "PATCH": "create", "DELETE": "create"}

    def perform_update(self, serializer: s.MappingSerializer) -> None:
        instance = serializer.instance
        name = serializer.validated_data.get("name", instance.name)
        mapping = serializer.validated_data.get("mapping", instance.mapping)
        if name != instance.name:
            services.mapping_delete(actor=self.request.user, template=instance)
        serializer.instance = services.mapping_save(actor=self.request.user, name=name, mapping=mapping)

    def perform_destroy(self, instance: ImportMapping) -> None:
        services.mapping_delete(actor=self.request.user, template=instance)


# ---------------------------------------------------------------------------- export


class _FileRenderer(BaseRenderer):
    """Lets ``?format=csv`` (and Accept) select an export format; the view streams the body."""

    charset = None

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return b""


class CSVRenderer(_FileRenderer):
    media_type, format = "text/csv", "csv"


class XLSXRenderer(_FileRenderer):
    media_type, format = exports.FORMATS["xlsx"][0], "xlsx"


class VCardRenderer(_FileRenderer):
    media_type, format = "text/vcard", "vcf"


class ExportView(APIView):
    """Stream people or organisations, filtered like the list endpoints, as CSV, Excel, vCard 4.0 or
    JSON. Hidden fields are left out; each exported person is recorded in the access audit."""

    renderer_classes = [JSONRenderer, CSVRenderer, XLSXRenderer, VCardRenderer]
    required_scope = "export"
    object_actions = {"GET": "export"}
    what = "people"

    @property
    def object_type(self) -> str:
        return "people.person" if self.what == "people" else "people.organisation"

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(response, Response) and response.status_code >= 400:  # problems are JSON
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)

    @extend_schema(parameters=[OpenApiParameter("format", str, enum=["csv", "xlsx", "vcf", "json"]),
                               *[OpenApiParameter(name, str) for name in exports.PERSON_FILTERS]],
                   responses={(200, "text/csv"): bytes})
    def get(self, request: Request) -> StreamingHttpResponse:
        fmt = request.query_params.get("format") or (
            request.accepted_renderer.format if request.accepted_renderer.format != "json" else "json")
        allowed = exports.PERSON_FILTERS if self.what == "people" else exports.ORGANISATION_FILTERS
        unknown = sorted(set(request.query_params) - set(allowed) - {"format"})
        if unknown:
            raise DomainError("Unknown filter(s).", field_errors={name: ["Unknown filter."] for name in unknown})
        filters: dict[str, Any] = {k: v for k, v in request.query_params.items() if k in allowed and v}
        if "updated_since" in filters:
            filters["updated_since"] = _parse_since(filters["updated_since"])
        export_fn = exports.export_people if self.what == "people" else exports.export_organisations
        export = export_fn(user=request.user, fmt=fmt, filters=filters, channel="export", request=request)
        response = StreamingHttpResponse(export.chunks, content_type=export.content_type)
        response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
        return response


def _parse_since(value: str) -> dt.datetime:
    from django.utils.dateparse import parse_date, parse_datetime

    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        if day is None:
            raise DomainError("updated_since must be a date or date-time.",
                              field_errors={"updated_since": ["Use 2024-03-31 or 2024-03-31T12:00:00Z."]})
        parsed = dt.datetime.combine(day, dt.time.min)
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)
