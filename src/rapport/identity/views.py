"""U, I3/I4 — staff UI of identity resolution: the duplicate queue, the pair review, unmerge.

Thin adapters: reads through ``selectors`` (both people visible, hidden fields left out),
decisions through ``review`` (role must allow ``merge``; both people visible for it).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from rapport.access.audit import record_person_access
from rapport.access.permissions import has_permission, permission_required
from rapport.core.errors import DomainError
from rapport.identity import review, selectors
from rapport.identity.merge import SURVIVORSHIP_FIELDS, survivorship_plan
from rapport.identity.models import DuplicateSuggestion

PERSON = "people.person"


@permission_required(PERSON, "read")
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    suggestions = list(selectors.open_suggestions(user=request.user)[:200])
    record_person_access(actor=request.user, action="view", channel="ui", request=request,
                         people={p for s in suggestions for p in (s.left_id, s.right_id)},
                         detail={"duplicate_queue": True})
    return render(request, "identity/queue.html", {
        "suggestions": [{"s": s, "evidence": selectors.evidence_rows(s.evidence)[:3]} for s in suggestions],
        "can_merge": has_permission(request.user, PERSON, "merge"),
    })


@permission_required(PERSON, "read")
@require_GET
def pair(request: HttpRequest, pk: Any) -> HttpResponse:
    suggestion = _suggestion(request, pk)
    return _render_pair(request, suggestion)


@permission_required(PERSON, "merge")
@require_POST
def merge(request: HttpRequest, pk: Any) -> HttpResponse:
    suggestion = _suggestion(request, pk)
    left, right = suggestion.left, suggestion.right
    keep = request.POST.get("survivor", "left")
    if keep not in ("left", "right"):
        return _render_pair(request, suggestion, error="Choose which record to keep.", status=400)
    survivor, merged = (left, right) if keep == "left" else (right, left)
    choices = {}
    for name in SURVIVORSHIP_FIELDS:
        side = request.POST.get(f"pick_{name}")
        if side in ("left", "right"):
            choices[name] = "survivor" if side == keep else "merged"
        elif side == "both" and name == "notes":
            choices[name] = "both"
    try:
        record = review.merge_pair(actor=request.user, survivor_id=survivor.pk, merged_id=merged.pk,
                                   field_choices=choices, reason=request.POST.get("reason", "").strip(),
                                   channel="ui")
    except (DomainError, ValidationError) as err:
        return _render_pair(request, suggestion, error=_message(err), status=400)
    messages.success(request, f"{merged.display_name} was merged into this record. You can undo this from "
                              "the “Duplicates and merges” panel.")
    return redirect("people:person-detail", record.survivor_id)


@permission_required(PERSON, "merge")
@require_POST
def reject(request: HttpRequest, pk: Any) -> HttpResponse:
    suggestion = _suggestion(request, pk)
    try:
        review.reject_pair(actor=request.user, left_id=suggestion.left_id, right_id=suggestion.right_id,
                           reason=request.POST.get("reason", "").strip(), channel="ui")
    except DomainError as err:
        return _render_pair(request, suggestion, error=_message(err), status=400)
    if request.headers.get("HX-Request"):
        return render(request, "identity/partials/rejected_row.html", {"s": suggestion})
    messages.success(request, f"Noted: {suggestion.left.display_name} and {suggestion.right.display_name} "
                              "are not the same person. They will not be suggested again.")
    return redirect("identity:queue")


@permission_required(PERSON, "merge")
@require_POST
def unmerge(request: HttpRequest, pk: Any) -> HttpResponse:
    try:
        survivor, merged = review.unmerge_record(actor=request.user, record_id=pk, channel="ui")
    except DomainError as err:
        messages.error(request, str(err))
        return redirect(request.POST.get("next") or "identity:queue")
    messages.success(request, f"Unmerged: {merged.display_name} is a separate record again.")
    return redirect("people:person-detail", survivor.pk)


def person_panel_context(request: HttpRequest, person: Any) -> dict[str, Any]:
    """The "Duplicates and merges" panel on the 360° view (registered in IdentityConfig.ready)."""
    suggestions = list(selectors.open_suggestions(user=request.user, person=person)[:5])
    history = selectors.merge_history(user=request.user, person=person)
    return {
        "duplicates": [{"s": s, "other": s.right if s.left_id == person.pk else s.left} for s in suggestions],
        "history": [{"record": r, "name": selectors.merged_name(r)} for r in history],
        "can_merge": has_permission(request.user, PERSON, "merge"),
    }


# --------------------------------------------------------------------------------- helpers


def _suggestion(request: HttpRequest, pk: Any) -> DuplicateSuggestion:
    try:
        return selectors.suggestion_get(user=request.user, suggestion_id=pk)
    except DuplicateSuggestion.DoesNotExist as err:
        raise Http404("No such suggestion.") from err


def _render_pair(request: HttpRequest, suggestion: DuplicateSuggestion, *, error: str = "",
                 status: int = 200) -> HttpResponse:
    left, right = suggestion.left, suggestion.right
    record_person_access(actor=request.user, action="view", people=[left, right], channel="ui", request=request,
                         detail={"duplicate_pair": str(suggestion.pk)})
    comparison = selectors.compare_people(user=request.user, left=left, right=right)
    plan = survivorship_plan(survivor=left, merged=right)
    picks = {name: ("left" if side == "survivor" else "right" if side == "merged" else "both")
             for name, side in plan.items()}
    return render(request, "identity/pair.html", {
        "s": suggestion, "left": left, "right": right, "comparison": comparison,
        "rows": [{"r": row, "pick": picks.get(row.name)} for row in comparison["rows"]],
        "evidence": selectors.evidence_rows(suggestion.evidence), "picks": picks, "error": error,
        "can_merge": has_permission(request.user, PERSON, "merge") and suggestion.status == "open",
    }, status=status)


def _message(err: Exception) -> str:
    if isinstance(err, ValidationError) and hasattr(err, "error_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in err.message_dict.items())
    return "; ".join(getattr(err, "messages", [str(err)]))
