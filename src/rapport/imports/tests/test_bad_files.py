"""A3 — bad files through every door: the service, the CLI (message and non-zero exit) and the
API (400 problem details). Empty, binary, a declared encoding the bytes contradict, a header
without rows, 10,000 columns, and a 1 GiB single line — generated lazily, never held in memory,
and refused after its first few MiB."""

from __future__ import annotations

import io
import json
import os
import threading

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections
from django.test.client import ClientHandler, RequestFactory

from rapport.imports import services
from rapport.imports.models import Import
from rapport.imports.sources import FileProblem

pytestmark = pytest.mark.django_db

BASE = "/api/v1/imports/"
GIB = 1024 ** 3
FAST = 16 * 1024 ** 2  # "fast": refused before this many bytes were read

# (case, file bytes, declared encoding, message the person sees)
CASES = [
    ("empty", b"", "", "The file is empty."),
    ("binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 20, "",
     "does not look like a text file"),
    ("wrong encoding declared", "Name,Email\r\nMüller,m@example.de\r\n".encode("cp1252"), "utf-8",
     "The file is not valid UTF-8: byte 13 (line 2) cannot be read"),
    ("header only", b"First Name,Last Name,Email\r\n", "", "The file has a header row but no data rows."),
    ("10,000 columns", (",".join(f"col{i}" for i in range(10_000)) + "\r\n" + "," * 9_999 + "\r\n").encode(),
     "", "The file has 10,000 columns; Rapport imports at most 500."),
]
IDS = [case[0] for case in CASES]


# ----------------------------------------------------------------------------- service


@pytest.mark.parametrize(("case", "data", "encoding", "message"), CASES, ids=IDS)
def test_service_refuses_with_a_clear_message_and_keeps_nothing(staff_user, media_root, case, data, encoding,
                                                                  message):
    with pytest.raises(FileProblem) as caught:
        services.import_create(actor=staff_user, upload=io.BytesIO(data), file_name="people.csv",
                               encoding=encoding)
    assert message in str(caught.value)
    assert not Import.objects.exists()
    assert not any(p.is_file() for p in media_root.rglob("*"))  # the stored upload was removed


class LazyLine(io.RawIOBase):
    """``Name,Notes`` then one data line of ``size`` bytes, produced on demand; counts what was read."""

    def __init__(self, size: int = GIB, head: bytes = b"Name,Notes\r\nJo,") -> None:
        self.head, self.size, self.delivered = head, size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        count = min(len(buffer), self.size - self.delivered)
        if count <= 0:
            return 0
        start = self.delivered
        chunk = bytearray(b"a" * count)
        if start < len(self.head):
            piece = self.head[start:start + count]
            chunk[:len(piece)] = piece
        buffer[:count] = chunk
        self.delivered += count
        return count


def test_service_refuses_a_gigabyte_line_after_a_few_mib(staff_user, media_root):
    stream = LazyLine()
    with pytest.raises(FileProblem, match="Line 2 is longer than 1 MiB"):
        services.import_create(actor=staff_user, upload=io.BufferedReader(stream), file_name="huge.csv")
    assert stream.delivered < FAST
    assert not Import.objects.exists() and not any(p.is_file() for p in media_root.rglob("*"))


def test_a_long_but_acceptable_line_is_not_refused_by_the_upload_guard(staff_user):
    # 900 KiB of accented text is 1.8 MB of UTF-8 but under the 1 MiB-character cap
    notes = "é" * (900 * 1024)
    data = f"Name,Notes\r\nJo,{notes}\r\n".encode()
    with pytest.raises(FileProblem, match="longer than 128 KiB"):  # the CSV field cap still applies
        services.import_create(actor=staff_user, upload=io.BytesIO(data), file_name="long.csv")
    short = f"Name,Notes\r\nJo,{'é' * 60_000}\r\n".encode()
    imp = services.import_create(actor=staff_user, upload=io.BytesIO(short), file_name="ok.csv")
    assert imp.total_rows == 1


# --------------------------------------------------------------------------------- CLI


def run_cli(*args: str, monkeypatch, capsys) -> tuple[int, str]:
    """Run ``rapport import …`` as the console script does (``run_from_argv``): exit status and stderr."""
    from django.core.management import load_command_class

    monkeypatch.setattr(connections, "close_all", lambda: None)  # keep the test's connection
    command = load_command_class("rapport.imports", "import")
    with pytest.raises(SystemExit) as exited:
        command.run_from_argv(["rapport", "import", *args])
    return int(exited.value.code), capsys.readouterr().err


@pytest.mark.parametrize(("case", "data", "encoding", "message"), CASES, ids=IDS)
def test_cli_prints_the_problem_and_exits_non_zero(staff_user, tmp_path, monkeypatch, capsys, case, data,
                                                   encoding, message):
    path = tmp_path / "people.csv"
    path.write_bytes(data)
    options = ["--encoding", encoding] if encoding else []
    status, err = run_cli(str(path), "--user", "staff", *options, monkeypatch=monkeypatch, capsys=capsys)
    assert status == 1
    assert message in err and "Traceback" not in err
    assert not Import.objects.exists()


def test_cli_refuses_a_gigabyte_line_streamed_through_a_pipe(staff_user, tmp_path, monkeypatch, capsys):
    # given a named pipe fed lazily with a 1 GiB single line (nothing of that size exists on disk)
    fifo = tmp_path / "huge.csv"
    os.mkfifo(fifo)
    written = {"bytes": 0}

    def feed() -> None:
        source = LazyLine()
        try:
            with open(fifo, "wb") as out:
                while block := source.read(1024 * 1024):
                    out.write(block)
                    written["bytes"] += len(block)
        except (BrokenPipeError, OSError):
            pass  # the reader gave up: that is the point

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        # when
        status, err = run_cli(str(fifo), "--user", "staff", monkeypatch=monkeypatch, capsys=capsys)
    finally:
        unblock = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a writer still waiting for a reader
        os.close(unblock)
        writer.join(timeout=30)
    # then it failed clearly, after a few MiB of the gigabyte
    assert status == 1 and "Line 2 is longer than 1 MiB" in err
    assert not writer.is_alive() and written["bytes"] < FAST


# --------------------------------------------------------------------------------- API


def post_file(client, content: bytes, **fields):
    return client.post(BASE, {"file": SimpleUploadedFile("people.csv", content), **fields}, format="multipart")


@pytest.mark.parametrize(("case", "data", "encoding", "message"), CASES, ids=IDS)
def test_api_answers_400_problem_details(api_client, case, data, encoding, message):
    response = post_file(api_client, data, **({"encoding": encoding} if encoding else {}))
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"].endswith("/bad_file") and message in body["detail"]
    if encoding:
        assert body["errors"] == {"encoding": ["Does not match the file."]}
    assert not Import.objects.exists()


class LazyMultipart(io.RawIOBase):
    """A multipart/form-data body whose one file is a 1 GiB single line, generated as it is read."""

    BOUNDARY = "rapport-lazy-boundary"

    def __init__(self) -> None:
        self.before = (f"--{self.BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
                       f"filename=\"huge.csv\"\r\nContent-Type: text/csv\r\n\r\n").encode()
        self.after = f"\r\n--{self.BOUNDARY}--\r\n".encode()
        self.line = LazyLine()
        self.length = len(self.before) + self.line.size + len(self.after)
        self.parts = [io.BytesIO(self.before), self.line, io.BytesIO(self.after)]

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        while self.parts:
            count = self.parts[0].readinto(buffer)
            if count:
                return count
            self.parts.pop(0)
        return 0


def test_api_refuses_a_gigabyte_line_while_it_is_still_arriving(api_client):
    # given a request whose body streams a 1 GiB line (the test client would build it in memory)
    body = LazyMultipart()
    environ = RequestFactory()._base_environ(
        PATH_INFO=BASE, REQUEST_METHOD="POST", CONTENT_LENGTH=str(body.length),
        CONTENT_TYPE=f"multipart/form-data; boundary={LazyMultipart.BOUNDARY}",
        HTTP_AUTHORIZATION=api_client._credentials["HTTP_AUTHORIZATION"])
    environ["wsgi.input"] = io.BufferedReader(body)
    # when
    response = ClientHandler(enforce_csrf_checks=False)(environ)
    # then a problem, after a few MiB
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert "Line 2 is longer than 1 MiB" in json.loads(response.content)["detail"]
    assert body.line.delivered < FAST
    assert not Import.objects.exists()

