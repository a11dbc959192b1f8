"""S2 — the planner statistics job that keeps visibility filters cheap (see bench/visibility.py)."""

from __future__ import annotations

from django.core.management import call_command
from django.db import connection

from rapport.access.tasks import planner_statistics_task
from rapport.core.jobs import PERIODIC
from rapport.core.testing import make_person


def _analysed() -> bool:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'people_person'")
        else:
            cursor.execute("SELECT count(*) FROM pg_stats WHERE tablename = 'people_person'")
        return cursor.fetchone()[0] > 0


def test_the_job_is_periodic_and_gathers_statistics(staff_user):
    # given
    for n in range(3):
        make_person(actor=staff_user, given_name=f"P{n}", country="GB")
    # when
    vendor = planner_statistics_task.call()
    # then
    assert vendor == connection.vendor and _analysed()
    assert any(p.task_path == "rapport.access.tasks.planner_statistics_task" for p in PERIODIC)


def test_cli_analyze(db, capsys):
    call_command("access", "analyze")
    assert "Planner statistics refreshed" in capsys.readouterr().out
