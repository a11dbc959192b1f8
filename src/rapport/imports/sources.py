"""A3 — reading import files: CSV (any common encoding and dialect), Excel .xlsx and vCard.

``inspect_source`` looks at a file once, up front, and either describes it (format, encoding,
delimiter, headers, row count, a sample) or raises ``FileProblem`` with a message a person can
act on. ``iter_rows`` then streams its rows; memory never grows with the file size: text is
decoded in blocks, lines are read with a length cap (a 1 GB line fails after the first MiB),
and workbooks are read in openpyxl's read-only mode.

Files come in as an ``Opener`` (a callable returning a fresh binary stream) because
inspection reads some files more than once.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from rapport.core.errors import DomainError

Opener = Callable[[], BinaryIO]

MAX_COLUMNS = 500
MAX_LINE_CHARS = 1024 * 1024          # one physical line of text
MAX_FIELD_CHARS = 128 * 1024          # one value (csv's own default limit)
SCAN_BLOCK = 1024 * 1024
SNIFF_CHARS = 64 * 1024
SAMPLE_ROWS = 5
DELIMITERS = (",", ";", "\t", "|")

ENCODINGS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 with BOM",
    "utf-16": "UTF-16 (with BOM)",
    "utf-16-le": "UTF-16 little-endian",
    "utf-16-be": "UTF-16 big-endian",
    "cp1252": "Windows-1252 (Western European)",
    "latin-1": "ISO-8859-1 (Latin-1)",
}


class FileProblem(DomainError):
    """The file cannot be imported as it is; the message says why and what to do."""

    title = "The file cannot be imported"
    code = "bad_file"


@dataclass
class SourceInfo:
    """What ``inspect_source`` found out about a file."""

    format: str                     # "csv", "xlsx", "vcard" or "json"
    encoding: str = ""              # text formats
    delimiter: str = ""             # csv
    sheet: str = ""                 # xlsx
    sheets: list[str] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)
    total_rows: int = 0
    sample: list[list[str]] = field(default_factory=list)


@dataclass
class SourceRow:
    """One data row (or vCard) of the file. ``number`` is what a person sees: the spreadsheet
    row number (the header is row 1) or the card number."""

    number: int
    values: list[Any] = field(default_factory=list)       # tabular formats, aligned to headers
    mapped: list[Any] | None = None                        # vCard: already mapped values
    problem: str = ""                                      # the row could not be read at all


class LineGuard:
    """Refuse a text file with an over-long line while it is still arriving.

    ``inspect_source`` checks line lengths in characters, but only once the whole file is
    stored; without this guard a 1 GB single-line file would be copied in full before being
    refused. Bytes are counted between newline bytes (LF and CR are single bytes in UTF-8
    and Windows-1252, and one byte of each UTF-16 unit), with room for four bytes per
    character, so no file ``inspect_source`` accepts is refused here. Workbooks (zip) are
    binary and exempt.
    """

    LIMIT = MAX_LINE_CHARS * 4

    def __init__(self) -> None:
        self.text: bool | None = None
        self.since_break = 0
        self.line = 1

    def feed(self, block: bytes) -> None:
        if self.text is None:
            self.text = not block.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0"))
        if not self.text or not block:
            return
        first = min((i for i in (block.find(b"\n"), block.find(b"\r")) if i >= 0), default=-1)
        if first < 0:
            self.since_break += len(block)
        else:
            self.since_break += first
        if self.since_break > self.LIMIT:
            raise FileProblem(f"Line {self.line} is longer than {MAX_LINE_CHARS // 1024 // 1024} MiB; "
                              "this is not a contacts file Rapport can read.")
        if first >= 0:
            self.line += block.count(b"\n") or block.count(b"\r")
            self.since_break = len(block) - max(block.rfind(b"\n"), block.rfind(b"\r")) - 1


# ----------------------------------------------------------------------------- inspection


def inspect_source(opener: Opener, *, file_name: str = "", encoding: str = "", delimiter: str = "",
                   sheet: str = "") -> SourceInfo:
    """Describe the file or raise ``FileProblem``. ``encoding``/``delimiter``/``sheet`` override
    detection; a declared encoding the bytes contradict is refused, not silently misread."""
    with opener() as stream:
        head = stream.read(SNIFF_CHARS)
    if not head:
        raise FileProblem("The file is empty.")
    if head.startswith(b"PK\x03\x04"):
        return _inspect_xlsx(opener, sheet)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise FileProblem("This is an old Excel .xls workbook; save it as .xlsx or CSV and upload that.")
    encoding = _choose_encoding(opener, head, encoding)
    text_head = _decode_head(head, encoding)
    if _looks_binary(text_head):
        raise FileProblem("This does not look like a text file (CSV or vCard) or an Excel workbook.")
    if text_head.lstrip("\ufeff \r\n\t").upper().startswith("BEGIN:VCARD"):
        return _inspect_vcard(opener, encoding)
    if text_head.lstrip("\ufeff \r\n\t").startswith(("[", "{")):
        return _inspect_json(opener, encoding)
    return _inspect_csv(opener, encoding, delimiter, text_head)


def iter_rows(opener: Opener, info: SourceInfo, *, start: int = 0) -> Iterator[SourceRow]:
    """Stream the data rows of an inspected file, skipping the first ``start`` rows."""
    if info.format == "xlsx":
        rows: Iterator[SourceRow] = _xlsx_rows(opener, info)
    elif info.format == "vcard":
        from rapport.imports.vcards import vcard_rows

        rows = vcard_rows(_text_lines(opener, info.encoding))
    elif info.format == "json":
        rows = _json_rows(opener, info.encoding)
    else:
        rows = _csv_rows(opener, info)
    for index, row in enumerate(rows):
        if index >= start:
            yield row


# ------------------------------------------------------------------------------ encoding


def _choose_encoding(opener: Opener, head: bytes, declared: str) -> str:
    detected_utf16 = _utf16_flavour(head)
    if declared:
        declared = codecs.lookup(declared).name if declared not in ENCODINGS else declared
        if declared.startswith("utf-16") and not detected_utf16:
            raise FileProblem(f"The file was declared {_label(declared)}, but it is not UTF-16. "
                              "Choose another encoding, or leave ‘Detect’.", field_errors={
                                  "encoding": ["Does not match the file."]})
        if detected_utf16 and not declared.startswith("utf-16"):
            raise FileProblem(f"The file was declared {_label(declared)}, but it is UTF-16 (as "
                              "Outlook and Excel write ‘Unicode’ files). Choose UTF-16, or leave ‘Detect’.",
                              field_errors={"encoding": ["Does not match the file."]})
        if declared in ("cp1252", "latin-1", "iso8859-1") and _scan(opener, "utf-8", quiet=True) \
                and any(b > 0x7F for b in head):
            raise FileProblem(f"The file was declared {_label(declared)}, but it is UTF-8: accented "
                              "letters would come out garbled. Choose UTF-8, or leave ‘Detect’.",
                              field_errors={"encoding": ["Does not match the file."]})
        _scan(opener, declared)
        return declared
    if detected_utf16:
        _scan(opener, detected_utf16)
        return detected_utf16
    if head.startswith(codecs.BOM_UTF8):
        _scan(opener, "utf-8-sig")
        return "utf-8-sig"
    if b"\x00" in head:
        raise FileProblem("This does not look like a text file (CSV or vCard) or an Excel workbook.")
    if _scan(opener, "utf-8", quiet=True):
        return "utf-8"
    if _scan(opener, "cp1252", quiet=True):
        return "cp1252"
    _scan(opener, "latin-1")
    return "latin-1"


def _utf16_flavour(head: bytes) -> str:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    sample = head[:4096]
    if len(sample) < 4:
        return ""
    even_nuls = sample[0::2].count(0) / max(1, len(sample[0::2]))
    odd_nuls = sample[1::2].count(0) / max(1, len(sample[1::2]))
    if odd_nuls > 0.3 and even_nuls < 0.05:
        return "utf-16-le"
    if even_nuls > 0.3 and odd_nuls < 0.05:
        return "utf-16-be"
    return ""


def _label(encoding: str) -> str:
    return ENCODINGS.get(encoding, encoding)


def _scan(opener: Opener, encoding: str, *, quiet: bool = False) -> bool:
    """Decode the whole file in blocks, checking every line's length as we go.

    Returns False (``quiet``) or raises when the bytes are not valid in ``encoding``; a line
    longer than ``MAX_LINE_CHARS`` always raises, as soon as it is seen.
    """
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    since_newline = 0
    offset = 0
    line = 1
    with opener() as stream:
        while True:
            block = stream.read(SCAN_BLOCK)
            final = not block
            try:
                text = decoder.decode(block, final=final)
            except UnicodeDecodeError as err:
                if quiet:
                    return False
                bad_line = line + (block[:err.start].count(b"\n") if not encoding.startswith("utf-16") else 0)
                raise FileProblem(
                    f"The file is not valid {_label(encoding)}: byte {offset + err.start} (line {bad_line}) "
                    "cannot be read. Choose the file's encoding, or leave ‘Detect’.",
                    field_errors={"encoding": ["Does not match the file."]}) from err
            last_break = max(text.rfind("\n"), text.rfind("\r"))
            if last_break < 0:
                since_newline += len(text)
            else:
                line += text.count("\n") or text.count("\r")
                since_newline = len(text) - last_break - 1
            if since_newline > MAX_LINE_CHARS:
                raise FileProblem(f"Line {line} is longer than {MAX_LINE_CHARS // 1024 // 1024} MiB; "
                                  "this is not a contacts file Rapport can read.")
            offset += len(block)
            if final:
                return True


def _decode_head(head: bytes, encoding: str) -> str:
    return head.decode(encoding, errors="ignore")


def _looks_binary(text: str) -> bool:
    sample = text[:8192]
    if not sample:
        return False
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\r\n\t\f")
    return "\x00" in sample or controls / len(sample) > 0.02


def _text_stream(opener: Opener, encoding: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(opener(), encoding=encoding, newline="")


def _text_lines(opener: Opener, encoding: str) -> Iterator[str]:
    """Physical lines, each at most ``MAX_LINE_CHARS`` long (longer ones raise, never buffer)."""
    with _text_stream(opener, encoding) as stream:
        line_number = 0
        while True:
            line = stream.readline(MAX_LINE_CHARS)
            if not line:
                return
            line_number += 1
            if len(line) >= MAX_LINE_CHARS and not line.endswith(("\n", "\r")):
                raise FileProblem(f"Line {line_number} is longer than {MAX_LINE_CHARS // 1024 // 1024} MiB; "
                                  "this is not a contacts file Rapport can read.")
            if line_number == 1 and line.startswith("\ufeff"):
                line = line[1:]
            yield line


# ----------------------------------------------------------------------------------- CSV


def _inspect_csv(opener: Opener, encoding: str, delimiter: str, text_head: str) -> SourceInfo:
    text_head = text_head.lstrip("\ufeff")
    if not text_head.strip():
        raise FileProblem("The file is empty.")
    delimiter = delimiter or _sniff_delimiter(text_head)
    if delimiter not in DELIMITERS:
        raise FileProblem(f"Choose a delimiter among comma, semicolon, tab and |, not {delimiter!r}.",
                          field_errors={"delimiter": ["Unsupported delimiter."]})
    info = SourceInfo(format="csv", encoding=encoding, delimiter=delimiter)
    reader = _csv_reader(opener, info)
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            header = next(reader, None)
        if header is None:
            raise FileProblem("The file is empty.")
        info.headers = _clean_headers(header)
        count = 0
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            if count < SAMPLE_ROWS:
                info.sample.append([str(v) for v in values[: len(info.headers)]])
            count += 1
    except csv.Error as err:
        raise _csv_problem(err, reader) from err
    if count == 0:
        raise FileProblem("The file has a header row but no data rows.")
    info.total_rows = count
    return info


def _csv_reader(opener: Opener, info: SourceInfo) -> Any:
    return csv.reader(_text_lines(opener, info.encoding), delimiter=info.delimiter, quotechar='"',
                      doublequote=True, skipinitialspace=False, strict=False)


def _csv_problem(err: csv.Error, reader: Any) -> FileProblem:
    message = str(err)
    if "field larger than field limit" in message:
        return FileProblem(f"Line {reader.line_num}: a value is longer than {MAX_FIELD_CHARS // 1024} KiB "
                           "(often an unclosed quote). Check the file around that line.")
    return FileProblem(f"Line {reader.line_num}: the CSV cannot be read ({message}).")


def _csv_rows(opener: Opener, info: SourceInfo) -> Iterator[SourceRow]:
    reader = _csv_reader(opener, info)
    width = len(info.headers)
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            header = next(reader, None)
        number = 1
        for values in reader:
            number += 1
            if not any(v.strip() for v in values):
                continue
            if len(values) < width:
                values = values + [""] * (width - len(values))
            yield SourceRow(number=number, values=values[:width])
    except csv.Error as err:
        raise _csv_problem(err, reader) from err


def _sniff_delimiter(text: str) -> str:
    """The delimiter that splits the first lines into the same number (>1) of columns."""
    cut = max(text.rfind("\n"), 0) or len(text)
    sample = text[:cut]
    best, best_score = ",", (0, 0)
    for candidate in DELIMITERS:
        try:
            rows = list(csv.reader(io.StringIO(sample), delimiter=candidate))[:50]
        except csv.Error:
            continue
        widths = [len(r) for r in rows if any(c.strip() for c in r)]
        if not widths or widths[0] < 2:
            continue
        consistent = sum(1 for w in widths if w == widths[0])
        score = (consistent, widths[0])
        if score > best_score:
            best, best_score = candidate, score
    return best


def _clean_headers(header: list[Any]) -> list[str]:
    if len(header) > MAX_COLUMNS:
        raise FileProblem(f"The file has {len(header):,} columns; Rapport imports at most {MAX_COLUMNS}. "
                          "Is this the right file, with a header row first?")
    names: list[str] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(header, start=1):
        name = " ".join(str(raw if raw is not None else "").replace("\ufeff", "").split()) or f"Column {index}"
        if name in seen:
            seen[name] += 1
            name = f"{name} ({seen[name]})"
        else:
            seen[name] = 1
        names.append(name)
    while names and names[-1].startswith("Column ") and header[len(names) - 1] in (None, ""):
        names.pop()  # trailing empty header cells (a trailing delimiter)
    if not names:
        raise FileProblem("The first row must be a header row naming the columns.")
    return names


# ---------------------------------------------------------------------------------- xlsx


def _open_workbook(opener: Opener) -> Any:
    import openpyxl

    stream = opener()
    try:
        return openpyxl.load_workbook(stream, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as err:
        stream.close()
        raise FileProblem("This is a zip file but not an Excel .xlsx workbook Rapport can read.") from err
    except Exception as err:  # openpyxl raises many kinds on malformed workbooks
        stream.close()
        raise FileProblem(f"The workbook cannot be read ({type(err).__name__}).") from err


def _inspect_xlsx(opener: Opener, sheet: str) -> SourceInfo:
    workbook = _open_workbook(opener)
    try:
        names = list(workbook.sheetnames)
        if sheet and sheet not in names:
            raise FileProblem(f"The workbook has no sheet {sheet!r}; it has {', '.join(names)}.",
                              field_errors={"sheet": ["No such sheet."]})
        worksheet = workbook[sheet or names[0]]
        info = SourceInfo(format="xlsx", sheet=sheet or names[0], sheets=names)
        rows = worksheet.iter_rows(values_only=True)
        header = _first_nonempty(rows)
        if header is None:
            raise FileProblem(f"The sheet {info.sheet!r} is empty.")
        info.headers = _clean_headers(list(header))
        count = 0
        for values in rows:
            if not any(_cell_text(v).strip() for v in values):
                continue
            if count < SAMPLE_ROWS:
                info.sample.append([_cell_text(v) for v in values[: len(info.headers)]])
            count += 1
        if count == 0:
            raise FileProblem(f"The sheet {info.sheet!r} has a header row but no data rows.")
        info.total_rows = count
        return info
    finally:
        workbook.close()


def _first_nonempty(rows: Iterator[tuple]) -> tuple | None:
    for values in rows:
        if len(values) > MAX_COLUMNS:
            raise FileProblem(f"The sheet has {len(values):,} columns; Rapport imports at most {MAX_COLUMNS}.")
        if any(_cell_text(v).strip() for v in values):
            return values
    return None


def _xlsx_rows(opener: Opener, info: SourceInfo) -> Iterator[SourceRow]:
    workbook = _open_workbook(opener)
    try:
        worksheet = workbook[info.sheet]
        width = len(info.headers)
        header_seen = False
        for number, values in enumerate(worksheet.iter_rows(values_only=True), start=1):
            if not any(_cell_text(v).strip() for v in values):
                continue
            if not header_seen:
                header_seen = True
                continue
            cells = [v if isinstance(v, dt.date | dt.datetime) else _cell_text(v) for v in values[:width]]
            cells += [""] * (width - len(cells))
            yield SourceRow(number=number, values=cells)
    finally:
        workbook.close()


def _cell_text(value: Any) -> str:
    """A cell as text; whole-number floats lose their ``.0`` (phone numbers typed as numbers)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


# --------------------------------------------------------------------------------- vCard

_BEGIN = re.compile(r"^BEGIN:VCARD\s*$", re.IGNORECASE)


def _inspect_vcard(opener: Opener, encoding: str) -> SourceInfo:
    from rapport.imports.vcards import VCARD_COLUMNS, vcard_rows

    info = SourceInfo(format="vcard", encoding=encoding, headers=list(VCARD_COLUMNS))
    count = 0
    for row in vcard_rows(_text_lines(opener, encoding)):
        if count < SAMPLE_ROWS:
            info.sample.append([f"{m.target}: {m.value}" for m in (row.mapped or [])][:6])
        count += 1
    if count == 0:
        raise FileProblem("The vCard file holds no cards.")
    info.total_rows = count
    return info


# ---------------------------------------------------------------------------------- JSON


def _json_rows(opener: Opener, encoding: str) -> Iterator[SourceRow]:
    from rapport.imports.jsonfile import json_rows

    with _text_stream(opener, encoding) as stream:
        yield from json_rows(stream)


def _inspect_json(opener: Opener, encoding: str) -> SourceInfo:
    from rapport.imports.jsonfile import JSON_COLUMNS

    info = SourceInfo(format="json", encoding=encoding, headers=list(JSON_COLUMNS))
    count = 0
    for row in _json_rows(opener, encoding):
        if count < SAMPLE_ROWS:
            info.sample.append([f"{m.target}: {m.value}" for m in (row.mapped or [])][:6])
        count += 1
    if count == 0:
        raise FileProblem("The JSON file holds no people (an empty array).")
    info.total_rows = count
    return info
