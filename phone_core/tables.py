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
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import PurePath

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
from phone_core.xlsx import xlsx_rows

__all__ = ["Table", "clean_text", "detect_delimiter", "read_table"]

_MB = 1024 * 1024
DEFAULT_MAX_BYTES = 50 * _MB
DEFAULT_MAX_ROWS = 200_000
DEFAULT_MAX_COLUMNS = 1_000
DEFAULT_MAX_UNCOMPRESSED_BYTES = 256 * _MB
CELLS_PER_ROW = 100  # the default cell budget: max_rows rows of this many columns
_ZIP_MAGIC = b"PK\x03\x04"


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
    max_rows: int | None = DEFAULT_MAX_ROWS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_columns: int = DEFAULT_MAX_COLUMNS,
    max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED_BYTES,
    max_cells: int | None = None,
) -> Table:
    """Read an uploaded CSV or XLSX file; raise ``FileFormatError`` with a user message.

    Limits: ``max_bytes`` of upload, ``max_uncompressed_bytes`` once an XLSX is unzipped,
    ``max_rows`` data rows, ``max_columns`` columns (never more than Excel's 16,384), and
    ``max_cells`` rows x columns (default: ``max_rows`` rows of ``CELLS_PER_ROW`` columns).
    """
    if len(data) > max_bytes:
        raise FileFormatError(
            f"The file is {human_size(len(data))}; the limit is {human_size(max_bytes)}."
        )
    if not data or data.isspace():
        raise FileFormatError("The file is empty.")
    extension = PurePath(filename).suffix.lower()
    is_xlsx = data.startswith(_ZIP_MAGIC)
    columns = max(1, min(max_columns, EXCEL_MAX_COLUMNS))
    if max_cells is None and max_rows is not None:
        max_cells = max(max_rows, 1) * CELLS_PER_ROW
    try:
        raw_rows: Iterable[list[str]]
        if is_xlsx:
            raw_rows = _clean_rows(
                xlsx_rows(data, max_columns=columns, max_uncompressed_bytes=max_uncompressed_bytes)
            )
            encoding = delimiter = ""
        else:
            raw_rows, encoding, delimiter = csv_rows(data, extension)
        headers, rows = _build(raw_rows, _Limits(max_rows, columns, max_cells), widen=is_xlsx)
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
    return Table(headers=headers, rows=rows, encoding=encoding, delimiter=delimiter)


def _clean_rows(rows: Iterable[list[str]]) -> Iterator[list[str]]:
    for cells in rows:
        if DIRTY.search("".join(cells)) is not None:
            cells = [clean_text(cell) for cell in cells]
        yield cells


@dataclass(frozen=True)
class _Limits:
    rows: int | None
    columns: int
    cells: int | None


def _build(
    raw_rows: Iterable[list[str]], limits: _Limits, *, widen: bool
) -> tuple[list[str], list[list[str]]]:
    """First non-empty row is the header; skip empty rows; pad/truncate to the header.

    ``widen``: rows longer than the header widen the table (Excel does not store trailing
    blank header cells) instead of being cut. Rows are padded only at the end, once every
    limit has held, so a short hostile file cannot make many wide rows.
    """
    rows_iter = iter(raw_rows)
    header: list[str] | None = None
    for raw in rows_iter:
        cells = [cell.strip() for cell in raw]
        if any(cells):
            header = [" ".join(cell.replace("\ufeff", "").split()) for cell in cells]
            break
    if header is None:
        raise FileFormatError("The file is empty.")
    named = len(header)
    while not header[named - 1]:
        named -= 1
    if named > limits.columns:
        raise columns_error(limits.columns)
    width = min(len(header), limits.columns)
    del header[width:]
    rows: list[list[str]] = []
    append, strip = rows.append, str.strip
    row_cap = sys.maxsize if limits.rows is None else limits.rows
    cell_cap = sys.maxsize if limits.cells is None else limits.cells
    for raw in rows_iter:
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
    return _unique_headers([(i, header[i]) for i in keep]), rows


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
