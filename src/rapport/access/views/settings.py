"""S1–S4 — the security settings screens: roles (permissions, MFA, break-glass, networks),
field security, teams, users, sharing defaults and rules. Administrators only."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rapport.access import mfa, services
from rapport.access.forms import (
    FieldRulesForm,
    RoleForm,
    SharingDefaultsForm,
    SharingRuleForm,
    TeamForm,
    UserAccessForm,
    apply_errors,
    criteria_text,
)
from rapport.access.models import FieldRule, Role, SharingDefault, SharingRule, Team, User
from rapport.access.permissions import OBJECT_TYPES, permission_required
from rapport.access.sharing import RECORD_TYPES
from rapport.core.errors import DomainError

MANAGE = ("access.settings", "manage")
# Fields field security can govern, per model: (name, label). "payment_history" stands for
# the payments the transactions app shows on a person.
SECURED_MODELS: dict[str, list[tuple[str, str]]] = {}


def secured_fields(model_label: str) -> list[tuple[str, str]]:
    from django.apps import apps

    if model_label in SECURED_MODELS:
        return SECURED_MODELS[model_label]
    model = apps.get_model(model_label)
    skip = {"id", "created_at", "updated_at", "version"}
    fields = [(f.name, str(f.verbose_name).capitalize()) for f in model._meta.concrete_fields
              if f.editable and f.name not in skip and not f.name.endswith("_key")]
    fields += [(f.name, str(f.verbose_name).capitalize()) for f in model._meta.many_to_many]
    if model_label == "people.Person":
        fields.append(("payment_history", "Payment history"))
    SECURED_MODELS[model_label] = fields
    return fields


def _get(model: type, pk: UUID) -> object:
    found = model.objects.filter(pk=pk).first()  # type: ignore[attr-defined]
    if found is None:
        raise Http404("Not found.")
    return found


@permission_required(*MANAGE)
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "access/settings/index.html", {
        "roles": Role.objects.annotate(members=Count("users")).order_by("name"),
        "teams": Team.objects.annotate(size=Count("memberships")).order_by("name"),
        "users": User.objects.count(),
        "rules": SharingRule.objects.count(),
    })


# ------------------------------------------------------------------------------- roles


@permission_required(*MANAGE)
@require_http_methods(["GET", "POST"])
def role_edit(request: HttpRequest, pk: UUID | None = None) -> HttpResponse:
    role = _get(Role, pk) if pk else None
    form = RoleForm(request.POST or None, role=role)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            saved = services.role_save(actor=request.user, role=role, name=data["name"],
                                       description=data["description"], permissions=form.permissions(),
                                       requires_mfa=data["requires_mfa"], requires_reason=data["requires_reason"],
                                       allowed_networks=form.networks(), is_default=data["is_default"],
                                       request=request)
        except DomainError as err:
            apply_errors(form, err)
        else:
            messages.success(request, f"Role {saved.name} saved.")
            return redirect("access:settings")
    return render(request, "access/settings/role_form.html", {"form": form, "role": role},
                  status=400 if request.method == "POST" else 200)


@permission_required(*MANAGE)
@require_POST
def role_delete(request: HttpRequest, pk: UUID) -> HttpResponse:
    role = _get(Role, pk)
    try:
        services.role_delete(actor=request.user, role=role, request=request)  # type: ignore[arg-type]
    except DomainError as err:
        messages.error(request, str(err))
    else:
        messages.success(request, "Role deleted.")
    return redirect("access:settings")


@permission_required(*MANAGE)
@require_http_methods(["GET", "POST"])
def role_fields(request: HttpRequest, pk: UUID) -> HttpResponse:
    """Field security of one role: hidden / read / write per field of people and organisations."""
    role = _get(Role, pk)
    models = ["people.Person", "people.Organisation"]
    forms = []
    for label in models:
        current = dict(FieldRule.objects.filter(role=role, model_label=label).values_list("field", "level"))
        forms.append((label, FieldRulesForm(request.POST or None, prefix=label.replace(".", "-"),
                                            fields=secured_fields(label), current=current)))
    if request.method == "POST" and all(f.is_valid() for _, f in forms):
        try:
            for label, form in forms:
                services.field_rules_set(actor=request.user, role=role, model_label=label,  # type: ignore[arg-type]
                                         levels=form.levels(), request=request)
        except DomainError as err:
            messages.error(request, str(err))
        else:
            messages.success(request, "Field security saved.")
            return redirect("access:settings")
    return render(request, "access/settings/role_fields.html", {"role": role, "forms": forms},
                  status=400 if request.method == "POST" else 200)


# ------------------------------------------------------------------------------- teams


@permission_required(*MANAGE)
@require_http_methods(["GET", "POST"])
def team_edit(request: HttpRequest, pk: UUID | None = None) -> HttpResponse:
    team = _get(Team, pk) if pk else None
    initial = ({"name": team.name, "description": team.description,  # type: ignore[attr-defined]
                "members": list(team.members.all())} if team else None)  # type: ignore[attr-defined]
    form = TeamForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.team_save(actor=request.user, team=team, name=data["name"],  # type: ignore[arg-type]
                               description=data["description"], member_ids=[u.pk for u in data["members"]],
                               request=request)
        except DomainError as err:
            apply_errors(form, err)
        else:
            messages.success(request, "Team saved.")
            return redirect("access:settings")
    return render(request, "access/settings/team_form.html", {"form": form, "team": team},
                  status=400 if request.method == "POST" else 200)


@permission_required(*MANAGE)
@require_POST
def team_delete(request: HttpRequest, pk: UUID) -> HttpResponse:
    services.team_delete(actor=request.user, team=_get(Team, pk), request=request)  # type: ignore[arg-type]
    messages.success(request, "Team deleted.")
    return redirect("access:settings")


# ------------------------------------------------------------------------------- users


@permission_required(*MANAGE)
@require_GET
def user_list(request: HttpRequest) -> HttpResponse:
    users = User.objects.select_related("role", "manager").prefetch_related("teams").order_by("username")
    return render(request, "access/settings/user_list.html", {"users": users})


@permission_required(*MANAGE)
@require_http_methods(["GET", "POST"])
def user_edit(request: HttpRequest, pk: UUID) -> HttpResponse:
    subject: User = _get(User, pk)  # type: ignore[assignment]
    initial = {"role": subject.role_id, "manager": subject.manager_id, "teams": list(subject.teams.all()),
               "allowed_networks": "\n".join(subject.allowed_networks or []), "is_active": subject.is_active}
    form = UserAccessForm(request.POST or None, initial=initial, subject=subject)
    if request.method == "POST" and request.POST.get("reset_mfa"):
        mfa.mfa_reset(actor=request.user, user=subject, request=request)
        messages.success(request, f"Two-step sign-in reset for {subject.username}.")
        return redirect("access:user-edit", pk=subject.pk)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.user_access_update(actor=request.user, user=subject, role=data["role"],
                                        manager=data["manager"], team_ids=[t.pk for t in data["teams"]],
                                        allowed_networks=form.networks(), is_active=data["is_active"],
                                        request=request)
        except DomainError as err:
            apply_errors(form, err)
        else:
            messages.success(request, f"{subject.username} saved.")
            return redirect("access:user-list")
    return render(request, "access/settings/user_form.html", {
        "form": form, "subject": subject, "has_device": mfa.has_confirmed_device(subject),
    }, status=400 if request.method == "POST" else 200)


# ----------------------------------------------------------------------------- sharing


@permission_required(*MANAGE)
@require_http_methods(["GET", "POST"])
def sharing(request: HttpRequest) -> HttpResponse:
    current = dict(SharingDefault.objects.values_list("object_type", "access"))
    form = SharingDefaultsForm(request.POST or None, current=current)
    if request.method == "POST" and form.is_valid():
        for label, access in form.cleaned_data.items():
            if current.get(label, RECORD_TYPES[label].default_access) != access:
                services.sharing_default_set(actor=request.user, object_type=label, access=access, request=request)
        messages.success(request, "Sharing defaults saved.")
        return redirect("access:sharing")
    rules = SharingRule.objects.select_related("owner_team", "target_role", "target_team").order_by(
        "object_type", "name")
    return render(request, "access/settings/sharing.html", {
        "form": form, "rules": [(r, criteria_text(r.criteria)) for r in rules],
        "type_names": {k: v.name for k, v in OBJECT_TYPES.items()},
    })


@permission_required(*MANAGE)
@require_http_methods(["GET", "POST"])
def rule_edit(request: HttpRequest, pk: UUID | None = None) -> HttpResponse:
    rule = _get(SharingRule, pk) if pk else None
    form = SharingRuleForm(request.POST or None, rule=rule)  # type: ignore[arg-type]
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.sharing_rule_save(actor=request.user, rule=rule, name=data["name"],  # type: ignore[arg-type]
                                       object_type=data["object_type"], owner_team=data["owner_team"],
                                       criteria=data["criteria"], target_role=data["target_role"],
                                       target_team=data["target_team"], access=data["access"],
                                       active=data["active"], request=request)
        except DomainError as err:
            apply_errors(form, err)
        else:
            messages.success(request, "Sharing rule saved.")
            return redirect("access:sharing")
    return render(request, "access/settings/rule_form.html", {"form": form, "rule": rule},
                  status=400 if request.method == "POST" else 200)


@permission_required(*MANAGE)
@require_POST
def rule_delete(request: HttpRequest, pk: UUID) -> HttpResponse:
    services.sharing_rule_delete(actor=request.user, rule=_get(SharingRule, pk), request=request)  # type: ignore[arg-type]
    messages.success(request, "Sharing rule deleted.")
    return redirect("access:sharing")
