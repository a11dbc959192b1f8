"""I3 — ``--workers N`` of ``rapport dedupe`` and ``rapport identity cluster``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from rapport.identity import dedupe, engine, filemode


@pytest.fixture
def spy(monkeypatch) -> list[int]:
    """The ``workers`` every ``engine.resolve`` call received."""
    seen: list[int] = []
    real = engine.resolve

    def resolve(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(kwargs["workers"])
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "resolve", resolve)
    monkeypatch.setattr(filemode, "resolve", resolve)
    return seen


def _people_file(path: Path) -> Path:
    rows = [["id", "given_name", "family_name", "email"]]
    for n in range(60):
        rows.append([f"{n}a", "Ann", f"Lee{n % 7}", f"ann.{n}@example.org"])
        rows.append([f"{n}b", "Anne", f"Lee{n % 7}", f"Ann.{n}@Example.org"])
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def test_identity_cluster_passes_workers_and_gives_the_same_clusters(tmp_path: Path, spy: list[int]) -> None:
    # given
    source = _people_file(tmp_path / "people.csv")
    # when
    outputs = []
    for workers in ("1", "2"):
        out = tmp_path / f"c{workers}.csv"
        call_command("identity", "cluster", str(source), "--id-column", "id", "--out", str(out),
                     "--workers", workers)
        outputs.append(out.read_text())
    # then
    assert spy == [1, 2]
    assert outputs[0] == outputs[1]
    labels = dict(row.split(",") for row in outputs[0].split()[1:])
    assert labels["3a"] == labels["3b"] != labels["4a"]


def test_identity_cluster_defaults_to_the_number_of_cores(tmp_path: Path, spy: list[int], monkeypatch) -> None:
    # given
    source = _people_file(tmp_path / "people.csv")
    monkeypatch.setattr(filemode.os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    # when
    call_command("identity", "cluster", str(source), "--id-column", "id", "--out", str(tmp_path / "c.csv"))
    # then
    assert spy == [3]


def test_bad_worker_counts_are_refused(tmp_path: Path) -> None:
    # given
    source = _people_file(tmp_path / "people.csv")
    # when / then
    with pytest.raises(CommandError, match="--workers must be at least 1"):
        call_command("identity", "cluster", str(source), "--id-column", "id", "--out", str(tmp_path / "c.csv"),
                     "--workers", "0")
    with pytest.raises(CommandError, match="workers: Give at least 1"):
        call_command("dedupe", "--dry-run", "--workers", "0")


@pytest.mark.django_db
def test_dedupe_passes_workers_and_finds_the_same_pairs(make_person, spy: list[int], capsys) -> None:
    # given: two records of one customer, one other person
    make_person(given_name="Robert", family_name="Quilliam", emails=["rob.quilliam@example.com"])
    make_person(given_name="Bob", family_name="Quilliam", emails=["Rob.Quilliam@example.com"])
    make_person(given_name="Sarah", family_name="Mbeki", emails=["sarah@example.org"])
    # when
    reports = []
    for workers in ("1", "2"):
        call_command("dedupe", "--dry-run", "--json", "--workers", workers)
        reports.append(json.loads(capsys.readouterr().out))
    # then
    assert spy == [1, 2]
    assert reports[0]["pairs"] == reports[1]["pairs"]
    assert len(reports[0]["pairs"]) == 1


@pytest.mark.django_db
def test_run_dedupe_defaults_to_the_number_of_cores(make_person, spy: list[int], monkeypatch) -> None:
    # given
    make_person(given_name="Ann", family_name="Lee", emails=["ann@example.org"])
    monkeypatch.setattr(dedupe, "default_workers", lambda: 5)
    # when
    dedupe.run_dedupe(dry_run=True)
    # then
    assert spy == [5]
