"""P1–P3 reads. Every function takes the user and starts from ``visible_to(user)`` (S2)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch, Q, QuerySet

from rapport.access.sharing import restrict_first
from rapport.core.search import fold, fold_tokens, prefix_q
from rapport.identity.normalise import InvalidIdentifier, normalise_phone, phone_search_key
from rapport.people.models import ContactPoint, Employment, Interaction, Organisation, Person

SEARCH_LIMIT = 8


def person_list(*, user: Any, name: str = "", email: str = "", phone: str = "",
                organisation: str = "", tag: str = "", updated_since: dt.datetime | None = None,
                country: str = "") -> QuerySet[Person]:
    """People visible to ``user`` matching every given filter (A1 filters, U list view)."""
    people = Person.objects.visible_to(user)
    if name:
        people = people.filter(_name_q(name))
    if email:
        people = people.filter(pk__in=ContactPoint.objects.filter(
            kind=ContactPoint.Kind.EMAIL, normalised=email.strip().lower()).values("person_id"))
    if phone:
        people = people.filter(pk__in=_phone_matches(phone, exact=True).values("person_id"))
    if organisation:
        people = people.filter(pk__in=Employment.objects.filter(
            _organisation_ref_q(organisation, "organisation__")).values("person_id"))
    if tag:
        people = people.filter(tags__name=tag)
    if updated_since:
        people = people.filter(updated_at__gte=updated_since)
    if country:
        people = people.filter(country=country.upper())
    return people


def person_list_for_display(*, user: Any, **filters: Any) -> QuerySet[Person]:
    """``person_list`` with what a list row shows fetched up front (constant query count)."""
    return person_list(user=user, **filters).prefetch_related(
        Prefetch("contact_points", queryset=ContactPoint.objects.filter(primary=True)),
        Prefetch("employments", queryset=Employment.objects.filter(end_date__isnull=True)
                 .select_related("organisation")),
        "tags",
    )


def person_list_for_api(*, user: Any, **filters: Any) -> QuerySet[Person]:
    """``person_list`` with everything the API shows per person fetched up front.

    Four queries for a page of any size: people, contact points, tags, jobs with their
    organisation (no N+1; ``bench/api.py`` counts them at two database sizes).
    """
    return person_list(user=user, **filters).prefetch_related(
        "contact_points", "tags",
        Prefetch("employments", queryset=Employment.objects.select_related("organisation")
                 .order_by(*API_JOB_ORDER)),
    )


API_JOB_ORDER = ("end_date", "-start_date", "-created_at")
CONTACT_POINT_COLUMNS = ("id", "person_id", "kind", "label", "value", "normalised", "source", "verified",
                         "primary", "created_at", "updated_at")
JOB_COLUMNS = ("id", "person_id", "organisation_id", "organisation__name", "title", "start_date", "end_date",
               "created_at", "updated_at")


@dataclass
class PersonPageDetails:
    """What a list page shows besides the person rows, as plain values keyed by person id."""

    contact_points: dict[Any, list[dict[str, Any]]]
    tags: dict[Any, list[str]]
    employments: dict[Any, list[dict[str, Any]]]


def person_page_details(*, person_ids: list[Any]) -> PersonPageDetails:
    """Contact points, tags and jobs of a page of people: three queries, no model instances.

    The API list reads these instead of ``prefetch_related``: the same rows in the same order,
    without building a model object and a related manager per row (the larger part of a page's
    cost). Call it only with ids already filtered through ``visible_to``.
    """
    details = PersonPageDetails({pk: [] for pk in person_ids}, {pk: [] for pk in person_ids},
                                {pk: [] for pk in person_ids})
    if not person_ids:
        return details
    for row in (ContactPoint.objects.filter(person_id__in=person_ids)
                .order_by(*ContactPoint._meta.ordering).values(*CONTACT_POINT_COLUMNS)):
        details.contact_points[row["person_id"]].append(row)
    for person_id, name in (Person.tags.through.objects.filter(person_id__in=person_ids)
                            .order_by("tag__name").values_list("person_id", "tag__name")):
        details.tags[person_id].append(name)
    for row in (Employment.objects.filter(person_id__in=person_ids).order_by(*API_JOB_ORDER)
                .values(*JOB_COLUMNS)):
        details.employments[row["person_id"]].append(row)
    return details


def person_get(*, user: Any, person_id: Any, action: str = "read") -> Person:
    """One person visible to ``user`` with their contact points, jobs and tags; 404 otherwise."""
    return (
        Person.objects.visible_to(user, action)
        .select_related("owner")
        .prefetch_related(
            "contact_points", "tags",
            Prefetch("employments", queryset=Employment.objects.select_related("organisation")
                     .order_by("end_date", "-start_date")),
        )
        .get(pk=person_id)
    )


def person_timeline(*, user: Any, person: Person, limit: int = 50,
                    before: dt.datetime | None = None) -> list[Interaction]:
    """Newest first, across every channel (P3)."""
    interactions = Interaction.objects.filter(person=person).select_related("organisation", "created_by")
    if before is not None:
        interactions = interactions.filter(occurred_at__lt=before)
    return list(interactions.order_by("-occurred_at", "-created_at")[:limit])


def organisation_list(*, user: Any, name: str = "", domain: str = "", parent: str = "",
                      tag: str = "", updated_since: dt.datetime | None = None) -> QuerySet[Organisation]:
    organisations = Organisation.objects.visible_to(user)
    if name:
        tokens = fold_tokens(name)
        folded = "".join(tokens)
        organisations = organisations.filter(prefix_q("name_key", folded)) if folded else organisations
    if domain:
        organisations = organisations.filter(domain=domain.strip().lower())
    if parent:
        organisations = organisations.filter(parent_id=parent)
    if tag:
        organisations = organisations.filter(tags__name=tag)
    if updated_since:
        organisations = organisations.filter(updated_at__gte=updated_since)
    return organisations


def organisation_get(*, user: Any, organisation_id: Any, action: str = "read") -> Organisation:
    return (
        Organisation.objects.visible_to(user, action)
        .select_related("parent", "owner")
        .prefetch_related("tags")
        .get(pk=organisation_id)
    )


def organisation_people(*, user: Any, organisation: Organisation) -> tuple[list[Employment], list[Employment]]:
    """Current and former employees of ``organisation`` that ``user`` may see."""
    visible = Person.objects.visible_to(user).values("pk")
    jobs = list(
        Employment.objects.filter(organisation=organisation, person__in=visible)
        .select_related("person").order_by("person__family_key", "person__given_key", "-start_date")
    )
    return [j for j in jobs if j.end_date is None], [j for j in jobs if j.end_date is not None]


# ------------------------------------------------------------------------------- search


@dataclass(frozen=True)
class SearchHit:
    kind: str  # "person" or "organisation"
    id: Any
    title: str
    subtitle: str
    matched: str  # what matched: name, email, phone, organisation


def global_search(*, user: Any, query: str, limit: int = SEARCH_LIMIT) -> list[SearchHit]:
    """Search-while-typing by name, email, phone (any format) or organisation (U).

    Each branch is an index range scan capped at ``limit``; results are merged in order of
    how specific the match is (identifier first, then name, then organisation). The name
    branch asks ``restrict_first`` for its page: a short prefix matches thousands of people,
    and the visibility condition is tested on the first candidates in name order rather than
    on every match (decision 0019); the answer is the same.
    """
    query = query.strip()
    if len(query) < 2:
        return []
    hits: list[SearchHit] = []
    seen: set[Any] = set()

    def add_people(people: QuerySet[Person] | list[Person], matched: str) -> None:
        for person in people[: limit]:
            if person.pk in seen or len(hits) >= limit:
                continue
            seen.add(person.pk)
            hits.append(SearchHit("person", person.pk, person.display_name,
                                  _person_subtitle(person), matched))

    primary_points = Prefetch("contact_points", queryset=ContactPoint.objects.filter(primary=True))

    def with_points() -> QuerySet[Person]:
        return Person.objects.visible_to(user).prefetch_related(primary_points)

    if "@" in query:
        emails = ContactPoint.objects.filter(prefix_email_q(query)).values_list("person_id", flat=True)[:limit]
        add_people(with_points().filter(pk__in=list(emails)), "email")
    digits = sum(ch.isdigit() for ch in query)
    if digits >= 3 and digits >= len(query.replace(" ", "")) // 2:
        add_people(with_points().filter(pk__in=list(_phone_matches(query).values_list("person_id", flat=True)[:limit])),
                   "phone")
    if len(hits) < limit and not query.startswith("+"):
        by_name = (Person.objects.filter(_name_q(query)).prefetch_related(primary_points)
                   .order_by("family_key", "given_key", "pk"))
        add_people(restrict_first(by_name, user, limit), "name")
    if len(hits) < limit:
        folded = fold(query)
        if folded:
            for org in Organisation.objects.visible_to(user).filter(prefix_q("name_key", folded))[: limit]:
                if len(hits) >= limit:
                    break
                hits.append(SearchHit("organisation", org.pk, org.name, org.domain, "organisation"))
    return hits


def prefix_email_q(query: str) -> Q:
    """Emails whose folded form starts with the folded query (search keys are a-z0-9 only)."""
    return Q(kind=ContactPoint.Kind.EMAIL) & prefix_q("search_key", fold(query))


def _name_q(text: str) -> Q:
    """Every word of ``text`` must start one of the person's names."""
    tokens = fold_tokens(text)
    q = Q()
    for token in tokens:
        q &= prefix_q("given_key", token) | prefix_q("family_key", token) | prefix_q("preferred_key", token)
    return q


def _phone_matches(text: str, *, exact: bool = False) -> QuerySet[ContactPoint]:
    points = ContactPoint.objects.filter(kind=ContactPoint.Kind.PHONE)
    if exact:
        try:
            return points.filter(normalised=normalise_phone(text).normalised)
        except InvalidIdentifier:
            return points.filter(search_key=phone_search_key(text) or "-")
    key = phone_search_key(text)
    if not key:
        return points.none()
    return points.filter(prefix_q("search_key", key))


def _organisation_ref_q(value: str, prefix: str = "") -> Q:
    """An organisation given by id or by (the start of) its name."""
    import uuid

    try:
        return Q(**{f"{prefix}pk": uuid.UUID(str(value))})
    except ValueError:
        return prefix_q(f"{prefix}name_key", fold(value))


def _person_subtitle(person: Person) -> str:
    points = list(person.contact_points.all())
    for kind in (ContactPoint.Kind.EMAIL, ContactPoint.Kind.PHONE):
        for point in points:
            if point.kind == kind:
                return point.value
    return ""


# -------------------------------------------------------------------------- staff UI reads

HOME_WEEKS = 12
HOME_CHANNELS = ("email", "phone", "post", "meeting", "web")


def home_summary(*, user: Any, weeks: int = HOME_WEEKS) -> dict[str, Any]:
    """U — what the home page shows: counts, weekly activity by channel, sentiment, recent entries.

    Grouping happens in the database (``TruncWeek`` works on SQLite and PostgreSQL), so the
    page costs the same few queries however many interactions there are.
    """
    from django.db.models import Count
    from django.db.models.functions import TruncWeek
    from django.utils import timezone

    visible_people = Person.objects.visible_to(user)
    interactions = Interaction.objects.filter(person__in=visible_people.values("pk"))
    today = timezone.localdate()
    first_monday = today - dt.timedelta(days=today.weekday()) - dt.timedelta(weeks=weeks - 1)
    since = timezone.make_aware(dt.datetime.combine(first_monday, dt.time.min))
    week_starts = [first_monday + dt.timedelta(weeks=i) for i in range(weeks)]
    index = {start: i for i, start in enumerate(week_starts)}
    by_channel: dict[str, list[int]] = {c: [0] * weeks for c in (*HOME_CHANNELS, "other")}
    by_sentiment: dict[str, list[int]] = {"compliment": [0] * weeks, "complaint": [0] * weeks}
    rows = (interactions.filter(occurred_at__gte=since)
            .annotate(week=TruncWeek("occurred_at")).values("week", "channel", "sentiment")
            .annotate(n=Count("pk")).order_by())
    for row in rows:
        week = row["week"]
        week = week.date() if isinstance(week, dt.datetime) else week
        slot = index.get(week)
        if slot is None:
            continue
        channel = row["channel"] if row["channel"] in HOME_CHANNELS else "other"
        by_channel[channel][slot] += row["n"]
        if row["sentiment"] in by_sentiment:
            by_sentiment[row["sentiment"]][slot] += row["n"]
    labels = [start.strftime("%-d %b") for start in week_starts]
    channel_labels = dict(Interaction.Channel.choices)
    channel_series = [{"key": c, "label": channel_labels.get(c, "Other"), "values": v,
                       "total": sum(v)} for c, v in by_channel.items()]
    recent = list(interactions.select_related("person", "created_by").order_by("-occurred_at", "-created_at")[:8])
    last_30 = timezone.now() - dt.timedelta(days=30)
    return {
        "counts": {
            "people": visible_people.count(),
            "organisations": Organisation.objects.visible_to(user).count(),
            "interactions_30d": interactions.filter(occurred_at__gte=last_30).count(),
            "complaints_30d": interactions.filter(occurred_at__gte=last_30,
                                                  sentiment=Interaction.Sentiment.COMPLAINT).count(),
        },
        "activity_chart": {"labels": labels, "series": [s for s in channel_series if s["total"]]
                           or channel_series[:1]},
        "sentiment_chart": {"labels": labels, "series": [
            {"key": "compliment", "label": "Compliments", "values": by_sentiment["compliment"],
             "total": sum(by_sentiment["compliment"])},
            {"key": "complaint", "label": "Complaints", "values": by_sentiment["complaint"],
             "total": sum(by_sentiment["complaint"])},
        ]},
        "recent": recent,
    }


def organisation_list_for_display(*, user: Any, **filters: Any) -> QuerySet[Organisation]:
    """``organisation_list`` with the parent, tags and current head count fetched up front."""
    from django.db.models import Count

    return (organisation_list(user=user, **filters).select_related("parent").prefetch_related("tags")
            .annotate(current_people=Count("employments", filter=Q(employments__end_date__isnull=True)))
            .order_by("name_key", "pk"))


def organisation_children(*, user: Any, organisation: Organisation) -> QuerySet[Organisation]:
    return Organisation.objects.visible_to(user).filter(parent=organisation).order_by("name_key")


def organisation_timeline(*, user: Any, organisation: Organisation, limit: int = 50) -> list[Interaction]:
    """Interactions logged against the organisation, for people ``user`` may see; newest first."""
    visible = Person.objects.visible_to(user).values("pk")
    return list(Interaction.objects.filter(organisation=organisation, person__in=visible)
                .select_related("person").order_by("-occurred_at", "-created_at")[:limit])


def organisation_search(*, user: Any, query: str, limit: int = SEARCH_LIMIT) -> list[Organisation]:
    """Organisations whose name starts with ``query`` (the job form's organisation picker)."""
    folded = fold(query)
    if not folded:
        return []
    return list(Organisation.objects.visible_to(user).filter(prefix_q("name_key", folded))
                .select_related("parent").order_by("name_key")[:limit])


def contact_point_get(*, user: Any, person: Person, point_id: Any) -> ContactPoint:
    """A contact point of a person the caller may already see (raises DoesNotExist otherwise)."""
    return ContactPoint.objects.get(person=person, pk=point_id)


def employment_get(*, user: Any, person: Person, employment_id: Any) -> Employment:
    return Employment.objects.select_related("organisation").get(person=person, pk=employment_id)


def person_timeline_page(*, user: Any, person: Person, limit: int = 50,
                         after: tuple[dt.datetime, dt.datetime] | None = None) -> list[Interaction]:
    """A page of the timeline after the keyset ``(occurred_at, created_at)`` of the last entry shown.

    Unlike a plain ``occurred_at < before`` cut, entries sharing the boundary time are not skipped.
    """
    interactions = Interaction.objects.filter(person=person).select_related("organisation", "created_by")
    if after is not None:
        occurred, created = after
        interactions = interactions.filter(Q(occurred_at__lt=occurred)
                                           | Q(occurred_at=occurred, created_at__lt=created))
    return list(interactions.order_by("-occurred_at", "-created_at")[:limit])
