"""API conventions shared by every resource (A1).

- ``StrictFieldsMixin``: unknown input fields are a 400, never silently dropped.
- ``ConditionalMixin``: ``ETag`` on reads; ``If-Match`` on writes (412 when stale).
- ``IdempotentCreateMixin``: ``Idempotency-Key`` on POST replays the first response.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import IntegrityError, transaction
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from rapport.core.api.errors import IdempotencyConflict, PreconditionFailed
from rapport.core.models import IdempotencyRecord


class StrictFieldsMixin:
    """Reject input keys the serializer does not declare as writable."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            writable = {name for name, field in self.fields.items() if not field.read_only}  # type: ignore[attr-defined]
            unknown = sorted(set(data) - writable)
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)  # type: ignore[misc]


def etag_for(instance: Any) -> str:
    """A strong validator: the record's version when it has one, else its last change time."""
    marker = getattr(instance, "version", None)
    if marker is None:
        marker = getattr(instance, "updated_at", None)
        marker = marker.isoformat() if marker else ""
    digest = hashlib.sha256(f"{instance.pk}:{marker}".encode()).hexdigest()[:20]
    return f'"{digest}"'


def check_if_match(request: Request, instance: Any) -> None:
    """412 when ``If-Match`` is given and names another version than ``instance``'s (A1)."""
    header = request.headers.get("If-Match")
    if header is None:
        return
    tags = _parse_etags(header)
    if "*" not in tags and etag_for(instance) not in tags:
        raise PreconditionFailed()


class ConditionalMixin:
    """ETag on retrieve; If-Match checked before update and destroy."""

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        instance = self.get_object()  # type: ignore[attr-defined]
        etag = etag_for(instance)
        if etag in _parse_etags(request.headers.get("If-None-Match", "")):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
        serializer = self.get_serializer(instance)  # type: ignore[attr-defined]
        return Response(serializer.data, headers={"ETag": etag})

    def check_if_match(self, instance: Any) -> None:
        check_if_match(self.request, instance)  # type: ignore[attr-defined]

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().update(request, *args, **kwargs)  # type: ignore[misc]
        instance = self.get_object()  # type: ignore[attr-defined]
        response["ETag"] = etag_for(instance)
        return response

    def perform_update(self, serializer: Any) -> None:
        self.check_if_match(serializer.instance)
        super().perform_update(serializer)  # type: ignore[misc]

    def perform_destroy(self, instance: Any) -> None:
        self.check_if_match(instance)
        super().perform_destroy(instance)  # type: ignore[misc]


def _parse_etags(header: str) -> set[str]:
    tags = set()
    for part in header.split(","):
        part = part.strip()
        if part.startswith("W/"):
            part = part[2:]
        if part:
            tags.add(part)
    return tags


class IdempotentCreateMixin:
    """Honour ``Idempotency-Key`` on create: a retry returns the first result, never a copy.

    The record row is inserted in the same transaction as the create; a concurrent retry
    waits on the unique key and then replays what the first request stored.
    """

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get("Idempotency-Key")
        if not key:
            return super().create(request, *args, **kwargs)  # type: ignore[misc]
        key = key.strip()[:255]
        request_hash = hashlib.sha256(
            json.dumps(request.data, sort_keys=True, default=str).encode()
        ).hexdigest()
        existing = IdempotencyRecord.objects.filter(user=request.user, key=key).first()
        if existing is not None:
            return _replay(existing, request, request_hash)
        try:
            with transaction.atomic():
                response = super().create(request, *args, **kwargs)  # type: ignore[misc]
                if response.status_code >= 500:
                    return response
                IdempotencyRecord.objects.create(
                    user=request.user, key=key, method=request.method, path=request.path,
                    request_hash=request_hash, status_code=response.status_code,
                    response_body=json.loads(json.dumps(response.data, default=str)),
                    response_headers={k: v for k, v in response.items() if k in {"Location", "ETag"}},
                )
        except IntegrityError:
            existing = IdempotencyRecord.objects.get(user=request.user, key=key)
            return _replay(existing, request, request_hash)
        response["Idempotency-Key"] = key
        return response


def _replay(record: IdempotencyRecord, request: Request, request_hash: str) -> Response:
    if record.request_hash != request_hash or record.path != request.path:
        raise IdempotencyConflict()
    headers = dict(record.response_headers)
    headers["Idempotency-Key"] = record.key
    headers["Idempotent-Replayed"] = "true"
    return Response(record.response_body, status=record.status_code, headers=headers)
