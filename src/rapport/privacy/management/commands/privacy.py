"""``rapport privacy …`` — the privacy core from the command line (C1, C5, I5).

    rapport privacy processing-record [--format json|md] [--output FILE]
    rapport privacy export PERSON_ID [--format json|html] [--output FILE]
    rapport privacy erase PERSON_ID [--reason TEXT] [--yes]
    rapport privacy request list [--status open] [--kind KIND] [--overdue]
    rapport privacy request create --kind KIND (--person ID | --name NAME) [--channel C] [--received DATE] [--details T]
    rapport privacy request show|verify|extend|execute|refuse|cancel REQUEST_ID [...]
    rapport privacy suppress (--email E | --phone P)... [--reason TEXT]
    rapport privacy import-list FILE --name NAME --kind tps|ctps|us_dnc|ca_dncl|phone_dnc|mps|email_dnc --screened DATE [--hashed]
    rapport privacy decide PERSON_ID --channel C --purpose P

Adapters only: each sub-command parses, calls one service and prints. Bad input exits
non-zero with a message (``CommandError``). The command runs as the system (no staff user);
the access audit records the channel ``cli``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rapport.core.errors import DomainError
from rapport.privacy.models import RightsRequest, SuppressionList


class Command(BaseCommand):
    help = "Privacy core: record of processing, export, erasure, rights requests, suppression."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        record = sub.add_parser("processing-record", help="The record of processing (GDPR Art. 30).")
        record.add_argument("--format", choices=("json", "md"), default="md")
        record.add_argument("--output", help="Write to this file instead of standard output.")

        export = sub.add_parser("export", help="Everything held about a person (access / portability).")
        export.add_argument("person_id")
        export.add_argument("--format", choices=("json", "html"), default="json")
        export.add_argument("--output")

        erase = sub.add_parser("erase", help="Erase a person everywhere (anonymise, suppress identifiers).")
        erase.add_argument("person_id")
        erase.add_argument("--reason", default="erasure by the command line")
        erase.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")

        request = sub.add_parser("request", help="Rights requests.")
        request.add_argument("op", choices=("list", "create", "show", "verify", "extend", "execute", "refuse",
                                            "cancel"))
        request.add_argument("request_id", nargs="?")
        request.add_argument("--status", default="open")
        request.add_argument("--kind", default="")
        request.add_argument("--overdue", action="store_true")
        request.add_argument("--person")
        request.add_argument("--name", default="")
        request.add_argument("--contact", default="")
        request.add_argument("--channel", default="email")
        request.add_argument("--received", help="YYYY-MM-DD (default today)")
        request.add_argument("--details", default="")
        request.add_argument("--method", default="", help="verify: how the identity was checked")
        request.add_argument("--reason", default="", help="extend/refuse/cancel: why")
        request.add_argument("--note", default="")

        suppress = sub.add_parser("suppress", help="Add identifiers to the internal suppression list.")
        suppress.add_argument("--email", action="append", default=[])
        suppress.add_argument("--phone", action="append", default=[])
        suppress.add_argument("--reason", default="")

        imp = sub.add_parser("import-list", help="Import an external do-not-contact list (one value per line).")
        imp.add_argument("file")
        imp.add_argument("--name", required=True)
        imp.add_argument("--kind", required=True, choices=SuppressionList.Kind.values)
        imp.add_argument("--screened", required=True, help="YYYY-MM-DD: when the list was screened")
        imp.add_argument("--hashed", action="store_true", help="Lines are SHA-256 hex digests")

        decide = sub.add_parser("decide", help="Ask the contact gate about one person.")
        decide.add_argument("person_id")
        decide.add_argument("--channel", required=True)
        decide.add_argument("--purpose", required=True)

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        try:
            getattr(self, "_" + action.replace("-", "_"))(**options)
        except ValidationError as err:
            detail = "; ".join(f"{k}: {' '.join(v)}" for k, v in err.message_dict.items()) \
                if hasattr(err, "error_dict") else " ".join(err.messages)
            raise CommandError(detail) from err
        except (DomainError, ValueError) as err:
            raise CommandError(str(err)) from err

    # ---------------------------------------------------------------------------- actions

    def _processing_record(self, *, format: str, output: str | None, **_: Any) -> None:
        from rapport.privacy.record import processing_record, processing_record_markdown

        record = processing_record()
        text = json.dumps(record, indent=2, ensure_ascii=False) if format == "json" else \
            processing_record_markdown(record)
        self._emit(text, output)

    def _export(self, *, person_id: str, format: str, output: str | None, **_: Any) -> None:
        from django.template.loader import render_to_string

        from rapport.privacy.export import export_person

        person = _person(person_id)
        document = export_person(person=person, actor=None, channel="cli")
        if format == "json":
            text = json.dumps(document, indent=2, ensure_ascii=False)
        else:
            text = render_to_string("privacy/export_standalone.html", {"person": person, "doc": document})
        self._emit(text, output)

    def _erase(self, *, person_id: str, reason: str, yes: bool, **_: Any) -> None:
        from rapport.privacy.erasure import erase_person

        person = _person(person_id)
        if not yes:
            answer = input(f"Erase {person.display_name} ({person.pk}) everywhere? This cannot be undone. [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                raise CommandError("Not erased.")
        report = erase_person(actor=None, person=person, reason=reason, channel="cli")
        if report.already_erased:
            self.stdout.write(f"{person.pk} was already erased.")
        else:
            self.stdout.write(f"Erased {person.pk}: {report.summary}; {report.suppressed} identifiers suppressed.")

    def _request(self, *, op: str, request_id: str | None, **o: Any) -> None:
        from rapport.privacy import rights, selectors

        if op == "list":
            queue = selectors.request_queue(status=o["status"], kind=o["kind"], overdue_only=o["overdue"])
            for r in queue:
                flag = " OVERDUE" if rights.is_overdue(r) else ""
                who = r.person_id or r.requester_name or r.requester_contact
                self.stdout.write(f"{r.pk}  {r.kind:<13} {r.status:<9} due {r.due_on}{flag}  {who}")
            return
        if op == "create":
            person = _person(o["person"]) if o["person"] else None
            received = _date(o["received"]) if o["received"] else None
            created = rights.request_create(actor=None, kind=o["kind"], person=person, requester_name=o["name"],
                                            requester_contact=o["contact"], channel=o["channel"],
                                            details=o["details"], received_on=received, via="cli")
            self.stdout.write(f"{created.pk} {created.kind} received {created.received_on}, due {created.due_on}")
            return
        if not request_id:
            raise CommandError(f"Give the request id: rapport privacy request {op} REQUEST_ID")
        item = RightsRequest.objects.filter(pk=_uuid(request_id)).first()
        if item is None:
            raise CommandError(f"No rights request {request_id}.")
        if op == "verify":
            item = rights.request_verify(actor=None, request=item, method=o["method"], note=o["note"])
        elif op == "extend":
            item = rights.request_extend(actor=None, request=item, reason=o["reason"])
        elif op == "execute":
            item = rights.request_execute(actor=None, request=item, note=o["note"], channel="cli")
        elif op == "refuse":
            item = rights.request_refuse(actor=None, request=item, reason=o["reason"])
        elif op == "cancel":
            item = rights.request_cancel(actor=None, request=item, reason=o["reason"])
        self.stdout.write(f"{item.pk} {item.kind} {item.status} due {item.due_on}"
                          + (f": {item.outcome}" if item.outcome else ""))

    def _suppress(self, *, email: list[str], phone: list[str], reason: str, **_: Any) -> None:
        from rapport.privacy.suppression import suppress

        if not email and not phone:
            raise CommandError("Give at least one --email or --phone.")
        added = suppress(emails=email, phones=phone, reason=reason)
        self.stdout.write(f"{added} entries added to the suppression list.")

    def _import_list(self, *, file: str, name: str, kind: str, screened: str, hashed: bool, **_: Any) -> None:
        from rapport.privacy.suppression import import_list

        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No such file: {file}")
        lines = [line.split(",")[0].strip().strip('"') for line in
                 path.read_text(encoding="utf-8-sig", errors="replace").splitlines()]
        imported = import_list(name=name, kind=kind, screened_on=_date(screened), values=lines, hashed=hashed)
        self.stdout.write(f"Imported {imported.entry_count} entries into “{imported.name}” "
                          f"(screened {imported.screened_on}).")

    def _decide(self, *, person_id: str, channel: str, purpose: str, **_: Any) -> None:
        from rapport.privacy.gate import decide

        decision = decide(_person(person_id), channel, purpose, context="cli")
        self.stdout.write("allowed" if decision.allowed else "denied")
        for reason in decision.reasons:
            self.stdout.write(f"  {reason.code}: {reason.message}")

    def _emit(self, text: str, output: str | None) -> None:
        if output:
            try:
                Path(output).write_text(text, encoding="utf-8")
            except OSError as err:
                raise CommandError(f"Cannot write {output}: {err}") from err
            self.stdout.write(f"Written to {output}")
        else:
            self.stdout.write(text)


def _uuid(value: str) -> Any:
    import uuid

    try:
        return uuid.UUID(value)
    except ValueError as err:
        raise CommandError(f"Not an id: {value!r}.") from err


def _person(value: str) -> Any:
    from rapport.people.models import Person

    person = Person.objects.filter(pk=_uuid(value)).first()
    if person is None:
        raise CommandError(f"No person {value}.")
    return person


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as err:
        raise CommandError(f"Not a date (YYYY-MM-DD): {value!r}.") from err
