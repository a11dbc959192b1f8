"""O — the ``rapport`` command line: tokens, demo data, help, backup and restore."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from rapport.access.services import token_authenticate
from rapport.core.testing import make_user
from rapport.people.models import ContactPoint, Interaction, Organisation, Person

pytestmark = pytest.mark.django_db


def test_token_create_prints_a_working_token() -> None:
    # given
    user = make_user("tina")
    out = io.StringIO()
    # when
    call_command("token", "create", "tina", stdout=out)
    # then
    key = out.getvalue().strip()
    assert token_authenticate(key).user == user


def test_token_create_for_unknown_user_fails_clearly() -> None:
    # given no such user / when / then
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        call_command("token", "create", "ghost")


def test_demo_small_run_and_if_empty(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    # given
    settings.VAR_DIR = tmp_path
    out = io.StringIO()
    # when
    call_command("demo", "--people", "30", "--organisations", "6", stdout=out)
    # then
    assert Person.objects.count() == 30
    assert Organisation.objects.count() == 6
    assert Organisation.objects.filter(parent__isnull=False).exists()
    assert ContactPoint.objects.filter(kind="phone").exists()
    assert Interaction.objects.count() >= 30 * 7
    credentials = tmp_path / "demo-credentials.txt"
    assert credentials.stat().st_mode & 0o777 == 0o600
    password = credentials.read_text().split()[1]
    assert f"as admin / {password}" in out.getvalue()
    # when run again with --if-empty
    again = io.StringIO()
    call_command("demo", "--if-empty", stdout=again)
    # then nothing is added
    assert Person.objects.count() == 30
    assert "already exist" in again.getvalue()


def test_demo_is_deterministic(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    # given
    from rapport.people.demo import generate

    settings.VAR_DIR = tmp_path
    # when
    generate(seed=7, people=5, organisations=2, interactions_per_person=1)
    first = sorted(Person.objects.values_list("given_name", "family_name"))
    Person.objects.all().delete()
    generate(seed=7, people=5, organisations=2, interactions_per_person=1)
    # then
    assert sorted(Person.objects.values_list("given_name", "family_name")) == first


def test_rapport_help_lists_rapport_commands() -> None:
    # given / when
    result = subprocess.run([sys.executable, "-m", "rapport.cli", "help"], capture_output=True, text=True,
                            check=True, timeout=60)
    # then
    for name in ("demo", "worker", "run", "token", "backup", "restore"):
        assert f"    {name}\n" in result.stdout


def test_backup_then_restore_round_trip(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    # given
    settings.VAR_DIR = tmp_path
    call_command("demo", "--people", "5", "--organisations", "2", stdout=io.StringIO())
    before = sorted(Person.objects.values_list("id", "given_name"))
    interactions = Interaction.objects.count()
    target = tmp_path / "backup.json"
    # when
    call_command("backup", str(target), stdout=io.StringIO())
    Person.objects.all().delete()
    Organisation.objects.all().delete()
    from rapport.access.models import User

    User.objects.all().delete()
    call_command("restore", str(target), stdout=io.StringIO())
    # then
    assert isinstance(json.loads(target.read_text()), list)
    assert sorted(Person.objects.values_list("id", "given_name")) == before
    assert Interaction.objects.count() == interactions


def test_restore_refuses_non_empty_database(tmp_path: Path) -> None:
    # given
    make_user("someone")
    target = tmp_path / "b.json"
    target.write_text("[]")
    # when / then
    with pytest.raises(CommandError, match="not empty"):
        call_command("restore", str(target))


def test_run_serves_with_granian_by_default_and_gunicorn_keeps_connections_alive(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from rapport.core.management.commands.run import Command, web_server_command

    # given / when: the defaults of `rapport run` (no RAPPORT_WEB_* in the environment)
    for name in ("RAPPORT_WEB_SERVER", "RAPPORT_WEB_THREADS", "RAPPORT_WEB_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    parser = Command().create_parser("rapport", "run")
    defaults = parser.parse_args([])
    granian = web_server_command(server="granian", app="rapport.wsgi:application", bind="127.0.0.1:8000",
                                 workers=2, threads=1)
    gunicorn = web_server_command(server="gunicorn", app="rapport.wsgi:application", bind="0.0.0.0:9000",
                                  workers=3, threads=1)
    # then
    assert (defaults.web_server, defaults.web_workers, defaults.web_threads) == ("granian", 2, 1)
    assert granian[1:3] == ["-m", "granian"] and "wsgi" in granian and granian[granian.index("--port") + 1] == "8000"
    assert granian[granian.index("--blocking-threads") + 1] == "1"
    # one thread is still gthread: gunicorn's sync worker would close every connection
    assert gunicorn[gunicorn.index("--worker-class") + 1] == "gthread" and gunicorn[gunicorn.index("--workers") + 1] == "3"


@pytest.mark.parametrize("server, flag", [("granian", ["--access-log"]), ("gunicorn", ["--access-logfile", "-"])])
def test_run_logs_every_request_unless_the_access_log_is_switched_off(monkeypatch, server: str,  # type: ignore[no-untyped-def]
                                                                      flag: list[str]) -> None:
    from rapport.core.management.commands.run import web_server_command

    def command(**extra) -> list[str]:  # type: ignore[no-untyped-def]
        return web_server_command(server=server, app="rapport.wsgi:application", bind="127.0.0.1:8000",
                                  workers=2, threads=1, **extra)

    def has_flag(argv: list[str]) -> bool:
        return any(argv[i:i + len(flag)] == flag for i in range(len(argv)))

    # given / when / then: on by default, as before
    monkeypatch.delenv("RAPPORT_ACCESS_LOG", raising=False)
    assert has_flag(command())
    # the environment switches it off (a proxy in front logs every request already)
    for value in ("off", "OFF", "0", "false", "no"):
        monkeypatch.setenv("RAPPORT_ACCESS_LOG", value)
        assert not has_flag(command()), value
    monkeypatch.setenv("RAPPORT_ACCESS_LOG", "on")
    assert has_flag(command())
    # an explicit argument wins over the environment
    assert not has_flag(command(access_log=False))
    monkeypatch.setenv("RAPPORT_ACCESS_LOG", "off")
    assert has_flag(command(access_log=True))
