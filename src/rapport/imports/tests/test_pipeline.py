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


def test_two_readers_give_the_same_chunks_in_order_each_preparing_every_second_one():
    # given the same chunks, prepared here and by two read-ahead processes
    with ReadAhead(_chunks(21), _prepare, parallel=False) as inline:
        here = list(inline)
    with ReadAhead(_chunks(21), _prepare, parallel=True, readers=2) as ahead:
        there = list(ahead)
        readers = [process.pid for process in ahead.processes]
    # then the results are equal and in file order (an odd count: the last turn's "done" comes
    # from the reader that prepared the first chunk)
    assert [(first, result[:2]) for first, result in there] == [(first, result[:2]) for first, result in here]
    # and the chunks alternate between the two readers
    assert len(set(readers)) == 2
    assert [result[2] for _, result in there] == [readers[n % 2] for n in range(21)]


@pytest.mark.parametrize("readers", [2, 3])
def test_with_several_readers_an_error_reaches_the_run_at_its_chunk(readers):
    seen = []
    with pytest.raises(FileProblem, match="Line 9"), ReadAhead(_chunks(8), _failing, parallel=True,
                                                                readers=readers) as ahead:
        for first, total in ahead:
            seen.append((first, total))
    assert seen == [(0, 3), (3, 12)]


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

with ReadAhead(chunks(), prepare, parallel=True, readers=int(sys.argv[1])) as ahead:
    next(iter(ahead))
    print(*(p.pid for p in ahead.processes), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # killed mid-run, as the kill test does
"""


@pytest.mark.parametrize("readers", [1, 2])
def test_the_read_ahead_processes_exit_when_their_run_is_killed(tmp_path, readers):
    env = {**os.environ, "PYTHONPATH": SRC, "DJANGO_SETTINGS_MODULE": "rapport.settings",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "RAPPORT_VAR_DIR": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", KILLED_RUN, str(readers)], env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == -signal.SIGKILL, run.stderr[-2000:]
    pids = [int(pid) for pid in run.stdout.split()]
    assert len(pids) == readers
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by init) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_the_run_puts_the_garbage_collector_back_as_it_found_it() -> None:
    # given the collector's settings before a run
    import gc

    from rapport.imports.services import _collector_for_chunks

    before = gc.get_threshold()

    # when a run's chunks are applied, the youngest generation is collected less often…
    with _collector_for_chunks():
        assert gc.get_threshold()[0] > before[0]
        assert gc.get_freeze_count() > 0

    # …and afterwards everything is as it was (the job worker lives on)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
