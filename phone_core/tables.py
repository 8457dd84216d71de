"""Reading uploaded lead lists (CSV in any common encoding and delimiter, or XLSX) into strings.

``read_table`` is the only entry point. It never lets a library error escape: every problem
becomes a ``FileFormatError`` whose message can be shown to the user as is. Cell contents are
never logged (they are personal data).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePath

import openpyxl
from charset_normalizer import from_bytes

from phone_core.errors import FileFormatError

_MB = 1024 * 1024
DEFAULT_MAX_BYTES = 50 * _MB
DELIMITERS = (",", ";", "\t", "|")
_SNIFF_RECORDS = 20
_SNIFF_CHARS = 64 * 1024
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_SAVE_AS = "Open it in Excel (or your CRM) and save it as .xlsx or .csv."
_KNOWN_BINARY = {
    b"%PDF": "a PDF document",
    b"\x89PNG": "an image",
    b"\xff\xd8\xff": "an image",
    b"GIF8": "an image",
    b"\x1f\x8b": "a compressed archive",
    b"Rar!": "a compressed archive",
    b"7z\xbc\xaf": "a compressed archive",
    b"{\\rtf": "a Rich Text document",
}
# charset-normalizer guesses these reliably; for anything else we assume Western (cp1252),
# because it often mistakes short French or German text for Central European code pages.
_NON_LATIN_CODECS = frozenset(
    {
        *("cp1251", "koi8_r", "koi8_u", "iso8859_5", "mac_cyrillic", "cp866"),  # Cyrillic
        *("cp1253", "iso8859_7", "cp1255", "iso8859_8", "cp1256", "iso8859_6"),  # el he ar
        *("cp874", "tis_620", "shift_jis", "cp932", "euc_jp", "gb2312", "gbk", "gb18030"),
        *("big5", "big5hkscs", "cp949", "euc_kr"),
    }
)
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_HTML_START = ("<!doctype", "<html", "<table", "<?xml", "<head", "<body")


@dataclass(frozen=True)
class Table:
    """An uploaded sheet: unique non-empty headers and rows of stripped strings."""

    headers: list[str]
    rows: list[list[str]]
    encoding: str = "utf-8"
    delimiter: str = ","

    @property
    def row_count(self) -> int:
        return len(self.rows)

    def column(self, header: str) -> list[str]:
        """All cells of one column (``KeyError`` for an unknown header)."""
        try:
            index = self.headers.index(header)
        except ValueError:
            raise KeyError(header) from None
        return [row[index] for row in self.rows]


def read_table(
    data: bytes,
    filename: str,
    *,
    max_rows: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Table:
    """Read an uploaded CSV or XLSX file; raise ``FileFormatError`` with a user message."""
    if len(data) > max_bytes:
        raise FileFormatError(f"The file is {_size(len(data))}; the limit is {_size(max_bytes)}.")
    if not data or data.isspace():
        raise FileFormatError("The file is empty.")
    extension = PurePath(filename).suffix.lower()
    is_xlsx = data.startswith(_ZIP_MAGIC)
    try:
        raw_rows: Iterable[list[str]]
        if is_xlsx:
            raw_rows = _xlsx_rows(data, max_rows)
            encoding = delimiter = ""
        else:
            _reject_binary(data, extension)
            text, encoding = _decode(data)
            _reject_non_csv_text(text)
            delimiter = detect_delimiter(text)
            raw_rows = _csv_rows(text, delimiter)
        headers, rows = _build(raw_rows, max_rows)
    except FileFormatError:
        raise
    except csv.Error as exc:
        raise FileFormatError(
            "The file could not be read as CSV: a cell is too long, usually because a quote "
            '(") is never closed. ' + _SAVE_AS
        ) from exc
    except Exception as exc:  # never let a library error reach the user
        kind = "an Excel workbook" if is_xlsx else "a CSV file"
        raise FileFormatError(f"The file could not be read as {kind}. {_SAVE_AS}") from exc
    return Table(headers=headers, rows=rows, encoding=encoding, delimiter=delimiter)


def detect_delimiter(text: str) -> str:
    """The most consistent of ``, ; TAB |`` over the first records (quotes respected)."""
    records = _count_delimiters(text[:_SNIFF_CHARS], complete=len(text) <= _SNIFF_CHARS)
    best, best_key = ",", (0.0, 0)
    for delimiter in DELIMITERS:
        counts = Counter(record[delimiter] for record in records)
        if not counts:
            continue
        mode, hits = max(counts.items(), key=lambda item: (item[1], item[0]))
        key = (hits / len(records), mode)
        if mode > 0 and key > best_key:
            best, best_key = delimiter, key
    return best


def _count_delimiters(sample: str, *, complete: bool) -> list[dict[str, int]]:
    """Per record (up to ``_SNIFF_RECORDS``), how often each delimiter occurs outside quotes."""
    records: list[dict[str, int]] = []
    counts = dict.fromkeys(DELIMITERS, 0)
    in_quotes, field_start, blank = False, True, True
    i, size = 0, len(sample)
    while i < size and len(records) < _SNIFF_RECORDS:
        char = sample[i]
        i += 1
        if in_quotes:
            if char == '"':
                if i < size and sample[i] == '"':
                    i += 1
                else:
                    in_quotes = False
        elif char in counts:
            counts[char] += 1
            field_start, blank = True, False
        elif char in "\r\n":
            if not blank:
                records.append(counts)
            counts = dict.fromkeys(DELIMITERS, 0)
            field_start, blank = True, True
        elif char != " ":
            in_quotes = char == '"' and field_start
            field_start, blank = False, False
    if not blank and complete and len(records) < _SNIFF_RECORDS:
        records.append(counts)
    return records


def _size(size: int) -> str:
    """``2.5 MB``, or ``80 KB`` below a tenth of a megabyte."""
    if size < _MB // 10:
        return f"{-(-size // 1024)} KB"
    return f"{size / _MB:.1f}".removesuffix(".0") + " MB"


def _reject_binary(data: bytes, extension: str) -> None:
    """Legacy Excel, images, PDFs and archives get a message naming what they are."""
    if data.startswith(_OLE_MAGIC):
        if extension in (".xlsx", ".xlsm"):
            raise FileFormatError(
                "This Excel file is password-protected or in the old .xls format. "
                "Remove the password, or save it as .xlsx or .csv."
            )
        raise FileFormatError(
            f"This is a legacy Excel (.xls) file, which cannot be read. {_SAVE_AS}"
        )
    for magic, what in _KNOWN_BINARY.items():
        if data.startswith(magic):
            raise FileFormatError(
                f"This file is {what}, not a spreadsheet. Upload the list as .csv or .xlsx."
            )


def _binary_error() -> FileFormatError:
    return FileFormatError(
        "The file does not look like a text or Excel file (it contains binary data). "
        "Upload the list as .csv or .xlsx."
    )


def _decode(data: bytes) -> tuple[str, str]:
    """Decode by BOM, then UTF-8, then the legacy code page; returns (text, codec name)."""
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        codec = "utf-32"
    elif data.startswith(codecs.BOM_UTF8):
        codec = "utf-8-sig"
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        codec = "utf-16"
    else:
        codec = _bomless_utf16(data) or ""
        if not codec and b"\x00" in data:
            raise _binary_error()
    if codec:
        try:
            text = data.decode(codec)
        except UnicodeDecodeError as exc:
            raise FileFormatError(
                f"The file says it is {codec.upper()} text but cannot be decoded as such. "
                + _SAVE_AS
            ) from exc
    else:
        try:
            text, codec = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError as exc:
            text, codec = _decode_legacy(data, exc.start)
    sample = text[:_SNIFF_CHARS]
    control = len(_CONTROL_CHARS.findall(sample))
    if "\x00" in text or (control > 3 and control > len(sample) // 100):
        raise _binary_error()
    return text, codecs.lookup(codec).name


def _bomless_utf16(data: bytes) -> str | None:
    """UTF-16 without a BOM shows as NUL in every other byte of ASCII-heavy text."""
    sample = data[:4096]
    half = len(sample) // 2
    if half < 4:
        return None
    even = sample[0::2].count(0) / half
    odd = sample[1::2].count(0) / half
    if odd > 0.7 and even < 0.05:
        return "utf-16-le"
    if even > 0.7 and odd < 0.05:
        return "utf-16-be"
    return None


def _decode_legacy(data: bytes, error_at: int) -> tuple[str, str]:
    """Not UTF-8: a non-Latin code page if charset-normalizer is sure, else cp1252/Latin-1."""
    window = data[max(0, error_at - 16_384) : error_at + 262_144]
    best = from_bytes(window).best()
    candidates = ["cp1252", "latin-1"]
    if best is not None and best.encoding in _NON_LATIN_CODECS:
        candidates.insert(0, best.encoding)
    for codec in candidates:
        try:
            return data.decode(codec), codec
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes any bytes")  # pragma: no cover


def _reject_non_csv_text(text: str) -> None:
    head = text[:200].lstrip().lower()
    if head.startswith(_HTML_START):
        raise FileFormatError(
            "This file is a web page or XML export, not a spreadsheet (some CRMs export "
            f"'Excel' reports this way). {_SAVE_AS}"
        )


def _csv_rows(text: str, delimiter: str) -> Iterable[list[str]]:
    return csv.reader(
        io.StringIO(text, newline=""),
        delimiter=delimiter,
        quotechar='"',
        doublequote=True,
        skipinitialspace=True,
        strict=False,
    )


def _xlsx_rows(data: bytes, max_rows: int | None) -> list[list[str]]:
    """Non-empty rows of the first non-empty worksheet as text (at most ``max_rows + 2``)."""
    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    limit = None if max_rows is None else max_rows + 2
    try:
        for sheet in workbook.worksheets:
            sheet.reset_dimensions()  # some exporters write a wrong (too small) dimension
            rows: list[list[str]] = []
            for values in sheet.iter_rows(values_only=True):
                cells = [_cell_text(value) for value in values]
                while cells and not cells[-1]:
                    cells.pop()
                if cells:
                    rows.append(cells)
                    if limit is not None and len(rows) >= limit:
                        break
            if rows:  # Excel does not store trailing blank header cells: widen the header
                rows[0].extend([""] * (max(map(len, rows)) - len(rows[0])))
                return rows
    finally:
        workbook.close()
    raise FileFormatError("The workbook is empty (its worksheets have no data).")


def _cell_text(value: object) -> str:
    """An Excel cell as the text a user would expect to see."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return f"{value:.15g}"
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value).strip()


def _build(
    raw_rows: Iterable[list[str]], max_rows: int | None
) -> tuple[list[str], list[list[str]]]:
    """First non-empty row is the header; skip empty rows; pad/truncate to the header."""
    rows_iter = iter(raw_rows)
    header: list[str] | None = None
    for raw in rows_iter:
        cells = [cell.strip() for cell in raw]
        if any(cells):
            header = [" ".join(cell.replace("\ufeff", "").split()) for cell in cells]
            break
    if header is None:
        raise FileFormatError("The file is empty.")
    width = len(header)
    rows: list[list[str]] = []
    strip = str.strip
    for raw in rows_iter:
        cells = list(map(strip, raw))
        if not any(cells):
            continue
        if len(cells) < width:
            cells.extend([""] * (width - len(cells)))
        elif len(cells) > width:
            del cells[width:]
        rows.append(cells)
        if max_rows is not None and len(rows) > max_rows:
            raise FileFormatError(
                f"The file has more than {max_rows:,} data rows; the limit is {max_rows:,}."
            )
    if not rows:
        raise FileFormatError("The file has a header row but no data rows.")
    keep = [i for i, name in enumerate(header) if name or any(row[i] for row in rows)]
    if len(keep) < width:
        rows = [[row[i] for i in keep] for row in rows]
    return _unique_headers([(i, header[i]) for i in keep]), rows


def _unique_headers(named: list[tuple[int, str]]) -> list[str]:
    """Blank headers become ``column_<n>`` (1-based position); repeats get `` (2)``, ...."""
    taken = {name for _, name in named if name}
    seen: set[str] = set()
    out: list[str] = []
    for position, name in named:
        base = name or f"column_{position + 1}"
        candidate, n = base, 1
        while candidate in seen or (candidate != name and candidate in taken):
            n += 1
            candidate = f"{base} ({n})" if name else f"{base}_{n}"
        seen.add(candidate)
        out.append(candidate)
    return out
