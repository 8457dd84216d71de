"""Reading a large upload row by row (the reference directory), never whole.

``open_rows`` finds the header row the way ``tables.read_table`` does, then hands out the
rows under it as a stream: each row stripped, cut or padded to the header's width, empty
rows skipped, counted against the row limit as it goes. Problems met mid-way (a broken
quote, a limit passed) are ``FileFormatError``s with a message for the user. ``sample``
reads the first rows into a ``Table`` (``partial``) for a preview and the column mapping.

Unlike ``read_table``, a column is kept even when it is empty all the way down (that is
only known at the end): the columns are those of the header row.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePath
from typing import BinaryIO

from phone_core.cells import EXCEL_MAX_COLUMNS, SAVE_AS, human_size
from phone_core.csvtext import csv_rows_file
from phone_core.errors import FileFormatError
from phone_core.tables import (
    _ZIP_MAGIC,
    Table,
    _clean_rows,
    _Limits,
    _unique_headers,
    header_of,
)
from phone_core.xlsx import Workbook


@dataclass
class RowStream:
    """The header of a file and an iterator over its data rows (each ``len(headers)`` long)."""

    headers: list[str]
    rows: Iterator[list[str]]
    encoding: str = ""
    delimiter: str = ""
    sheets: tuple[str, ...] = ()
    sheet: str = ""
    header_row: int = 1
    rows_above: int = 0


def file_size(fh: BinaryIO) -> int:
    fh.seek(0, 2)
    size = fh.tell()
    fh.seek(0)
    return size


@contextmanager
def open_rows(
    fh: BinaryIO,
    filename: str,
    *,
    max_rows: int,
    max_bytes: int,
    max_columns: int,
    max_uncompressed_bytes: int,
    sheet: str | None = None,
) -> Iterator[RowStream]:
    """The rows of a seekable binary file (CSV or XLSX; not closed here)."""
    size = file_size(fh)
    if size > max_bytes:
        raise FileFormatError(
            f"The file is {human_size(size)}; the limit is {human_size(max_bytes)}."
        )
    head = fh.read(len(_ZIP_MAGIC))
    fh.seek(0)
    if not size or (size < 4096 and fh.read().isspace()):
        raise FileFormatError("The file is empty.")
    is_xlsx = head.startswith(_ZIP_MAGIC)
    columns = max(1, min(max_columns, EXCEL_MAX_COLUMNS))
    limits = _Limits(max_rows, columns, None)
    try:
        if is_xlsx:
            with Workbook(
                fh, max_columns=columns, max_uncompressed_bytes=max_uncompressed_bytes
            ) as book:
                chosen = book.choose(sheet)
                raw = _clean_rows(book.rows(chosen))
                yield _stream(raw, limits, xlsx=True, sheets=tuple(book.names), sheet=chosen.name)
        else:
            if sheet is not None:
                raise FileFormatError(
                    "Only an Excel workbook has sheets; this file is read as CSV."
                )
            records, encoding, delimiter = csv_rows_file(fh, PurePath(filename).suffix.lower())
            raw = enumerate(records, start=1)
            yield _stream(raw, limits, xlsx=False, encoding=encoding, delimiter=delimiter)
    except FileFormatError:
        raise
    except csv.Error as exc:
        raise _csv_error() from exc
    except Exception as exc:
        kind = "an Excel workbook" if is_xlsx else "a CSV file"
        raise FileFormatError(f"The file could not be read as {kind}. {SAVE_AS}") from exc


def _csv_error() -> FileFormatError:
    return FileFormatError(
        "The file could not be read as CSV: a cell is too long, usually because a quote "
        '(") is never closed. ' + SAVE_AS
    )


def _stream(
    raw: Iterator[tuple[int, list[str]]], limits: _Limits, *, xlsx: bool, **info: object
) -> RowStream:
    head = header_of(raw, limits)
    width = head.width
    if xlsx:  # Excel does not store trailing blank header cells: the rows under it say
        width = min(max([width, *(len(cells) for _, cells in head.under)]), limits.columns)
    header = head.header + [""] * (width - len(head.header))
    headers = _unique_headers(list(enumerate(header)))
    return RowStream(
        headers=headers,
        rows=_rows(itertools.chain(head.under, raw), width, limits),
        header_row=head.number,
        rows_above=max(head.pick, 0),
        **info,  # type: ignore[arg-type]
    )


def _rows(raw: Iterator[tuple[int, list[str]]], width: int, limits: _Limits) -> Iterator[list[str]]:
    strip = str.strip
    cap = limits.rows
    count = 0
    pad = [""] * width
    try:
        for _, cells in raw:
            row = list(map(strip, cells[:width]))
            if not any(row):
                continue
            if len(row) < width:
                row += pad[len(row) :]
            count += 1
            if cap is not None and count > cap:
                raise FileFormatError(
                    f"The file has more than {cap:,} data rows; the limit is {cap:,}."
                )
            yield row
    except FileFormatError:
        raise
    except csv.Error as exc:
        raise _csv_error() from exc
    except Exception as exc:
        raise FileFormatError(f"The file could not be read to the end. {SAVE_AS}") from exc


def sample(stream: RowStream, rows: int) -> Table:
    """The first ``rows`` rows as a ``Table`` (``partial`` when the file has more); the
    stream goes on after them."""
    first = list(itertools.islice(stream.rows, rows + 1))
    if not first:
        raise FileFormatError("The file has a header row but no data rows.")
    more = len(first) > rows
    if more:
        stream.rows = itertools.chain(first[rows:], stream.rows)
    return Table(
        headers=stream.headers,
        rows=first[:rows],
        encoding=stream.encoding,
        delimiter=stream.delimiter,
        sheets=stream.sheets,
        sheet=stream.sheet,
        header_row=stream.header_row,
        rows_above=stream.rows_above,
        partial=more,
    )
