"""A3 — background jobs: run or preview an import, resume stalled ones, purge old ones.

Jobs take the import's id and re-fetch it (STYLE 9); the work itself is
``services.import_execute``, the same function the CLI calls.
"""

from __future__ import annotations

from django_tasks import task

from rapport.imports import services


@task()
def run_import(import_id: str, dry_run: bool = False) -> dict:
    imp = services.import_execute(import_id=import_id, dry_run=dry_run)
    return {"status": imp.status, "next_row": imp.next_row}


@task()
def resume_stalled_imports() -> list[str]:
    return services.resume_stalled_imports()


@task()
def purge_expired_imports() -> int:
    return services.purge_expired_imports()
