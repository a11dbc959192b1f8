"""A3 — the wizard's forms: upload, mapping (one row per column), export."""

from __future__ import annotations

from typing import Any

from django import forms

from rapport.imports.mapping import TARGETS
from rapport.imports.models import Import
from rapport.imports.services import CONSENT_BASES
from rapport.imports.sources import ENCODINGS

DELIMITERS = [("", "Detect"), (",", "Comma ,"), (";", "Semicolon ;"), ("\t", "Tab"), ("|", "Pipe |")]


def target_choices() -> list[tuple[str, Any]]:
    groups: dict[str, list[tuple[str, str]]] = {}
    for target in TARGETS.values():
        groups.setdefault(target.group, []).append((target.key, target.label))
    return [("", "— ignore this column —"), *groups.items()]


class UploadForm(forms.Form):
    file = forms.FileField(help_text="CSV (any encoding), Excel .xlsx or vCard .vcf — Outlook and Google "
                                     "exports are recognised.")
    encoding = forms.ChoiceField(choices=[("", "Detect"), *ENCODINGS.items()], required=False)
    delimiter = forms.ChoiceField(choices=DELIMITERS, required=False)


class MappingForm(forms.Form):
    """One target + label per column; the date format, separator, policy and consent provenance."""

    date_format = forms.CharField(required=False, max_length=32,
                                  help_text="e.g. %d/%m/%Y or %m/%d/%Y. Empty: 2024-03-31 or 31/03/2024.")
    split = forms.CharField(required=False, max_length=8, initial=";", strip=False,
                            help_text="Separates several values in one cell (emails, phones, tags).")
    policy = forms.ChoiceField(choices=Import.Policy.choices, widget=forms.RadioSelect,
                               initial=Import.Policy.FILL_BLANKS)
    consent_purpose = forms.CharField(required=False, max_length=64, label="Purpose (topic)",
                                      initial="newsletter")
    consent_source = forms.CharField(required=False, max_length=200, label="Where was it collected?",
                                     help_text="e.g. sign-up sheet at the Leeds trade fair, May 2025")
    consent_lawful_basis = forms.ChoiceField(required=False, label="Lawful basis",
                                             choices=[("", "—"), *[(b, b.replace("_", " ")) for b in CONSENT_BASES]])
    consent_collected_on = forms.DateField(required=False, label="Date collected",
                                           widget=forms.DateInput(attrs={"type": "date"}))
    consent_notice_version = forms.CharField(required=False, max_length=64, label="Notice version shown",
                                             help_text="notice key:version, e.g. privacy:3")
    consent_confirmed = forms.BooleanField(required=False, label="Email addresses already confirmed (double opt-in)")
    save_as = forms.CharField(required=False, max_length=100, label="Save this mapping as")

    def __init__(self, *args: Any, imp: Import, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.imp = imp
        self.columns: list[dict[str, Any]] = []
        if imp.premapped:
            return
        columns = imp.mapping.get("columns", {})
        samples = list(zip(*imp.sample, strict=False)) if imp.sample else []
        for index, header in enumerate(imp.headers):
            rule = columns.get(header, {})
            target_name, label_name = f"col_{index}_target", f"col_{index}_label"
            self.fields[target_name] = forms.ChoiceField(choices=target_choices(), required=False,
                                                         initial=rule.get("target", ""), label=header)
            self.fields[label_name] = forms.CharField(required=False, max_length=32, initial=rule.get("label", ""),
                                                      label=f"Label for {header}")
            sample = [str(v) for v in (samples[index] if index < len(samples) else ()) if str(v).strip()][:3]
            self.columns.append({"header": header, "target": self[target_name], "label": self[label_name],
                                 "sample": sample})

    def mapping(self) -> dict[str, Any]:
        columns = {}
        for index, header in enumerate(self.imp.headers):
            target = self.cleaned_data.get(f"col_{index}_target")
            if target:
                columns[header] = {"target": target, "label": self.cleaned_data.get(f"col_{index}_label", "")}
        return {"columns": columns, "date_format": self.cleaned_data.get("date_format", ""),
                "split": self.cleaned_data.get("split") or ";", "preset": self.imp.preset}

    def consent(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {"purpose": data.get("consent_purpose", ""), "source": data.get("consent_source", ""),
                "lawful_basis": data.get("consent_lawful_basis", ""), "collected_on": data.get("consent_collected_on"),
                "notice_version": data.get("consent_notice_version", ""),
                "confirmed": data.get("consent_confirmed", False)}


class ExportForm(forms.Form):
    what = forms.ChoiceField(choices=[("people", "People"), ("organisations", "Organisations")], initial="people",
                             widget=forms.RadioSelect)
    format = forms.ChoiceField(choices=[("csv", "CSV (Excel, Google Sheets)"), ("xlsx", "Excel workbook"),
                                        ("vcf", "vCard 4.0 (address books)"), ("json", "JSON")],
                               initial="csv", widget=forms.RadioSelect)
    name = forms.CharField(required=False, max_length=100)
    email = forms.CharField(required=False, max_length=320)
    phone = forms.CharField(required=False, max_length=40)
    organisation = forms.CharField(required=False, max_length=200)
    tag = forms.CharField(required=False, max_length=64)
    country = forms.CharField(required=False, max_length=2)
    updated_since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

