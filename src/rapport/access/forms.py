"""S1–S8 — forms of the security settings, MFA, break-glass and attachment screens.

Forms only parse input; the rules live in ``rapport.access.services``. ``apply_errors`` puts
a service ``DomainError``'s field errors next to the fields the user typed into.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms

from rapport.access.models import Access, Role, SharingRule, Team, User
from rapport.access.permissions import OBJECT_TYPES
from rapport.access.sharing import RECORD_TYPES
from rapport.core.errors import DomainError

NETWORK_HELP = "One IPv4 or IPv6 address or CIDR range per line, e.g. 192.0.2.0/24 or 2001:db8::/32. Empty: anywhere."


def apply_errors(form: forms.Form, error: DomainError) -> None:
    if not error.field_errors:
        form.add_error(None, str(error))
    for name, messages in error.field_errors.items():
        target = name if name in form.fields else None
        for message in messages:
            form.add_error(target, message if target else f"{name.replace('_', ' ').capitalize()}: {message}")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]


class RoleForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    requires_mfa = forms.BooleanField(required=False, label="Require two-step sign-in (MFA)")
    requires_reason = forms.BooleanField(required=False, label="Ask for a reason before opening restricted records")
    is_default = forms.BooleanField(required=False, label="Default role for users given none")
    allowed_networks = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                                       label="Allowed networks", help_text=NETWORK_HELP)

    def __init__(self, *args: Any, role: Role | None = None, **kwargs: Any) -> None:
        if role is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": role.name, "description": role.description, "requires_mfa": role.requires_mfa,
                "requires_reason": role.requires_reason, "is_default": role.is_default,
                "allowed_networks": "\n".join(role.allowed_networks or []),
            }
        super().__init__(*args, **kwargs)
        self.is_administrator = bool(role and role.is_administrator)
        granted = (role.permissions or {}) if role is not None else {}
        self.permission_rows = []
        for object_type in OBJECT_TYPES.values():
            cells = []
            for action in object_type.actions:
                name = f"perm__{object_type.label}__{action}"
                self.fields[name] = forms.BooleanField(
                    required=False, label=f"{object_type.name}: {action}",
                    initial=self.is_administrator or action in granted.get(object_type.label, []),
                    disabled=self.is_administrator)
                cells.append((action, name))
            self.permission_rows.append((object_type, cells))

    def bound_permission_rows(self) -> list[tuple[Any, list[tuple[str, Any]]]]:
        return [(ot, [(action, self[name]) for action, name in cells]) for ot, cells in self.permission_rows]

    def permissions(self) -> dict[str, list[str]]:
        chosen: dict[str, list[str]] = {}
        for object_type, cells in self.permission_rows:
            actions = [action for action, name in cells if self.cleaned_data.get(name)]
            if actions:
                chosen[object_type.label] = actions
        return chosen

    def networks(self) -> list[str]:
        return _lines(self.cleaned_data.get("allowed_networks", ""))


class FieldRulesForm(forms.Form):
    """One choice per field of one model: hidden / read / write."""

    LEVELS = [("write", "Read and write"), ("read", "Read only"), ("hidden", "Hidden")]

    def __init__(self, *args: Any, fields: list[tuple[str, str]], current: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, label in fields:
            self.fields[name] = forms.ChoiceField(choices=self.LEVELS, initial=current.get(name, "write"),
                                                  label=label, required=False)

    def levels(self) -> dict[str, str]:
        """The levels sent; a field left out of the post keeps its current level."""
        return {name: level for name, level in self.cleaned_data.items() if level}


class TeamForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    members = forms.ModelMultipleChoiceField(queryset=User.objects.filter(is_active=True), required=False,
                                             widget=forms.CheckboxSelectMultiple)


class UserAccessForm(forms.Form):
    role = forms.ModelChoiceField(queryset=Role.objects.all(), required=False, empty_label="(default role)")
    manager = forms.ModelChoiceField(queryset=User.objects.filter(is_active=True), required=False,
                                     empty_label="(nobody)", help_text="A manager sees what their reports see.")
    teams = forms.ModelMultipleChoiceField(queryset=Team.objects.all(), required=False,
                                           widget=forms.CheckboxSelectMultiple)
    allowed_networks = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                                       label="Allowed networks (on top of the role's)", help_text=NETWORK_HELP)
    is_active = forms.BooleanField(required=False, label="Active (may sign in)")

    def __init__(self, *args: Any, subject: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["manager"].queryset = User.objects.filter(is_active=True).exclude(pk=subject.pk)

    def networks(self) -> list[str]:
        return _lines(self.cleaned_data.get("allowed_networks", ""))


class SharingDefaultsForm(forms.Form):
    def __init__(self, *args: Any, current: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for label, record_type in RECORD_TYPES.items():
            name = OBJECT_TYPES[label].name if label in OBJECT_TYPES else label
            self.fields[label] = forms.ChoiceField(choices=Access.choices, label=name,
                                                   initial=current.get(label, record_type.default_access))


class SharingRuleForm(forms.Form):
    name = forms.CharField(max_length=100)
    object_type = forms.ChoiceField(label="Records of type")
    owner_team = forms.ModelChoiceField(queryset=Team.objects.all(), required=False,
                                        label="Owned by members of team", empty_label="(any owner)")
    criteria = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                               help_text='…and matching, one per line: field=value (e.g. country=GB, '
                                         'tags__name=VIP). Several values: country=GB,IE')
    target_role = forms.ModelChoiceField(queryset=Role.objects.all(), required=False, label="Share with role",
                                         empty_label="(no role)")
    target_team = forms.ModelChoiceField(queryset=Team.objects.all(), required=False, label="…or with team",
                                         empty_label="(no team)")
    access = forms.ChoiceField(choices=[c for c in Access.choices if c[0] != "private"])
    active = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args: Any, rule: SharingRule | None = None, **kwargs: Any) -> None:
        if rule is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": rule.name, "object_type": rule.object_type, "owner_team": rule.owner_team_id,
                "criteria": criteria_text(rule.criteria), "target_role": rule.target_role_id,
                "target_team": rule.target_team_id, "access": rule.access, "active": rule.active,
            }
        super().__init__(*args, **kwargs)
        self.fields["object_type"].choices = [
            (label, OBJECT_TYPES[label].name if label in OBJECT_TYPES else label) for label in RECORD_TYPES]

    def clean_criteria(self) -> dict[str, Any]:
        text = self.cleaned_data.get("criteria", "")
        criteria: dict[str, Any] = {}
        for line in text.splitlines():
            if not line.strip():
                continue
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                raise forms.ValidationError(f"Write each criterion as field=value (not {line.strip()!r}).")
            values = [v.strip() for v in value.split(",") if v.strip()]
            criteria[key.strip()] = values if len(values) > 1 else (values[0] if values else "")
        return criteria


def criteria_text(criteria: dict[str, Any]) -> str:
    return "\n".join(f"{k}={','.join(v) if isinstance(v, list) else v}" for k, v in (criteria or {}).items())


class ShareForm(forms.Form):
    user = forms.ModelChoiceField(queryset=User.objects.filter(is_active=True), required=False,
                                  empty_label="(no user)")
    team = forms.ModelChoiceField(queryset=Team.objects.all(), required=False, empty_label="(no team)")
    role = forms.ModelChoiceField(queryset=Role.objects.all(), required=False, empty_label="(no role)")
    access = forms.ChoiceField(choices=[c for c in Access.choices if c[0] != "private"])


class BreakGlassForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=1000,
                             help_text="Why do you need this record now? This is recorded in the audit trail.")


class AttachmentForm(forms.Form):
    file = forms.FileField()
    description = forms.CharField(max_length=300, required=False)
    restricted = forms.BooleanField(required=False, label="Restricted file",
                                    help_text="Only the record's owner, you, and roles allowed restricted files see it.")


class TokenForm(forms.Form):
    token = forms.CharField(max_length=32, label="Code",
                            widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric",
                                                          "autofocus": True}),
                            help_text="The 6-digit code from your authenticator app, or a recovery code.")


class DemographicsForm(forms.Form):
    """Sensitive demographics of a person (sealed at rest); fields the role may not write are dropped."""

    birth_date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    gender = forms.ChoiceField(required=False)
    income_band = forms.ChoiceField(required=False, label="Household income band")
    version = forms.IntegerField(widget=forms.HiddenInput)

    def __init__(self, *args: Any, hidden: frozenset[str], readonly: frozenset[str], **kwargs: Any) -> None:
        from rapport.people.models import Person

        super().__init__(*args, **kwargs)
        self.fields["gender"].choices = [("", "—"), *Person.Gender.choices]
        self.fields["income_band"].choices = [("", "—"), *Person.IncomeBand.choices]
        for name in hidden:
            self.fields.pop(name, None)
        for name in readonly:
            if name in self.fields:
                self.fields[name].disabled = True

    def changes(self) -> dict[str, Any]:
        return {name: (self.cleaned_data[name] or None) for name, field in self.fields.items()
                if name != "version" and not field.disabled}


class AuditSearchForm(forms.Form):
    actor = forms.CharField(required=False, label="Who (username)")
    person = forms.UUIDField(required=False, label="Person id")
    action = forms.CharField(required=False)
    channel = forms.ChoiceField(required=False, choices=[("", "Any")])
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="Before")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from rapport.access.models import AuditEntry

        super().__init__(*args, **kwargs)
        self.fields["channel"].choices = [("", "Any"), *AuditEntry.Channel.choices]


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True, default=str)
