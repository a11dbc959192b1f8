"""A1 — the identity API (/api/v1/identity/): review queue, merge, unmerge, "not the same person",
and the real-time duplicate check (I2).

Thin adapters: the role permission comes from ``object_type`` (GET needs ``read`` on people,
decisions need ``merge``); visibility of both people and the decision itself live in
``rapport.identity.review`` / ``selectors``. Refusals become RFC 9457 problems.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from rapport.access.audit import record_person_access
from rapport.identity import review, selectors
from rapport.identity.api import serializers as s
from rapport.identity.models import DuplicateSuggestion, MergeRecord

MAX_LIST = 200


class IdentityView(GenericAPIView):
    object_type = "people.person"
    object_actions = {"GET": "read", "POST": "merge"}
    pagination_class = None


class SuggestionList(IdentityView):
    """GET: open duplicate suggestions whose two people you may see, most likely first (``?person=``, ``?limit=``)."""

    serializer_class = s.SuggestionOut

    @extend_schema(responses=inline_serializer("SuggestionPage", {"results": s.SuggestionOut(many=True)}))
    def get(self, request: Request) -> Response:
        queryset = selectors.open_suggestions(user=request.user, person=_person_param(request))
        limit = _limit(request)
        rows = list(queryset[:limit])
        record_person_access(actor=request.user, action="view", channel="api", request=request,
                             people={pk for r in rows for pk in (r.left_id, r.right_id)},
                             detail={"duplicate_queue": True})
        return Response({"results": s.SuggestionOut(rows, many=True).data})


class SuggestionReject(IdentityView):
    """POST: "not the same person" — the pair is remembered and never suggested again."""

    serializer_class = s.RejectIn

    @extend_schema(request=s.RejectIn, responses=s.SuggestionOut)
    def post(self, request: Request, pk: Any) -> Response:
        data = s.RejectIn(data=request.data)
        data.is_valid(raise_exception=True)
        suggestion = _suggestion(request, pk)
        review.reject_pair(actor=request.user, left_id=suggestion.left_id, right_id=suggestion.right_id,
                           reason=data.validated_data["reason"], channel="api")
        suggestion.refresh_from_db()
        return Response(s.SuggestionOut(suggestion).data)


class NotDuplicateCreate(IdentityView):
    """POST: say two people are different, whether or not they were suggested."""

    serializer_class = s.NotDuplicateIn

    @extend_schema(request=s.NotDuplicateIn, responses={201: inline_serializer("NotDuplicateOut", {
        "id": serializers.UUIDField(), "left": serializers.UUIDField(), "right": serializers.UUIDField()})})
    def post(self, request: Request) -> Response:
        data = s.NotDuplicateIn(data=request.data)
        data.is_valid(raise_exception=True)
        remembered = review.reject_pair(actor=request.user, left_id=data.validated_data["left"],
                                        right_id=data.validated_data["right"],
                                        reason=data.validated_data["reason"], channel="api")
        return Response({"id": str(remembered.pk), "left": str(remembered.left_id),
                         "right": str(remembered.right_id)}, status=status.HTTP_201_CREATED)


class MergeList(IdentityView):
    """GET: merge history (``?person=`` for one person's). POST: merge ``merged`` into ``survivor``."""

    serializer_class = s.MergeIn

    @extend_schema(responses=inline_serializer("MergePage", {"results": s.MergeRecordOut(many=True)}))
    def get(self, request: Request) -> Response:
        from rapport.people.models import Person

        visible = Person.objects.visible_to(request.user).values("pk")
        queryset = MergeRecord.objects.filter(survivor__in=visible).select_related("merged_by", "unmerged_by")
        person = _person_param(request)
        if person is not None:
            queryset = selectors_for_person(queryset, person)
        return Response({"results": s.MergeRecordOut(queryset.order_by("-created_at")[:_limit(request)],
                                                     many=True).data})

    @extend_schema(request=s.MergeIn, responses={201: s.MergeRecordOut})
    def post(self, request: Request) -> Response:
        data = s.MergeIn(data=request.data)
        data.is_valid(raise_exception=True)
        record = review.merge_pair(actor=request.user, survivor_id=data.validated_data["survivor"],
                                   merged_id=data.validated_data["merged"],
                                   field_choices=data.validated_data["field_choices"],
                                   strategy=data.validated_data["strategy"],
                                   reason=data.validated_data["reason"], channel="api")
        return Response(s.MergeRecordOut(record).data, status=status.HTTP_201_CREATED)


class Unmerge(IdentityView):
    """POST: undo a merge; both people come back with their own records."""

    serializer_class = s.UnmergeOut

    @extend_schema(request=None, responses=s.UnmergeOut)
    def post(self, request: Request, pk: Any) -> Response:
        if request.data:
            _unknown(sorted(request.data))  # no body expected
        survivor, merged = review.unmerge_record(actor=request.user, record_id=pk, channel="api")
        record = MergeRecord.objects.select_related("merged_by", "unmerged_by").get(pk=pk)
        return Response({"merge": s.MergeRecordOut(record).data, "survivor": str(survivor.pk),
                         "restored": str(merged.pk)})


class CandidateCheck(IdentityView):
    """POST: I2 — existing people who may be the one described, with score and evidence."""

    object_actions = {"POST": "read"}
    serializer_class = s.CandidateCheckIn

    @extend_schema(request=s.CandidateCheckIn,
                   responses=inline_serializer("CandidateList", {"candidates": s.CandidateOut(many=True)}))
    def post(self, request: Request) -> Response:
        data = s.CandidateCheckIn(data=request.data)
        data.is_valid(raise_exception=True)
        return Response({"candidates": selectors.visible_candidates(user=request.user, **data.validated_data)})


# --------------------------------------------------------------------------------- helpers


def selectors_for_person(queryset: Any, person: Any) -> Any:
    from django.db.models import Q

    return queryset.filter(Q(survivor_id=person) | Q(merged_person_id=person))


def _suggestion(request: Request, pk: Any) -> DuplicateSuggestion:
    try:
        return selectors.suggestion_get(user=request.user, suggestion_id=pk)
    except DuplicateSuggestion.DoesNotExist as err:
        raise Http404("No such suggestion.") from err


def _person_param(request: Request) -> Any:
    import uuid

    from rest_framework.exceptions import ValidationError

    value = request.query_params.get("person")
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError as err:
        raise ValidationError({"person": ["Must be a valid UUID."]}) from err


def _limit(request: Request) -> int:
    from rest_framework.exceptions import ValidationError

    raw = request.query_params.get("limit", "50")
    try:
        value = int(raw)
    except ValueError as err:
        raise ValidationError({"limit": ["Must be a whole number."]}) from err
    if not 1 <= value <= MAX_LIST:
        raise ValidationError({"limit": [f"Must be between 1 and {MAX_LIST}."]})
    return value


def _unknown(names: list[str]) -> None:
    from rest_framework.exceptions import ValidationError

    raise ValidationError({name: ["Unknown field."] for name in names})
