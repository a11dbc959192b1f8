"""U — forms of the staff UI for people and organisations.

Forms only parse and shape input; the rules live in ``rapport.people.services``. A service
``ValidationError`` is mapped back onto the form with ``apply_service_errors`` so the message
appears next to the field the user typed into.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from rapport.access.fieldsecurity import hidden_fields, readonly_fields
from rapport.people.models import ContactPoint, Interaction, Organisation

TEXT = {"class": "input"}


def _tags(value: str) -> list[str]:
    return [t.strip() for t in value.split(",") if t.strip()]


class SecuredFormMixin:
    """Drop fields the user may not see and freeze the ones they may not change (S3)."""

    model_label = ""

    def secure(self, user: Any) -> None:
        for name in hidden_fields(user, self.model_label):
            self.fields.pop(name, None)  # type: ignore[attr-defined]
        for name in readonly_fields(user, self.model_label):
            if name in self.fields:  # type: ignore[attr-defined]
                self.fields[name].disabled = True  # type: ignore[attr-defined]


class PersonForm(SecuredFormMixin, forms.Form):
    model_label = "people.Person"

    honorific = forms.CharField(max_length=32, required=False, label="Title")
    given_name = forms.CharField(max_length=100, required=False)
    middle_names = forms.CharField(max_length=100, required=False)
    family_name = forms.CharField(max_length=100, required=False)
    preferred_name = forms.CharField(max_length=100, required=False)
    email = forms.CharField(max_length=320, required=False, widget=forms.EmailInput(attrs={"autocomplete": "off"}))
    phone = forms.CharField(max_length=64, required=False, widget=forms.TextInput(attrs={"type": "tel"}),
                            help_text="Any format; numbers without a country code are read in the default region.")
    language = forms.CharField(max_length=16, required=False, help_text="e.g. en-GB")
    timezone = forms.CharField(max_length=64, required=False, help_text="e.g. Europe/London")
    country = forms.CharField(max_length=2, required=False, help_text="Two letters, e.g. GB")
    tags = forms.CharField(required=False, help_text="Comma separated")
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    version = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, user: Any, creating: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not creating:
            # Contact points of an existing person are edited one by one on the 360° view.
            del self.fields["email"], self.fields["phone"]
        self.secure(user)

    def contact_points(self) -> list[tuple[str, str]]:
        """(form field, kind) for each contact point given, in the order sent to the service."""
        points = []
        for name, kind in (("email", "email"), ("phone", "phone")):
            if name in self.cleaned_data and self.cleaned_data[name].strip():
                points.append((name, kind))
        return points

    def person_changes(self) -> dict[str, Any]:
        skip = {"email", "phone", "tags", "version"}
        return {name: self.cleaned_data[name] for name, field in self.fields.items()
                if name not in skip and not field.disabled}

    def tag_names(self) -> list[str] | None:
        if "tags" not in self.fields or self.fields["tags"].disabled:
            return None
        return _tags(self.cleaned_data.get("tags", ""))


class OrganisationForm(SecuredFormMixin, forms.Form):
    model_label = "people.Organisation"

    name = forms.CharField(max_length=200)
    domain = forms.CharField(max_length=253, required=False, help_text="e.g. example.com")
    parent = forms.ModelChoiceField(queryset=Organisation.objects.none(), required=False,
                                    empty_label="(none)", label="Parent organisation")
    tags = forms.CharField(required=False, help_text="Comma separated")
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args: Any, user: Any, parents: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["parent"].queryset = parents
        self.secure(user)

    def changes(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name, field in self.fields.items()
                if name != "tags" and not field.disabled}

    def tag_names(self) -> list[str] | None:
        if "tags" not in self.fields or self.fields["tags"].disabled:
            return None
        return _tags(self.cleaned_data.get("tags", ""))


class ContactPointForm(forms.Form):
    kind = forms.ChoiceField(choices=ContactPoint.Kind.choices)
    value = forms.CharField(max_length=1000)
    label = forms.CharField(max_length=32, required=False, help_text="home, work, mobile, …")
    source = forms.CharField(max_length=64, required=False, initial="staff UI")
    verified = forms.BooleanField(required=False)
    primary = forms.BooleanField(required=False)

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            self.fields["kind"].disabled = True


# What a quick action logs: kind → (channel, default direction).
QUICK_ACTIONS: dict[str, tuple[str, str, str]] = {
    "note": ("Note", Interaction.Channel.INTERNAL, Interaction.Direction.INTERNAL),
    "call": ("Call", Interaction.Channel.PHONE, Interaction.Direction.INBOUND),
    "letter": ("Letter", Interaction.Channel.POST, Interaction.Direction.INBOUND),
    "email": ("Email", Interaction.Channel.EMAIL, Interaction.Direction.INBOUND),
    "meeting": ("Meeting", Interaction.Channel.MEETING, Interaction.Direction.INTERNAL),
}


class InteractionForm(forms.Form):
    kind = forms.ChoiceField(choices=[(k, v[0]) for k, v in QUICK_ACTIONS.items()], initial="note",
                             widget=forms.RadioSelect)
    direction = forms.ChoiceField(choices=[("", "Default"), *Interaction.Direction.choices],
                                  required=False)
    summary = forms.CharField(max_length=300)
    body = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Details")
    sentiment = forms.ChoiceField(choices=Interaction.Sentiment.choices, initial="neutral")
    occurred_at = forms.DateTimeField(required=False, label="When",
                                      widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
                                      help_text="Leave empty for now")

    def service_arguments(self) -> dict[str, Any]:
        data = self.cleaned_data
        _, channel, direction = QUICK_ACTIONS[data["kind"]]
        return {"kind": data["kind"], "channel": channel, "direction": data["direction"] or direction,
                "summary": data["summary"], "body": data["body"], "sentiment": data["sentiment"],
                "occurred_at": data["occurred_at"]}


class EmploymentStartForm(forms.Form):
    organisation = forms.UUIDField(error_messages={"required": "Pick an organisation from the list."})
    title = forms.CharField(max_length=200, required=False)
    start_date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}),
                                 help_text="Leave empty for today")
    end_other_jobs = forms.BooleanField(required=False, initial=True, label="End current jobs elsewhere")


class EmploymentEndForm(forms.Form):
    end_date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}),
                               help_text="Leave empty for today")


class PersonFilterForm(forms.Form):
    name = forms.CharField(required=False)
    email = forms.CharField(required=False)
    phone = forms.CharField(required=False)
    organisation = forms.CharField(required=False)
    tag = forms.CharField(required=False)
    country = forms.CharField(required=False, max_length=2)


class OrganisationFilterForm(forms.Form):
    name = forms.CharField(required=False)
    domain = forms.CharField(required=False)
    tag = forms.CharField(required=False)


def apply_service_errors(form: forms.Form, error: ValidationError,
                         aliases: dict[str, str] | None = None) -> None:
    """Put a service ``ValidationError`` onto ``form``: known keys on their field, the rest on top.

    ``aliases`` maps service keys (``contact_points.0.value``) to form fields (``email``).
    """
    aliases = aliases or {}
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for key, errors in error.message_dict.items():
        target = aliases.get(key, key)
        if target == "timezone_name":
            target = "timezone"
        field = target if target in form.fields and not form.fields[target].widget.is_hidden else None
        for message in errors:
            form.add_error(field, message if field else (
                message if key in ("__all__", "version") else f"{key.replace('_', ' ').capitalize()}: {message}"))
