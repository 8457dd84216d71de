"""Reading uploaded lead lists (CSV in any common encoding and delimiter, or XLSX) into strings.

``read_table`` is the only entry point. It never lets a library error escape: every problem
becomes a ``FileFormatError`` whose message can be shown to the user as is. Cell contents are
never logged (they are personal data).

Hostile files are bounded before they cost anything: bytes first, then (XLSX, ``xlsx``) the
declared uncompressed size and compression ratio, read from the zip directory; rows, columns
and cells are counted while the file streams (CSV, ``csvtext``: decoded as it is read, never
whole), and reading stops at the first limit passed. Control characters are dropped from
every cell on the way in (``cells.clean_text``), so no table, and no file built from one,
ever carries them.

Exports are not always one clean grid: a workbook may hold several sheets (one is read:
``sheet=`` by name, else the first holding a table, see ``xlsx.Workbook.choose``), and a title
or notes may stand above the header row (``find_header`` picks the header among the first
``HEADER_SCAN`` rows; the rows above it are left out and counted in ``Table.rows_above``).
"""

from __future__ import annotations

import csv
import itertools
import math
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePath

from phone_core import mapping_data
from phone_core.cells import (
    DIRTY,
    EXCEL_MAX_COLUMNS,
    SAVE_AS,
    clean_text,
    columns_error,
    human_size,
)
from phone_core.csvtext import csv_rows, detect_delimiter
from phone_core.errors import FileFormatError
from phone_core.xlsx import Workbook

__all__ = ["Table", "clean_text", "detect_delimiter", "find_header", "read_table"]

_MB = 1024 * 1024
DEFAULT_MAX_BYTES = 50 * _MB
DEFAULT_MAX_ROWS = 200_000
DEFAULT_MAX_COLUMNS = 1_000
DEFAULT_MAX_UNCOMPRESSED_BYTES = 256 * _MB
CELLS_PER_ROW = 100  # the default cell budget: max_rows rows of this many columns
_ZIP_MAGIC = b"PK\x03\x04"
HEADER_SCAN = 20  # the header row is one of the first this many non-empty rows
_UNDER = 10  # rows under a candidate header that show how wide the table is


@dataclass(frozen=True)
class Table:
    """An uploaded sheet: unique non-empty headers and rows of stripped strings."""

    headers: list[str]
    rows: list[list[str]]
    encoding: str = "utf-8"
    delimiter: str = ","
    sheets: tuple[str, ...] = ()  # a workbook's sheets (as a user sees them), in tab order
    sheet: str = ""  # the sheet read
    header_row: int = 1  # the header's row number in the file (as Excel numbers rows); 0: none
    rows_above: int = 0  # non-empty rows above the header, left out (a title, notes)
    partial: bool = False  # only the first rows of a larger file (``tablestream.sample``)

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
    max_rows: int | None = DEFAULT_MAX_ROWS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_columns: int = DEFAULT_MAX_COLUMNS,
    max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED_BYTES,
    max_cells: int | None = None,
    sheet: str | None = None,
) -> Table:
    """Read an uploaded CSV or XLSX file; raise ``FileFormatError`` with a user message.

    Limits: ``max_bytes`` of upload, ``max_uncompressed_bytes`` once an XLSX is unzipped,
    ``max_rows`` data rows, ``max_columns`` columns (never more than Excel's 16,384), and
    ``max_cells`` rows x columns (default: ``max_rows`` rows of ``CELLS_PER_ROW`` columns).
    ``sheet``: the worksheet to read, by name (a workbook only; default: the first with a table).
    """
    if len(data) > max_bytes:
        raise FileFormatError(
            f"The file is {human_size(len(data))}; the limit is {human_size(max_bytes)}."
        )
    if not data or data.isspace():
        raise FileFormatError("The file is empty.")
    extension = PurePath(filename).suffix.lower()
    is_xlsx = data.startswith(_ZIP_MAGIC)
    if sheet is not None and not is_xlsx:
        raise FileFormatError("Only an Excel workbook has sheets; this file is read as CSV.")
    columns = max(1, min(max_columns, EXCEL_MAX_COLUMNS))
    if max_cells is None and max_rows is not None:
        max_cells = max(max_rows, 1) * CELLS_PER_ROW
    limits = _Limits(max_rows, columns, max_cells)
    try:
        if is_xlsx:
            with Workbook(
                data, max_columns=columns, max_uncompressed_bytes=max_uncompressed_bytes
            ) as book:
                chosen = book.choose(sheet)
                built = _build(_clean_rows(book.rows(chosen)), limits, widen=True)
                return _table(built, sheets=tuple(book.names), sheet=chosen.name)
        records, encoding, delimiter = csv_rows(data, extension)
        built = _build(enumerate(records, start=1), limits, widen=False)
        return _table(built, encoding=encoding, delimiter=delimiter)
    except FileFormatError:
        raise
    except csv.Error as exc:
        raise FileFormatError(
            "The file could not be read as CSV: a cell is too long, usually because a quote "
            '(") is never closed. ' + SAVE_AS
        ) from exc
    except Exception as exc:  # never let a library error reach the user
        kind = "an Excel workbook" if is_xlsx else "a CSV file"
        raise FileFormatError(f"The file could not be read as {kind}. {SAVE_AS}") from exc


def _clean_rows(rows: Iterable[tuple[int, list[str]]]) -> Iterator[tuple[int, list[str]]]:
    for number, cells in rows:
        if DIRTY.search("".join(cells)) is not None:
            cells = [clean_text(cell) for cell in cells]
        yield number, cells


@dataclass(frozen=True)
class _Limits:
    rows: int | None
    columns: int
    cells: int | None


@dataclass(frozen=True)
class _Built:
    headers: list[str]
    rows: list[list[str]]
    header_row: int
    rows_above: int


def _table(
    built: _Built,
    *,
    encoding: str = "",
    delimiter: str = "",
    sheets: tuple[str, ...] = (),
    sheet: str = "",
) -> Table:
    return Table(
        headers=built.headers,
        rows=built.rows,
        encoding=encoding,
        delimiter=delimiter,
        sheets=sheets,
        sheet=sheet,
        header_row=built.header_row,
        rows_above=built.rows_above,
    )


@dataclass(frozen=True)
class _Head:
    number: int  # the header's row number (0: no header row)
    header: list[str]  # cleaned header cells, ``width`` of them
    pick: int  # its position among the rows read ahead (-1: none)
    width: int
    under: list[tuple[int, list[str]]]  # the rows read ahead under the header


def header_of(rows_iter: Iterator[tuple[int, list[str]]], limits: _Limits) -> _Head:
    """Read ahead the first non-empty rows and pick the header row (``find_header``)."""
    ahead: list[tuple[int, list[str], bool]] = []  # (number, cells, a cell past the limit)
    for number, raw in rows_iter:
        cells = [cell.strip() for cell in raw[: limits.columns + 1]]
        over = len(raw) > limits.columns and any(cell.strip() for cell in raw[limits.columns :])
        if any(cells) or over:
            ahead.append((number, cells, over))
            if len(ahead) == HEADER_SCAN + _UNDER:
                break
    if not ahead:
        raise FileFormatError("The file is empty.")
    pick = find_header([cells for _, cells, _ in ahead])
    if pick is None:  # no header row: every column is named by its position
        number, pick = 0, -1
        header = [""] * min(max(len(cells) for _, cells, _ in ahead), limits.columns)
    else:
        number, header, over = ahead[pick]
        header = [" ".join(cell.replace("\ufeff", "").split()) for cell in header]
        if over:
            raise columns_error(limits.columns)
        named = len(header)
        while not header[named - 1]:
            named -= 1
        if named > limits.columns:
            raise columns_error(limits.columns)
    width = min(len(header), limits.columns)
    del header[width:]
    under = [(n, cells) for n, cells, _ in ahead[pick + 1 :]]
    return _Head(number, header, pick, width, under)


def _build(raw_rows: Iterable[tuple[int, list[str]]], limits: _Limits, *, widen: bool) -> _Built:
    """The header row (``find_header``), then the rows under it: empty rows skipped, each
    padded/truncated to the header.

    ``widen``: rows longer than the header widen the table (Excel does not store trailing
    blank header cells) instead of being cut. Rows are padded only at the end, once every
    limit has held, so a short hostile file cannot make many wide rows. The rows read ahead
    to find the header keep at most ``limits.columns + 1`` cells each.
    """
    rows_iter = iter(raw_rows)
    head = header_of(rows_iter, limits)
    number, header, pick, width = head.number, head.header, head.pick, head.width
    rows: list[list[str]] = []
    append, strip = rows.append, str.strip
    row_cap = sys.maxsize if limits.rows is None else limits.rows
    cell_cap = sys.maxsize if limits.cells is None else limits.cells
    for _, raw in itertools.chain(head.under, rows_iter):
        cells = list(map(strip, raw))
        if not any(cells):
            continue
        if len(cells) > width:
            if not widen:
                del cells[width:]
            elif len(cells) > limits.columns:
                raise columns_error(limits.columns)
            else:
                width = len(cells)
        append(cells)
        if len(rows) > row_cap or len(rows) * width > cell_cap:
            raise _too_big(limits, len(rows), width)
    if not rows:
        raise FileFormatError("The file has a header row but no data rows.")
    header.extend([""] * (width - len(header)))
    for cells in rows:
        if len(cells) < width:
            cells.extend([""] * (width - len(cells)))
    keep = [i for i, name in enumerate(header) if name or any(row[i] for row in rows)]
    if len(keep) < width:
        rows = [[row[i] for i in keep] for row in rows]
    headers = _unique_headers([(i, header[i]) for i in keep])
    return _Built(headers, rows, header_row=number, rows_above=max(pick, 0))


def find_header(rows: Sequence[Sequence[str]]) -> int | None:
    """Which of ``rows`` (the first non-empty rows of a file, stripped) is the header row.

    The first row, unless it is clearly not: CRM reports and Excel lists often start with a
    title, a date or filters, a cell or two wide, above the header. A row is taken as the
    header when every row above it is such a narrow row and either

    1. it names columns: most of its cells are text (not numbers, dates, emails or links)
       and a third or more of them are known column names ("Email", "Contact First Name",
       "Column 3"; ``mapping_data.names_a_column``), or, failing any such row,
    2. it has the shape of a header: text cells, mostly different, spanning most of the
       width of the rows under it.

    When no row qualifies, the first row is the header (as before this rule existed), unless
    it holds an email address or a link and no column name: then the file has no header row
    (None), and its columns are named by position.
    """
    spec = mapping_data.packaged()
    filled = [[cell for cell in row if cell] for row in rows]
    counts = [len(cells) for cells in filled]
    extents = [max((i + 1 for i, cell in enumerate(row) if cell), default=0) for row in rows]
    scan = range(min(len(rows), HEADER_SCAN))

    def table_width(i: int) -> int:
        return max(extents[i + 1 : i + 1 + _UNDER], default=extents[i])

    def wide_enough(i: int, share: float) -> bool:
        width = table_width(i)
        return counts[i] >= (1 if width <= 1 else max(2, math.ceil(share * width)))

    def names_columns(i: int) -> bool:
        if not (wide_enough(i, 0.0) and _labels(filled[i], distinct=False)):
            return False
        named = (cell for cell in filled[i] if mapping_data.names_a_column(cell, spec))
        return sum(1 for _ in itertools.islice(named, -(-counts[i] // 3))) * 3 >= counts[i]

    def header_shaped(i: int) -> bool:
        return wide_enough(i, 0.6) and _labels(filled[i])

    def below_preamble(j: int) -> bool:
        return all(counts[k] < counts[j] and counts[k] <= max(2, counts[j] // 3) for k in range(j))

    for test in (names_columns, header_shaped):
        if test(0):
            return 0
        found = next((j for j in scan[1:] if below_preamble(j) and test(j)), None)
        if found is not None:
            return found
    values = [cell for cell in filled[0] if _data(cell)]
    if values and not any(
        mapping_data.names_a_column(cell, spec) for cell in filled[0] if cell not in values
    ):
        return None
    return 0


def _labels(cells: Sequence[str], *, distinct: bool = True) -> bool:
    """Whether cells read as column names: mostly short text, mostly different (unless not
    ``distinct``: exports repeat names such as "Email"), never an email address or a link."""
    if not cells or any(map(_data, cells)):
        return False
    labels = sum(1 for cell in cells if _label(cell))
    different = len({c.casefold() for c in cells})
    return 5 * labels >= 4 * len(cells) and (not distinct or 4 * different >= 3 * len(cells))


def _data(cell: str) -> bool:
    """An email address or a link: a value, never a column's name."""
    low = cell.lower()
    at = low.find("@")
    if at > 0 and "." in low[at:] and " " not in low:
        return True
    return "://" in low or low.startswith("www.") or "linkedin.com/" in low


def _label(cell: str) -> bool:
    if len(cell) > 80 or "@" in cell or "://" in cell or cell.lower().startswith("www."):
        return False
    digits = sum(c.isdigit() for c in cell)
    return any(c.isalpha() for c in cell) and 2 * digits <= len(cell)


def _too_big(limits: _Limits, rows: int, width: int) -> FileFormatError:
    if limits.rows is not None and rows > limits.rows:
        return FileFormatError(
            f"The file has more than {limits.rows:,} data rows; the limit is {limits.rows:,}."
        )
    return FileFormatError(
        f"The file has more than {limits.cells:,} cells ({rows:,} rows of {width:,} columns "
        f"so far); the limit is {limits.cells:,}. Delete the columns you do not need, or split "
        "the file."
    )


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
