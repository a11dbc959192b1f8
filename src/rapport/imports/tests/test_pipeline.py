"""The read-ahead process gives what the run would prepare itself, in order; its errors reach
the run; and it does not outlive a run that was killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import rapport
from rapport.imports.pipeline import ReadAhead
from rapport.imports.sources import FileProblem

SRC = str(Path(rapport.__file__).resolve().parents[1])


def _chunks(count: int, size: int = 3):
    for first in range(0, count * size, size):
        yield first, list(range(first, first + size))


def _prepare(rows: list[int]) -> tuple[int, list[int], int]:
    return sum(rows), rows, os.getpid()


def test_read_ahead_gives_the_same_chunks_in_order_from_another_process():
    # given the same chunks, prepared in this process and in a second one
    with ReadAhead(_chunks(20), _prepare, parallel=False) as inline:
        here = list(inline)
    with ReadAhead(_chunks(20), _prepare, parallel=True) as ahead:
        there = list(ahead)
    # then the results are equal and in order, and the second process did the work
    assert [(first, result[:2]) for first, result in there] == [(first, result[:2]) for first, result in here]
    assert [first for first, _ in there] == list(range(0, 60, 3))
    assert {result[2] for _, result in here} == {os.getpid()}
    assert os.getpid() not in {result[2] for _, result in there}


def _failing(rows: list[int]) -> int:
    if rows[0] >= 6:
        raise FileProblem("Line 9: a value is longer than 128 KiB.", field_errors={"file": ["Too long."]})
    return sum(rows)


def test_an_error_while_reading_ahead_reaches_the_run_as_it_was_raised():
    seen = []
    with pytest.raises(FileProblem, match="Line 9") as raised, ReadAhead(_chunks(5), _failing,
                                                                          parallel=True) as ahead:
        for first, total in ahead:
            seen.append((first, total))
    assert seen == [(0, 3), (3, 12)]
    assert raised.value.field_errors == {"file": ["Too long."]}


KILLED_RUN = """
import os, signal, sys, time
import django; django.setup()
from rapport.imports.pipeline import ReadAhead

def chunks():
    for first in range(0, 10_000, 10):
        yield first, list(range(10))

def prepare(rows):
    time.sleep(0.01)
    return rows

with ReadAhead(chunks(), prepare, parallel=True) as ahead:
    next(iter(ahead))
    print(ahead.process.pid, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # killed mid-run, as the kill test does
"""


def test_the_read_ahead_process_exits_when_its_run_is_killed(tmp_path):
    env = {**os.environ, "PYTHONPATH": SRC, "DJANGO_SETTINGS_MODULE": "rapport.settings",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "RAPPORT_VAR_DIR": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", KILLED_RUN], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == -signal.SIGKILL, run.stderr[-2000:]
    reader = int(run.stdout.split()[0])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _alive(reader):
        time.sleep(0.1)
    assert not _alive(reader)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by init) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False
