"""Bounded reading of an uploaded XLSX workbook (for ``tables``).

An XLSX file is a zip of XML parts, so a small upload can stand for gigabytes. Nothing here
is sized by what the file says about itself, and nothing is inflated before the archive is
checked:

1. ``check_archive`` reads only the zip directory: a member count, the declared total
   uncompressed size, and each member's compression ratio (zip bombs deflate ~1000x; real
   sheets 5-30x). ``zipfile`` never inflates more than a member declares (it stops, and the
   CRC check fails), so the declared sizes bound all later work.
2. Every part is streamed through expat (``xmlparts``), with no tree: memory holds one
   row (and the shared strings, stored compactly), however many elements a part has.
3. Cells are read sparsely: empty cells are dropped as they come, a row is only as wide as
   its last non-empty cell, and a non-empty cell beyond ``max_columns`` refuses the file at
   once. A declared ``<dimension>`` is only checked to lie inside Excel's grid: exporters
   write it too small or too large, and nothing is sized by it.
"""

from __future__ import annotations

import datetime as dt
import io
import posixpath
import re
import zipfile
from array import array
from collections.abc import Generator
from dataclasses import dataclass
from functools import lru_cache
from typing import BinaryIO

from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format, is_timedelta_format
from openpyxl.utils.datetime import MAC_EPOCH, WINDOWS_EPOCH, from_excel, from_ISO8601

from phone_core.cells import (
    EXCEL_MAX_COLUMNS,
    EXCEL_MAX_ROWS,
    SAVE_AS,
    cell_text,
    clean_text,
    columns_error,
    human_size,
)
from phone_core.errors import FileFormatError
from phone_core.xmlparts import XmlPart, elements

MAX_INFLATE_RATIO = 100  # Apache POI's zip-bomb threshold (a member may inflate 100-fold)
MAX_MEMBERS = 10_000
_RATIO_GRACE = 1024 * 1024  # members inflating to less than this are never called bombs
_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_DIGITS = "0123456789"


def check_archive(archive: zipfile.ZipFile, max_uncompressed_bytes: int) -> None:
    """Refuse from the zip directory alone: too many members, too big, or a zip bomb."""
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise FileFormatError(
            f"The Excel file holds {len(members):,} parts, far more than a workbook has. {SAVE_AS}"
        )
    total = 0
    for info in members:
        if info.flag_bits & 0x1:
            raise FileFormatError(
                "This Excel file is password-protected. Remove the password and upload it again."
            )
        total += info.file_size
        if info.file_size > _RATIO_GRACE and (
            info.file_size > MAX_INFLATE_RATIO * max(info.compress_size, 1)
        ):
            raise FileFormatError(
                "The Excel file was refused as unsafe: part of it would expand more than "
                f"{MAX_INFLATE_RATIO}-fold when opened, which real workbooks never do. {SAVE_AS}"
            )
    if total > max_uncompressed_bytes:
        raise FileFormatError(
            f"The Excel file expands to {human_size(total)} when opened; the limit is "
            f"{human_size(max_uncompressed_bytes)}. Save it as .csv, or split it into smaller "
            "files."
        )


PEEK_ROWS = 30  # rows of a sheet looked at to tell a table from a cover or notes sheet


@dataclass(frozen=True)
class SheetRef:
    name: str  # as shown on its tab (control characters dropped)
    part: str  # the worksheet part in the archive
    hidden: bool


class Workbook:
    """An uploaded workbook, checked (``check_archive``) and its index read: the worksheet
    names, and the rows of any one of them. Use as a context manager."""

    def __init__(
        self, data: bytes | BinaryIO, *, max_columns: int, max_uncompressed_bytes: int
    ) -> None:
        self._archive = zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data)
        try:
            check_archive(self._archive, max_uncompressed_bytes)
            self._book = _read_book(self._archive)
        except BaseException:
            self._archive.close()
            raise
        self._columns = min(max_columns, EXCEL_MAX_COLUMNS)

    def __enter__(self) -> Workbook:
        return self

    def __exit__(self, *_: object) -> None:
        self._archive.close()

    @property
    def names(self) -> list[str]:
        """The worksheets a user sees, in tab order (every worksheet when all are hidden)."""
        visible = [s.name for s in self._book.sheets if not s.hidden]
        return visible or [s.name for s in self._book.sheets]

    def rows(self, sheet: SheetRef) -> Generator[tuple[int, list[str]], None, None]:
        """(Excel row number, text cells without trailing blanks) of each non-empty row."""
        return _sheet_rows(self._archive, sheet.part, self._book, self._columns)

    def choose(self, wanted: str | None = None) -> SheetRef:
        """The sheet called ``wanted`` (exact name first, then ignoring case and spaces), or by
        default the first visible sheet holding a table: a row of two or more cells with more
        rows under it. Cover, notes and empty sheets are passed over; failing a table, the first
        sheet with two rows, then the first with any data."""
        sheets = self._book.sheets
        if wanted is not None:
            folded = " ".join(wanted.split()).casefold()
            for found in (
                next((s for s in sheets if s.name == wanted), None),
                next((s for s in sheets if " ".join(s.name.split()).casefold() == folded), None),
            ):
                if found is not None:
                    return found
            listed = ", ".join(f'"{name}"' for name in self.names)
            raise FileFormatError(
                f'The workbook has no sheet called "{wanted}". Its sheets are: {listed}.'
            )
        fallbacks: list[SheetRef | None] = [None, None]  # two rows or more; any data
        for ref in [s for s in sheets if not s.hidden] or sheets:
            table, seen = self._shape(ref)
            if table:
                return ref
            if seen >= 2 and fallbacks[0] is None:
                fallbacks[0] = ref
            if seen and fallbacks[1] is None:
                fallbacks[1] = ref
        chosen = fallbacks[0] or fallbacks[1]
        if chosen is None:
            raise FileFormatError("The workbook is empty (its worksheets have no data).")
        return chosen

    def _shape(self, sheet: SheetRef) -> tuple[bool, int]:
        """(holds a table, non-empty rows seen) over the first ``PEEK_ROWS`` rows."""
        rows = self.rows(sheet)
        seen, wide, table = 0, False, False
        try:
            for _, cells in rows:
                seen += 1
                table = table or wide
                wide = wide or sum(1 for cell in cells if cell.strip()) >= 2
                if table or seen >= PEEK_ROWS:
                    break
        finally:
            rows.close()
        return table, seen


class _StringTable:
    """Shared strings, stored compactly (UTF-8 in one buffer): a table of millions of short
    strings costs about its own size, not the ~60 bytes each a list of ``str`` would."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._ends = array("Q")

    def append(self, text: str) -> None:
        self._data += text.encode()
        self._ends.append(len(self._data))

    def __getitem__(self, index: int) -> str:
        start = self._ends[index - 1] if index > 0 else 0
        return self._data[start : self._ends[index]].decode()

    def __len__(self) -> int:
        return len(self._ends)


@dataclass(frozen=True)
class _Book:
    sheets: list[SheetRef]  # the worksheets, in workbook (tab) order
    strings: _StringTable
    dates: frozenset[int]  # style ids that show a number as a date
    durations: frozenset[int]  # style ids that show a number as a duration
    epoch: dt.datetime


def _relationships(archive: zipfile.ZipFile, part: str) -> dict[str, tuple[str, str]]:
    """Id -> (type suffix, part name) of a part's internal relationships."""
    folder, base = posixpath.split(part)
    rels = posixpath.join(folder, "_rels", base + ".rels")
    if rels not in archive.NameToInfo:
        return {}
    found: dict[str, tuple[str, str]] = {}
    for _, _, attrs in elements(archive, rels, frozenset({"Relationship"})):
        if attrs.get("TargetMode") != "External":
            target = attrs.get("Target", "")
            path = target[1:] if target.startswith("/") else posixpath.join(folder, target)
            kind = attrs.get("Type", "").rpartition("/")[2]
            found[attrs.get("Id", "")] = (kind, posixpath.normpath(path))
    return found


def _read_book(archive: zipfile.ZipFile) -> _Book:
    workbook = next(
        (path for kind, path in _relationships(archive, "").values() if kind == "officeDocument"),
        "xl/workbook.xml",
    )
    rels = _relationships(archive, workbook)
    epoch, sheets = WINDOWS_EPOCH, list[SheetRef]()
    for tag, _, attrs in elements(archive, workbook, frozenset({"workbookPr", "sheet"})):
        if tag == "workbookPr" and attrs.get("date1904", "").lower() in ("1", "true"):
            epoch = MAC_EPOCH
        elif tag == "sheet" and rels.get(attrs.get("id", ""), ("",))[0] == "worksheet":
            name = " ".join(clean_text(attrs.get("name", "")).split()) or f"Sheet{len(sheets) + 1}"
            hidden = attrs.get("state", "visible") != "visible"
            sheets.append(SheetRef(name, rels[attrs["id"]][1], hidden))
    if not sheets:
        raise ValueError("not a workbook: no worksheet")
    parts = {kind: path for kind, path in rels.values()}
    strings = _shared_strings(archive, parts.get("sharedStrings"))
    dates, durations = _date_styles(archive, parts.get("styles"))
    return _Book(sheets, strings, dates, durations, epoch)


class _Strings(XmlPart):
    """Shared strings (``<si>``) and inline strings (``<is>``): runs, not phonetic guides."""

    def __init__(self) -> None:
        super().__init__()
        self.strings = _StringTable()
        self.texts: list[str] = []
        self.phonetic = 0

    def start_t(self, attrs: dict[str, str]) -> None:
        if not self.phonetic:
            self.collect()

    def end_t(self) -> None:
        if not self.phonetic:
            self.texts.append(self.collected())

    def start_rPh(self, attrs: dict[str, str]) -> None:
        self.phonetic += 1

    def end_rPh(self) -> None:
        self.phonetic -= 1

    def end_si(self) -> None:
        self.strings.append(self.string())

    def string(self) -> str:
        text = _unescape("".join(self.texts))
        self.texts.clear()
        return text


def _shared_strings(archive: zipfile.ZipFile, part: str | None) -> _StringTable:
    if part is None or part not in archive.NameToInfo:
        return _StringTable()
    reader = _Strings()
    for _ in reader.run(archive, part):
        pass
    return reader.strings


def _date_styles(
    archive: zipfile.ZipFile, part: str | None
) -> tuple[frozenset[int], frozenset[int]]:
    """Which cell styles (indexes into cellXfs) format numbers as dates, and as durations."""
    if part is None or part not in archive.NameToInfo:
        return frozenset(), frozenset()
    custom: dict[int, str] = {}
    formats: list[int] = []
    for tag, parent, attrs in elements(archive, part, frozenset({"numFmt", "xf"})):
        if tag == "numFmt":
            custom[int(attrs.get("numFmtId", "0"))] = attrs.get("formatCode", "")
        elif parent == "cellXfs":
            formats.append(int(attrs.get("numFmtId", "0")))
    codes = [custom.get(number) or BUILTIN_FORMATS.get(number) or "General" for number in formats]
    return (
        frozenset(i for i, code in enumerate(codes) if is_date_format(code)),
        frozenset(i for i, code in enumerate(codes) if is_timedelta_format(code)),
    )


@lru_cache(maxsize=4096)
def _column_index(letters: str) -> int:
    if not letters.isalpha() or not letters.isascii() or len(letters) > 3:
        raise ValueError("bad cell reference")
    index = 0
    for letter in letters.upper():
        index = index * 26 + ord(letter) - 64
    return index


def _check_dimension(ref: str) -> None:
    """A declared sheet size outside Excel's grid is a forged file (nothing else uses it)."""
    for corner in ref.split(":"):
        letters = corner.replace("$", "").rstrip(_DIGITS)
        digits = corner.replace("$", "")[len(letters) :]
        try:
            too_big = _column_index(letters) > EXCEL_MAX_COLUMNS or int(digits) > EXCEL_MAX_ROWS
        except ValueError:
            continue  # malformed: ignored, like every other use of the dimension
        if too_big:
            raise FileFormatError(
                "The worksheet says it is larger than Excel allows, so the file is damaged or "
                f"forged. {SAVE_AS}"
            )


class _Sheet(_Strings):
    """Rows of one worksheet, read sparsely: only non-empty cells are kept.

    Rows wait here for the end of the chunk being parsed, so they stay sparse (column ->
    text): a 60-byte row with one cell in column XFD must not become 16,384 slots until the
    reader of the table has taken the rows before it (and maybe refused the file).
    """

    def __init__(self, book: _Book, max_columns: int) -> None:
        super().__init__()
        self.book = book
        self.max_columns = max_columns
        self.rows: list[tuple[int, dict[int, str]]] = []
        self.cells: dict[int, str] = {}
        self.number = 0  # the row's number in Excel
        self.column = 0
        self.attrs: dict[str, str] = {}
        self.value = ""

    def start_dimension(self, attrs: dict[str, str]) -> None:
        _check_dimension(attrs.get("ref", ""))

    def start_row(self, attrs: dict[str, str]) -> None:
        self.cells, self.column = {}, 0
        number = attrs.get("r", "")
        self.number = int(number) if number.isdigit() and len(number) < 8 else self.number + 1

    def end_row(self) -> None:
        if self.cells:
            self.rows.append((self.number, self.cells))

    def end_sheetData(self) -> None:
        self.done = True

    def start_c(self, attrs: dict[str, str]) -> None:
        self.attrs, self.value = attrs, ""
        if self.texts:
            self.texts.clear()

    def start_v(self, attrs: dict[str, str]) -> None:
        self.collect()

    def end_v(self) -> None:
        self.value = self.collected()

    def end_c(self) -> None:
        attrs = self.attrs
        ref = attrs.get("r")
        self.column = _column_index(ref.rstrip(_DIGITS)) if ref else self.column + 1
        if not self.value and not self.texts:
            return  # empty (most cells of a formatted sheet): nothing more to do
        kind, style = attrs.get("t", "n"), attrs.get("s", "")
        text = _cell_value(kind, style, self.value, self, self.book)
        if text:
            if self.column > self.max_columns:
                raise columns_error(self.max_columns)
            self.cells[self.column] = text


def _sheet_rows(
    archive: zipfile.ZipFile, part: str, book: _Book, max_columns: int
) -> Generator[tuple[int, list[str]], None, None]:
    reader = _Sheet(book, max_columns)
    for _ in reader.run(archive, part):
        for number, sparse in reader.rows:
            cells = [""] * max(sparse)
            for column, text in sparse.items():
                cells[column - 1] = text
            yield number, cells
        reader.rows.clear()


def _cell_value(kind: str, style: str, value: str, inline: _Strings, book: _Book) -> str:
    """One cell as the text a user would expect to see ('' when empty)."""
    if kind == "inlineStr":
        return inline.string().strip()
    if not value:
        return ""
    if kind == "s":
        index = int(value)
        if index < 0:
            raise ValueError("bad shared string index")
        return book.strings[index].strip()
    if kind == "b":
        return "TRUE" if value.strip() in ("1", "true") else "FALSE"
    if kind in ("str", "e"):
        return _unescape(value).strip()
    if kind == "d":
        return cell_text(from_ISO8601(value))
    number: int | float = float(value) if any(c in value for c in ".eE") else int(value)
    index = int(style) if style else 0
    if index in book.dates:
        try:
            return cell_text(from_excel(number, book.epoch, timedelta=index in book.durations))
        except (OverflowError, ValueError):
            pass  # a "date" outside the calendar: show the number
    return cell_text(number)


def _unescape(text: str) -> str:
    """OOXML writes characters XML cannot hold as ``_xHHHH_`` (``_x005F_`` is a literal _)."""
    if "_x" not in text:
        return text
    return _ESCAPE.sub(_unescaped, text)


def _unescaped(match: re.Match[str]) -> str:
    code = int(match.group(1), 16)
    return "" if 0xD800 <= code <= 0xDFFF else chr(code)  # half a surrogate pair is no text
