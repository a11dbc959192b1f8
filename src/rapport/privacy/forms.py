"""U — forms of the privacy screens. They parse input; the rules live in the services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from rapport.privacy.models import (
    Channel,
    ConsentBasis,
    NoticeVersion,
    RightsRequest,
    SuppressionList,
)
from rapport.privacy.purposes import MARKETING_PURPOSES, PURPOSES
from rapport.privacy.rights import CHANNELS

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")  # what <input type=date> reads
TIME = forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
MARKETING_CHOICES = [(k, PURPOSES[k].label) for k in MARKETING_PURPOSES]
ALL_PURPOSE_CHOICES = [(k, p.label) for k, p in PURPOSES.items()]
REQUEST_CHANNELS = [(c, c.replace("_", " ").capitalize()) for c in CHANNELS]


def apply_errors(form: forms.Form, error: ValidationError) -> None:
    """Put a service's ValidationError on the form fields it names (others on the form)."""
    if hasattr(error, "error_dict"):
        for name, messages in error.message_dict.items():
            # A hidden field cannot show its error: the form does, above the fields.
            shown = name in form.fields and not form.fields[name].widget.is_hidden
            form.add_error(name if shown else None, messages)
    else:
        form.add_error(None, error.messages)


class RightsRequestForm(forms.Form):
    kind = forms.ChoiceField(choices=RightsRequest.Kind.choices, label="Right exercised")
    channel = forms.ChoiceField(choices=REQUEST_CHANNELS, label="Received by", initial="email")
    received_on = forms.DateField(widget=DATE, initial=timezone.localdate,
                                  help_text="The deadline is one month from this date.")
    requester_name = forms.CharField(max_length=200, required=False, label="Requester's name",
                                     help_text="Needed only when the request is not linked to a person yet.")
    requester_contact = forms.CharField(max_length=320, required=False, label="Requester's contact details")
    details = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                              label="What was asked", help_text="Quote or summarise the request.")
    person = forms.UUIDField(required=False, widget=forms.HiddenInput)


class VerifyForm(forms.Form):
    method = forms.CharField(max_length=100, label="How was the identity verified?",
                             help_text="e.g. reply from the registered email address, ID document seen")
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                           help_text="Do not copy identity documents here.")


class ExtendForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), label="Reason for the extension",
                             help_text="The request is complex or there are many; tell the requester within the first month.")


class ExecuteForm(forms.Form):
    HELP = {
        "rectification": "What was corrected (required).",
        "access": "How the export was sent to the requester, for the record.",
        "portability": "How the export was sent to the requester, for the record.",
        "restriction": "Why processing is restricted (e.g. accuracy contested).",
    }

    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Note")

    def __init__(self, *args: Any, kind: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if kind in ("erasure", "objection"):
            del self.fields["note"]  # nothing to add: the outcome says what was done
        else:
            self.fields["note"].help_text = self.HELP.get(kind, "")
            self.fields["note"].required = kind == "rectification"


class RefuseForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), label="Reason")


class LinkPersonForm(forms.Form):
    person = forms.UUIDField(label="Person id", help_text="The id in the person's page address (/people/<id>/).")


class ConsentForm(forms.Form):
    ACTIONS = [("grant", "Consent given"), ("withdraw", "Consent withdrawn")]

    action = forms.ChoiceField(choices=ACTIONS, widget=forms.RadioSelect, initial="grant", label="What happened")
    purpose = forms.ChoiceField(choices=MARKETING_CHOICES)
    channel = forms.ChoiceField(choices=Channel.choices)
    lawful_basis = forms.ChoiceField(choices=ConsentBasis.choices, initial=ConsentBasis.CONSENT, label="Basis")
    notice_version = forms.ModelChoiceField(queryset=NoticeVersion.objects.none(), required=False,
                                            label="Notice shown", empty_label="(none)")
    double_opt_in = forms.BooleanField(required=False, initial=True,
                                       label="Email: send a confirmation link first (double opt-in)")
    refusal_offered = forms.BooleanField(required=False, label="Soft opt-in: a simple way to refuse was offered")
    how = forms.CharField(max_length=300, required=False, label="How it was given",
                          help_text="e.g. on the phone, signed form, at the counter")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["notice_version"].queryset = NoticeVersion.objects.select_related("notice").order_by(
            "notice__key", "-version")


class PreferencesForm(forms.Form):
    preferred_channel = forms.ChoiceField(choices=[("", "(no preference)"), *Channel.choices], required=False)
    email_allowed = forms.BooleanField(required=False, label="Email welcome")
    phone_allowed = forms.BooleanField(required=False, label="Phone calls welcome")
    sms_allowed = forms.BooleanField(required=False, label="SMS welcome")
    post_allowed = forms.BooleanField(required=False, label="Post welcome")
    social_allowed = forms.BooleanField(required=False, label="Social media welcome")
    max_per_week = forms.IntegerField(required=False, min_value=0, max_value=50,
                                      label="At most this many marketing contacts per week")
    quiet_start = forms.TimeField(required=False, widget=TIME, label="Quiet hours from")
    quiet_end = forms.TimeField(required=False, widget=TIME, label="Quiet hours until")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for key in MARKETING_PURPOSES:
            self.fields[f"topic_{key}"] = forms.BooleanField(required=False, label=f"Subscribed: {PURPOSES[key].label}")

    def changes(self) -> dict[str, Any]:
        names = ("preferred_channel", "email_allowed", "phone_allowed", "sms_allowed", "post_allowed",
                 "social_allowed", "max_per_week", "quiet_start", "quiet_end")
        return {name: self.cleaned_data[name] for name in names}

    def topics(self) -> dict[str, bool]:
        return {key: self.cleaned_data[f"topic_{key}"] for key in MARKETING_PURPOSES}


class ManualSuppressionForm(forms.Form):
    kind = forms.ChoiceField(choices=[("email", "Email address"), ("phone", "Phone number")])
    value = forms.CharField(max_length=320, help_text="Stored only as a keyed hash.")
    reason = forms.CharField(max_length=200, required=False, help_text="No personal details here.")


class ListImportForm(forms.Form):
    name = forms.CharField(max_length=200, label="List name", initial="TPS")
    kind = forms.ChoiceField(choices=SuppressionList.Kind.choices)
    screened_on = forms.DateField(widget=DATE, initial=timezone.localdate, label="Screened / downloaded on")
    hashed = forms.BooleanField(required=False, label="Lines are SHA-256 hex digests (pre-hashed list)")
    values = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 6}),
                             label="One identifier per line")
    file = forms.FileField(required=False, label="…or a text/CSV file (first column)")

    def lines(self) -> list[str]:
        lines = (self.cleaned_data.get("values") or "").splitlines()
        upload = self.cleaned_data.get("file")
        if upload is not None:
            text = upload.read().decode("utf-8-sig", errors="replace")
            lines += [line.split(",")[0].strip().strip('"') for line in text.splitlines()]
        return lines

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not (data.get("values") or "").strip() and not data.get("file"):
            raise ValidationError("Paste the identifiers or choose a file.")
        return data


class RetentionPolicyForm(forms.Form):
    months = forms.IntegerField(min_value=1, max_value=1200)
    enabled = forms.BooleanField(required=False)


class LegalHoldForm(forms.Form):
    reason = forms.CharField(max_length=500, label="Legal matter", help_text="Which claim or investigation needs the data kept.")


class RestrictForm(forms.Form):
    reason = forms.CharField(max_length=500, label="Reason", help_text="e.g. accuracy contested, objection being assessed")


class GateCheckForm(forms.Form):
    channel = forms.ChoiceField(choices=Channel.choices)
    purpose = forms.ChoiceField(choices=ALL_PURPOSE_CHOICES)


class SecurityNoticeForm(forms.Form):
    subject = forms.CharField(max_length=200)
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), label="Message")
    people = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), label="Affected people",
                             help_text="Person ids, one per line (or comma separated).")
    channel = forms.ChoiceField(choices=[(Channel.EMAIL, "Email"), (Channel.SMS, "SMS"), (Channel.POST, "Post")])

    def person_ids(self) -> list[str]:
        raw = self.cleaned_data["people"].replace(",", "\n").split()
        return [r.strip() for r in raw if r.strip()]
