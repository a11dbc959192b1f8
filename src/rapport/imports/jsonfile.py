"""A3 — JSON in: an array of people as Rapport's JSON export writes them, one object at a time.

The array is decoded object by object (``JSONDecoder.raw_decode`` over a sliding buffer), so a
file of a million people never sits in memory, whether it has one object per line (as the
export writes) or is pretty-printed. An object larger than ``MAX_OBJECT_CHARS`` or text that is
not JSON stops the file with a ``FileProblem``; an item that is not an object becomes a row
with a ``problem``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, TextIO

from rapport.imports.mapping import CONTACT_TARGETS, MappedValue
from rapport.imports.sources import FileProblem, SourceRow

JSON_COLUMNS = ("honorific", "given_name", "middle_names", "family_name", "preferred_name", "language",
                "timezone", "country", "notes", "contact_points", "employments", "tags")
PERSON_KEYS = JSON_COLUMNS[:9]
MAX_OBJECT_CHARS = 1024 * 1024
BLOCK = 64 * 1024
_DECODER = json.JSONDecoder()
_SPACE = " \t\r\n,"


def json_rows(stream: TextIO) -> Iterator[SourceRow]:
    """One ``SourceRow`` per item of the top-level array, numbered from 1."""
    buffer, position, at_end = "", 0, False

    def fill() -> bool:
        nonlocal buffer, position, at_end
        block = stream.read(BLOCK)
        if not block:
            at_end = True
            return False
        buffer, position = buffer[position:] + block, 0
        return True

    fill()
    buffer = buffer.lstrip("\ufeff \t\r\n")
    if not buffer.startswith("["):
        raise FileProblem("A JSON file must be an array of people ([{…}, {…}]), as Rapport's JSON export writes.")
    position = 1
    number = 0
    while True:
        while True:  # skip separators, reading more when the buffer runs out
            while position < len(buffer) and buffer[position] in _SPACE:
                position += 1
            if position < len(buffer) or not fill():
                break
        if position >= len(buffer):
            raise FileProblem("The JSON array is not closed: the file is cut short.")
        if buffer[position] == "]":
            return
        while True:
            try:
                item, end = _DECODER.raw_decode(buffer, position)
                break
            except json.JSONDecodeError as err:
                if len(buffer) - position > MAX_OBJECT_CHARS:
                    raise FileProblem(f"Item {number + 1} of the JSON array is larger than 1 MiB, or not "
                                      f"valid JSON ({err.msg}).") from err
                if not fill():
                    raise FileProblem(f"Item {number + 1} of the JSON array is not valid JSON: {err.msg}.") from err
        number += 1
        position = end
        yield _row(number, item)


def _row(number: int, item: Any) -> SourceRow:
    if not isinstance(item, dict):
        return SourceRow(number=number, problem=f"Item {number} is not a person (a JSON object).")
    out: list[MappedValue] = []
    for key in PERSON_KEYS:
        value = item.get(key)
        if isinstance(value, str) and value.strip():
            out.append(MappedValue(key, value, "", key))
    for point in item.get("contact_points") or []:
        if isinstance(point, dict) and point.get("kind") in CONTACT_TARGETS and str(point.get("value") or "").strip():
            out.append(MappedValue(point["kind"], str(point["value"]), str(point.get("label") or ""),
                                   "contact_points"))
    current = [j for j in item.get("employments") or [] if isinstance(j, dict) and not j.get("end_date")]
    if current and str(current[0].get("organisation") or "").strip():
        job = current[0]
        out.append(MappedValue("organisation", str(job["organisation"]), "", "employments"))
        if job.get("title"):
            out.append(MappedValue("title", str(job["title"]), "", "employments"))
        if job.get("start_date"):
            out.append(MappedValue("start_date", (str(job["start_date"]), "%Y-%m-%d"), "", "employments"))
    for tag in item.get("tags") or []:
        if isinstance(tag, str) and tag.strip():
            out.append(MappedValue("tags", tag, "", "tags"))
    return SourceRow(number=number, mapped=out)
