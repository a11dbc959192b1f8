"""I3 — file mode: ``rapport identity cluster`` reads a CSV, writes clusters and pairs, refuses bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

ROWS = [
    ["rec", "First", "Surname", "E-mail", "dob", "note"],
    ["1", "Robert", "Lindqvist", "rob.lindqvist@gmail.com", "19800203", "a"],
    ["2", "Bob", "Lindqvist", "roblindqvist+crm@googlemail.com", "1980-02-03", "b"],
    ["3", "Fatima", "Okafor", "fatima@example.org", "19750509", "c"],
    ["4", "Fatima", "Okafor", "f.okafor@example.org", "19750509", ""],
    ["5", "Ivan", "Novak", "ivan@example.net", "19911111", ""],
]


def _write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _cluster(tmp_path: Path, *extra: str) -> tuple[Path, Path]:
    source = _write_csv(tmp_path / "in.csv", ROWS)
    out, pairs = tmp_path / "clusters.csv", tmp_path / "pairs.csv"
    call_command("identity", "cluster", str(source), "--id-column", "rec",
                 "--column", "given_name=First", "--column", "family_name=Surname",
                 "--column", "email=E-mail", "--column", "birth_date=dob",
                 "--out", str(out), "--pairs", str(pairs), *extra)
    return out, pairs


def test_cluster_writes_one_row_per_record_and_groups_the_same_people(tmp_path: Path) -> None:
    # given / when
    out, _ = _cluster(tmp_path)
    # then
    rows = _read_csv(out)
    assert list(rows[0]) == ["record_id", "cluster_id"]
    labels = {row["record_id"]: row["cluster_id"] for row in rows}
    assert set(labels) == {"1", "2", "3", "4", "5"}
    assert labels["1"] == labels["2"] == "1"
    assert labels["3"] == labels["4"] == "3"
    assert labels["5"] == "5"


def test_pairs_file_carries_probability_and_evidence(tmp_path: Path) -> None:
    # given / when
    _, pairs = _cluster(tmp_path)
    # then
    rows = _read_csv(pairs)
    assert list(rows[0]) == ["left_id", "right_id", "probability", "evidence"]
    by_pair = {frozenset((r["left_id"], r["right_id"])): r for r in rows}
    robert = by_pair[frozenset(("1", "2"))]
    assert float(robert["probability"]) >= 0.9
    evidence = {e["field"]: e for e in json.loads(robert["evidence"])}
    assert evidence["email"]["level"] == "exact"        # gmail dots and +tag ignored
    assert evidence["given"]["level"] == "exact"        # Bob = Robert
    assert frozenset(("1", "5")) not in by_pair


def test_other_date_formats_are_read_with_date_format(tmp_path: Path) -> None:
    # given: the same people with birth dates written day/month/year
    rows = [ROWS[0]] + [[*row[:4], f"{row[4][-2:]}/{row[4][-4:-2]}/{row[4][:4]}", row[5]]
                        for row in ROWS[1:] if row[4].isdigit()]
    source = _write_csv(tmp_path / "in.csv", rows)
    out, pairs = tmp_path / "c.csv", tmp_path / "p.csv"
    # when
    call_command("identity", "cluster", str(source), "--id-column", "rec", "--date-format", "%d/%m/%Y",
                 "--column", "given_name=First", "--column", "family_name=Surname",
                 "--column", "email=E-mail", "--column", "birth_date=dob",
                 "--out", str(out), "--pairs", str(pairs))
    # then
    by_pair = {frozenset((r["left_id"], r["right_id"])): r for r in _read_csv(pairs)}
    evidence = {e["field"]: e["level"] for e in json.loads(by_pair[frozenset(("3", "4"))]["evidence"])}
    assert evidence["birth_date"] == "exact"


@pytest.mark.parametrize(("args", "message"), [
    (["--column", "email=Nope"], "Nope"),
    (["--column", "shoe_size=First"], "Unknown role 'shoe_size'"),
    (["--column", "email"], "ROLE=HEADER"),
    (["--threshold", "1.5"], "between 0 and 1"),
])
def test_bad_options_are_refused_clearly(tmp_path: Path, args: list[str], message: str) -> None:
    # given
    source = _write_csv(tmp_path / "in.csv", ROWS)
    # when / then
    with pytest.raises(CommandError, match=message):
        call_command("identity", "cluster", str(source), "--id-column", "rec", *args,
                     "--out", str(tmp_path / "o.csv"))


def test_missing_id_column_and_unreadable_file_are_refused(tmp_path: Path) -> None:
    # given
    source = _write_csv(tmp_path / "in.csv", ROWS)
    # when / then
    with pytest.raises(CommandError, match="Column\\(s\\) not in the file: ID"):
        call_command("identity", "cluster", str(source), "--id-column", "ID",
                     "--column", "email=E-mail", "--out", str(tmp_path / "o.csv"))
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("identity", "cluster", str(tmp_path / "absent.csv"), "--id-column", "rec",
                     "--out", str(tmp_path / "o.csv"))


def test_duplicate_record_ids_are_refused(tmp_path: Path) -> None:
    # given
    source = _write_csv(tmp_path / "in.csv", [ROWS[0], ROWS[1], ROWS[1]])
    # when / then
    with pytest.raises(CommandError, match="Line 3"):
        call_command("identity", "cluster", str(source), "--id-column", "rec",
                     "--column", "email=E-mail", "--out", str(tmp_path / "o.csv"))


def test_forked_workers_give_the_same_clusters_as_one_process(tmp_path: Path, monkeypatch) -> None:
    # given: a few hundred people, most with a second record (typo or another email layout)
    import random

    from rapport.identity import engine, filemode

    rng = random.Random(4)
    rows = [["rec", "given_name", "family_name", "email", "birth_date"]]
    for n in range(300):
        given, family = rng.choice(["Ann", "Bob", "Chen", "Dara"]), rng.choice(["Lee", "Okafor", "Novak"])
        dob = f"19{rng.randint(40, 99)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        rows.append([f"{n}a", given, family, f"{given}.{family}.{n}@example.org", dob])
        if n % 3:
            rows.append([f"{n}b", given + ("e" if n % 2 else ""), family, f"{given}.{family}.{n}@EXAMPLE.org", dob])
    source = _write_csv(tmp_path / "many.csv", rows)
    monkeypatch.setattr(filemode, "_ROWS_PER_CHUNK", 50)
    monkeypatch.setattr(engine, "_CHUNK", 200)
    # when
    outputs = []
    for workers in (1, 2):
        out = tmp_path / f"c{workers}.csv"
        result = filemode.cluster_file(source, id_column="rec", out=out, workers=workers)
        outputs.append((result, out.read_text()))
    # then
    assert outputs[0] == outputs[1]
    labels = {r["record_id"]: r["cluster_id"] for r in _read_csv(tmp_path / "c1.csv")}
    assert labels["1a"] == labels["1b"] and labels["2a"] == labels["2b"] != labels["1a"]
