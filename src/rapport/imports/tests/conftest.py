"""Fixtures for the imports tests: a private MEDIA_ROOT, uploading files, running imports in-process."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from rapport.imports import services
from rapport.imports.models import Import

DATA = Path(__file__).resolve().parents[4] / "tests" / "data"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return Path(settings.MEDIA_ROOT)


@pytest.fixture
def upload(staff_user):
    """Upload bytes (or a fixture file by name) as ``actor`` and return the inspected import."""

    def do(content: bytes | str, name: str = "", *, actor: Any = None, **options: Any) -> Import:
        if isinstance(content, str):
            name = name or content
            content = (DATA / content).read_bytes()
        return services.import_create(actor=actor or staff_user, upload=io.BytesIO(content),
                                      file_name=name or "upload.csv", **options)

    return do


@pytest.fixture
def run_import(staff_user):
    """Configure (optionally) and run an import to the end in this process."""

    def do(imp: Import, *, actor: Any = None, dry_run: bool = False, **configure: Any) -> Import:
        actor = actor or staff_user
        if configure:
            imp = services.import_configure(actor=actor, import_run=imp, **configure)
        if dry_run:
            Import.objects.filter(pk=imp.pk).update(status=Import.Status.PREVIEWING)
        else:
            services.prepare_run(actor=actor, import_run=imp)
        return services.import_execute(import_id=imp.pk, dry_run=dry_run)

    return do


def csv_bytes(rows: list[list[str]], *, encoding: str = "utf-8", delimiter: str = ",") -> bytes:
    import csv

    buffer = io.StringIO(newline="")
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode(encoding)
