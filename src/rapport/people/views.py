"""U — staff screens for people and organisations: lists, the 360° view, forms, global search.

Views are adapters: they parse input with ``forms``, read through ``selectors`` (visibility
included) and write through ``services``. Every screen that shows a person records a view.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rapport.access.audit import record_person_access
from rapport.access.fieldsecurity import hidden_fields
from rapport.access.permissions import permission_required
from rapport.core.errors import DomainError
from rapport.core.registry import person_panels_for
from rapport.identity.normalise import InvalidIdentifier, normalise_contact_value
from rapport.identity.selectors import survivor_id_of
from rapport.identity.services import find_candidates
from rapport.people import selectors, services
from rapport.people.forms import (
    ContactPointForm,
    EmploymentEndForm,
    EmploymentStartForm,
    InteractionForm,
    OrganisationFilterForm,
    OrganisationForm,
    PersonFilterForm,
    PersonForm,
    apply_service_errors,
)
from rapport.people.models import Organisation, Person
from rapport.privacy.services import change_refusal

PAGE_SIZE = 25
TIMELINE_PAGE = 20


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _person_or_404(request: HttpRequest, pk: UUID, action: str = "read") -> Person:
    try:
        return selectors.person_get(user=request.user, person_id=pk, action=action)
    except Person.DoesNotExist as err:
        raise Http404("No such person.") from err


def _organisation_or_404(request: HttpRequest, pk: UUID, action: str = "read") -> Organisation:
    try:
        return selectors.organisation_get(user=request.user, organisation_id=pk, action=action)
    except Organisation.DoesNotExist as err:
        raise Http404("No such organisation.") from err


def _page(request: HttpRequest, queryset: Any) -> Any:
    paginator = Paginator(queryset, PAGE_SIZE)
    return paginator.get_page(request.GET.get("page"))


def _query_without_page(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


# ---------------------------------------------------------------------------------- search


@login_required
@require_GET
def search(request: HttpRequest) -> HttpResponse:
    """Global search: a listbox fragment for the top bar (htmx) or a full results page."""
    query = request.GET.get("q", "")
    hits = selectors.global_search(user=request.user, query=query)
    people_ids = [hit.id for hit in hits if hit.kind == "person"]
    if people_ids:
        record_person_access(actor=request.user, action="search", people=people_ids, channel="ui",
                             request=request, detail={"query_length": len(query)})
    context = {"query": query, "hits": hits}
    if _is_htmx(request):
        return render(request, "people/partials/search_results.html", context)
    return render(request, "people/search.html", context)


# ---------------------------------------------------------------------------------- people


@login_required
@require_GET
def person_list(request: HttpRequest) -> HttpResponse:
    form = PersonFilterForm(request.GET)
    filters = {k: v for k, v in form.cleaned_data.items() if v} if form.is_valid() else {}
    page = _page(request, selectors.person_list_for_display(user=request.user, **filters))
    hidden = hidden_fields(request.user, "people.Person")
    return render(request, "people/person_list.html", {
        "form": form, "page": page, "filters": filters, "query": _query_without_page(request),
        "hidden": hidden,
    })


@login_required
@require_GET
def person_detail(request: HttpRequest, pk: UUID) -> HttpResponse:
    try:
        person = _person_or_404(request, pk)
    except Http404:
        survivor_id = survivor_id_of(pk)  # merged away (I4): the record lives on the survivor
        if survivor_id is None:
            raise
        return redirect("people:person-detail", pk=survivor_id)
    record_person_access(actor=request.user, action="view", people=[person], channel="ui", request=request)
    timeline = selectors.person_timeline_page(user=request.user, person=person, limit=TIMELINE_PAGE + 1)
    jobs = list(person.employments.all())
    panels = [{"panel": panel, "context": panel.context(request, person)}
              for panel in person_panels_for(request.user)]
    return render(request, "people/person_detail.html", {
        "person": person,
        "contact_points": list(person.contact_points.all()),
        "current_jobs": [j for j in jobs if j.end_date is None],
        "past_jobs": [j for j in jobs if j.end_date is not None],
        "timeline": timeline[:TIMELINE_PAGE],
        "more_after": _timeline_cursor(timeline),
        "interaction_form": InteractionForm(),
        "contact_point_form": ContactPointForm(initial={"source": "staff UI"}),
        "employment_form": EmploymentStartForm(initial={"end_other_jobs": True}),
        "panels": panels,
        "hidden": hidden_fields(request.user, "people.Person"),
        "frozen": change_refusal(person),  # erased or restricted: no edit forms that would be refused
    })


@login_required
@require_GET
def person_timeline(request: HttpRequest, pk: UUID) -> HttpResponse:
    """The next page of the timeline ("load more"), after the last entry shown."""
    person = _person_or_404(request, pk)
    occurred = parse_datetime(request.GET.get("occurred", "") or "")
    created = parse_datetime(request.GET.get("created", "") or "")
    if occurred is None or created is None:
        return HttpResponse("Give ?occurred= and ?created= as ISO date-times.", status=400)
    record_person_access(actor=request.user, action="view", people=[person], channel="ui", request=request,
                         detail={"timeline_after": occurred.isoformat()})
    timeline = selectors.person_timeline_page(user=request.user, person=person, limit=TIMELINE_PAGE + 1,
                                              after=(occurred, created))
    return render(request, "people/partials/timeline_page.html", {
        "person": person, "timeline": timeline[:TIMELINE_PAGE], "more_after": _timeline_cursor(timeline),
    })


def _timeline_cursor(timeline: list[Any]) -> str:
    """Query string for the page after this one, or "" when this is the last page."""
    if len(timeline) <= TIMELINE_PAGE:
        return ""
    last = timeline[TIMELINE_PAGE - 1]
    return urlencode({"occurred": last.occurred_at.isoformat(), "created": last.created_at.isoformat()})


@permission_required("people.person", "create")
@require_http_methods(["GET", "POST"])
def person_create(request: HttpRequest) -> HttpResponse:
    form = PersonForm(request.POST if request.method == "POST" else None, user=request.user, creating=True)
    candidates: list[dict[str, Any]] = []
    if request.method == "POST" and form.is_valid():
        points = form.contact_points()
        if not request.POST.get("create_anyway"):
            candidates = _duplicate_candidates(request, form, points)
        if not candidates:
            try:
                person = services.person_create(
                    actor=request.user,
                    **{k: v for k, v in form.person_changes().items() if k != "timezone"},
                    timezone_name=form.cleaned_data.get("timezone", ""),
                    tags=form.tag_names() or [],
                    contact_points=[services.ContactPointInput(kind=kind, value=form.cleaned_data[name],
                                                               source="staff UI")
                                    for name, kind in points],
                )
            except ValidationError as err:
                apply_service_errors(form, err, {f"contact_points.{i}.value": name
                                                 for i, (name, _) in enumerate(points)})
            except DomainError as err:  # a suppressed (erased) email or phone: say so on the form
                form.add_error(None, str(err))
            else:
                messages.success(request, f"{person.display_name} was created.")
                return redirect("people:person-detail", pk=person.pk)
    return render(request, "people/person_form.html", {
        "form": form, "creating": True, "candidates": candidates,
    }, status=400 if request.method == "POST" and not candidates else 200)


def _duplicate_candidates(request: HttpRequest, form: PersonForm,
                          points: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """People who may already be the one being created (I2), with score and evidence."""
    emails, phones = [], []
    region = (form.cleaned_data.get("country") or "").upper() or None
    for name, kind in points:
        try:
            normalised = normalise_contact_value(kind, form.cleaned_data[name], region=region).normalised
        except InvalidIdentifier:
            continue  # the service reports it against the field
        (emails if kind == "email" else phones).append(normalised)
    found = find_candidates(given_name=form.cleaned_data.get("given_name", ""),
                            family_name=form.cleaned_data.get("family_name", ""),
                            emails=emails, phones=phones)
    if not found:
        return []
    people = {p.pk: p for p in selectors.person_list_for_display(user=request.user)
              .filter(pk__in=[c.person_id for c in found])}
    return [{"person": people[c.person_id], "score": round(c.score * 100), "evidence": c.evidence}
            for c in found if c.person_id in people]


@login_required
@require_http_methods(["GET", "POST"])
def person_edit(request: HttpRequest, pk: UUID) -> HttpResponse:
    person = _person_or_404(request, pk, action="change")
    initial = {name: getattr(person, name) for name in
               ("honorific", "given_name", "middle_names", "family_name", "preferred_name", "language",
                "timezone", "country", "notes", "version")}
    initial["tags"] = ", ".join(t.name for t in person.tags.all())
    form = PersonForm(request.POST if request.method == "POST" else None, initial=initial, user=request.user, creating=False)
    if request.method == "POST" and form.is_valid():
        try:
            services.person_update(actor=request.user, person=person, changes=form.person_changes(),
                                   tags=form.tag_names(), expected_version=form.cleaned_data.get("version"))
        except ValidationError as err:
            apply_service_errors(form, err)
        except DomainError as err:  # erased, or processing restricted
            form.add_error(None, str(err))
        else:
            messages.success(request, "Changes saved.")
            return redirect("people:person-detail", pk=person.pk)
    return render(request, "people/person_form.html", {"form": form, "creating": False, "person": person},
                  status=400 if request.method == "POST" else 200)


# ------------------------------------------------------------------------- timeline entries


@login_required
@require_POST
def interaction_create(request: HttpRequest, pk: UUID) -> HttpResponse:
    """Quick action: log a note, call, letter, email or meeting; htmx gets the new entry back."""
    person = _person_or_404(request, pk, action="change")
    form = InteractionForm(request.POST)
    if form.is_valid():
        try:
            interaction, _ = services.interaction_log(actor=request.user, person=person,
                                                      **form.service_arguments())
        except ValidationError as err:
            apply_service_errors(form, err)
        except DomainError as err:  # erased, or processing restricted
            form.add_error(None, str(err))
        else:
            if _is_htmx(request):
                return render(request, "people/partials/interaction_created.html", {
                    "person": person, "entry": interaction, "interaction_form": InteractionForm(),
                    "logged": interaction,
                })
            messages.success(request, f"{interaction.get_kind_display()} logged.")
            return redirect("people:person-detail", pk=person.pk)
    if _is_htmx(request):
        response = render(request, "people/partials/interaction_form.html",
                          {"person": person, "interaction_form": form})
        response["HX-Retarget"] = "#quick-action"
        response["HX-Reswap"] = "outerHTML"
        return response
    return render(request, "people/interaction_form_page.html", {"person": person, "interaction_form": form},
                  status=400)


# -------------------------------------------------------------------------- contact points


@login_required
@require_POST
def contact_point_add(request: HttpRequest, pk: UUID) -> HttpResponse:
    person = _person_or_404(request, pk, action="change")
    form = ContactPointForm(request.POST)
    if form.is_valid():
        try:
            services.contact_point_add(actor=request.user, person=person,
                                       data=services.ContactPointInput(**form.cleaned_data))
        except ValidationError as err:
            apply_service_errors(form, err, {"contact_points.0.value": "value", "contact_points.0.kind": "kind"})
        except DomainError as err:  # suppressed identifier, erased or restricted person
            form.add_error("value", str(err))
        else:
            messages.success(request, "Contact point added.")
            return redirect(reverse("people:person-detail", kwargs={"pk": person.pk}) + "#contact-points")
    return render(request, "people/contact_point_form.html", {"person": person, "form": form}, status=400)


@login_required
@require_http_methods(["GET", "POST"])
def contact_point_edit(request: HttpRequest, pk: UUID, point_pk: UUID) -> HttpResponse:
    person = _person_or_404(request, pk, action="change")
    point = _contact_point_or_404(request, person, point_pk)
    initial = {f: getattr(point, f) for f in ("kind", "value", "label", "source", "verified", "primary")}
    form = ContactPointForm(request.POST if request.method == "POST" else None, initial=initial, editing=True)
    if request.method == "POST" and form.is_valid():
        changes = {k: v for k, v in form.cleaned_data.items() if k != "kind"}
        if changes["value"].strip() == point.value:
            changes.pop("value")
        try:
            services.contact_point_update(actor=request.user, point=point, changes=changes)
        except ValidationError as err:
            apply_service_errors(form, err)
        except DomainError as err:  # suppressed identifier, erased or restricted person
            form.add_error("value", str(err))
        else:
            messages.success(request, "Contact point saved.")
            return redirect(reverse("people:person-detail", kwargs={"pk": person.pk}) + "#contact-points")
    return render(request, "people/contact_point_form.html", {"person": person, "form": form, "point": point},
                  status=400 if request.method == "POST" else 200)


@login_required
@require_POST
def contact_point_remove(request: HttpRequest, pk: UUID, point_pk: UUID) -> HttpResponse:
    person = _person_or_404(request, pk, action="change")
    point = _contact_point_or_404(request, person, point_pk)
    services.contact_point_remove(actor=request.user, point=point)
    messages.success(request, f"Removed {point.value}.")
    return redirect(reverse("people:person-detail", kwargs={"pk": person.pk}) + "#contact-points")


def _contact_point_or_404(request: HttpRequest, person: Person, point_pk: UUID) -> Any:
    try:
        return selectors.contact_point_get(user=request.user, person=person, point_id=point_pk)
    except ObjectDoesNotExist as err:
        raise Http404("No such contact point.") from err


# ------------------------------------------------------------------------------ employment


@login_required
@require_POST
def employment_start(request: HttpRequest, pk: UUID) -> HttpResponse:
    person = _person_or_404(request, pk, action="change")
    form = EmploymentStartForm(request.POST)
    if form.is_valid():
        try:
            organisation = selectors.organisation_get(user=request.user,
                                                      organisation_id=form.cleaned_data["organisation"])
        except Organisation.DoesNotExist:
            form.add_error("organisation", "That organisation does not exist or is not visible to you.")
        else:
            try:
                services.employment_start(actor=request.user, person=person, organisation=organisation,
                                          title=form.cleaned_data["title"],
                                          start_date=form.cleaned_data["start_date"],
                                          end_other_jobs=form.cleaned_data["end_other_jobs"])
            except ValidationError as err:
                apply_service_errors(form, err)
            except DomainError as err:  # erased, or processing restricted
                form.add_error(None, str(err))
            else:
                messages.success(request, f"New job at {organisation.name} recorded.")
                return redirect(reverse("people:person-detail", kwargs={"pk": person.pk}) + "#employment")
    return render(request, "people/employment_form.html", {"person": person, "employment_form": form},
                  status=400)


@login_required
@require_POST
def employment_end(request: HttpRequest, pk: UUID, job_pk: UUID) -> HttpResponse:
    person = _person_or_404(request, pk, action="change")
    try:
        job = selectors.employment_get(user=request.user, person=person, employment_id=job_pk)
    except ObjectDoesNotExist as err:
        raise Http404("No such job.") from err
    form = EmploymentEndForm(request.POST)
    if form.is_valid():
        try:
            services.employment_end(actor=request.user, employment=job, end_date=form.cleaned_data["end_date"])
        except ValidationError as err:
            messages.error(request, " ".join(m for ms in err.message_dict.values() for m in ms)
                           if hasattr(err, "error_dict") else " ".join(err.messages))
        else:
            messages.success(request, f"Job at {job.organisation.name} ended.")
    else:
        messages.error(request, "Give the end date as a date.")
    return redirect(reverse("people:person-detail", kwargs={"pk": person.pk}) + "#employment")


@login_required
@require_GET
def organisation_pick(request: HttpRequest) -> HttpResponse:
    """Options for the job form's organisation picker (htmx, answers while typing)."""
    organisations = selectors.organisation_search(user=request.user, query=request.GET.get("q", ""))
    return render(request, "people/partials/organisation_options.html",
                  {"organisations": organisations, "query": request.GET.get("q", "")})


# --------------------------------------------------------------------------- organisations


@login_required
@require_GET
def organisation_list(request: HttpRequest) -> HttpResponse:
    form = OrganisationFilterForm(request.GET)
    filters = {k: v for k, v in form.cleaned_data.items() if v} if form.is_valid() else {}
    page = _page(request, selectors.organisation_list_for_display(user=request.user, **filters))
    return render(request, "people/organisation_list.html", {
        "form": form, "page": page, "filters": filters, "query": _query_without_page(request),
    })


@login_required
@require_GET
def organisation_detail(request: HttpRequest, pk: UUID) -> HttpResponse:
    organisation = _organisation_or_404(request, pk)
    current, former = selectors.organisation_people(user=request.user, organisation=organisation)
    people = [job.person for job in current + former]
    if people:
        record_person_access(actor=request.user, action="view", people=people, channel="ui", request=request,
                             detail={"organisation": str(organisation.pk)})
    return render(request, "people/organisation_detail.html", {
        "organisation": organisation, "current": current, "former": former,
        "children": list(selectors.organisation_children(user=request.user, organisation=organisation)),
        "timeline": selectors.organisation_timeline(user=request.user, organisation=organisation),
    })


@permission_required("people.organisation", "create")
@require_http_methods(["GET", "POST"])
def organisation_create(request: HttpRequest) -> HttpResponse:
    form = OrganisationForm(request.POST if request.method == "POST" else None, user=request.user, parents=_parents(request))
    if request.method == "POST" and form.is_valid():
        changes = form.changes()
        try:
            organisation = services.organisation_create(actor=request.user, tags=form.tag_names() or [],
                                                        **changes)
        except ValidationError as err:
            apply_service_errors(form, err)
        else:
            messages.success(request, f"{organisation.name} was created.")
            return redirect("people:organisation-detail", pk=organisation.pk)
    return render(request, "people/organisation_form.html", {"form": form, "creating": True},
                  status=400 if request.method == "POST" else 200)


@login_required
@require_http_methods(["GET", "POST"])
def organisation_edit(request: HttpRequest, pk: UUID) -> HttpResponse:
    organisation = _organisation_or_404(request, pk, action="change")
    initial = {"name": organisation.name, "domain": organisation.domain, "parent": organisation.parent_id,
               "notes": organisation.notes, "tags": ", ".join(t.name for t in organisation.tags.all())}
    form = OrganisationForm(request.POST if request.method == "POST" else None, initial=initial, user=request.user,
                            parents=_parents(request).exclude(pk=organisation.pk))
    if request.method == "POST" and form.is_valid():
        try:
            services.organisation_update(actor=request.user, organisation=organisation, changes=form.changes(),
                                         tags=form.tag_names())
        except ValidationError as err:
            apply_service_errors(form, err)
        else:
            messages.success(request, "Changes saved.")
            return redirect("people:organisation-detail", pk=organisation.pk)
    return render(request, "people/organisation_form.html",
                  {"form": form, "creating": False, "organisation": organisation},
                  status=400 if request.method == "POST" else 200)


def _parents(request: HttpRequest) -> Any:
    return selectors.organisation_list(user=request.user).order_by("name_key")
