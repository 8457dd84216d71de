"""What a cell of an uploaded table may hold, and the words used to refuse a file.

The leaf shared by ``tables`` (the entry point), ``csvtext`` and ``xlsx``: Excel's limits,
the control characters no cell keeps, how an Excel value reads as text, and the messages
that every reader gives the same way.
"""

from __future__ import annotations

import datetime as dt
import re

from phone_core.errors import FileFormatError

EXCEL_MAX_COLUMNS = 16_384
EXCEL_MAX_ROWS = 1_048_576
SAVE_AS = "Open it in Excel (or your CRM) and save it as .xlsx or .csv."
_MB = 1024 * 1024
# What no cell keeps: C0 controls but tab/newline/CR, DEL, C1 controls, and the two XML
# non-characters (openpyxl refuses the C0 ones; XML cannot hold any of them).
DIRTY = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")
CLEAN = {
    **{code: None for code in (*range(0x09), *range(0x0E, 0x20), *range(0x7F, 0xA0))},
    0x0B: " ",  # vertical tab and form feed separate words (FileMaker's in-cell line break)
    0x0C: " ",
    0xFFFE: None,
    0xFFFF: None,
}


def clean_text(text: str) -> str:
    """``text`` without the control characters no cell keeps (tab and newlines stay)."""
    return text.translate(CLEAN) if DIRTY.search(text) else text


def cell_text(value: object) -> str:
    """An Excel value as the text a user would expect to see."""
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


def human_size(size: int) -> str:
    """``2.5 MB``, or ``80 KB`` below a tenth of a megabyte."""
    if size < _MB // 10:
        return f"{-(-size // 1024)} KB"
    return f"{size / _MB:.1f}".removesuffix(".0") + " MB"


def columns_error(limit: int) -> FileFormatError:
    if limit >= EXCEL_MAX_COLUMNS:
        return FileFormatError(
            f"The file has more than {EXCEL_MAX_COLUMNS:,} columns, more than a spreadsheet "
            "can hold. Delete the columns you do not need and upload it again."
        )
    return FileFormatError(
        f"The file has more than {limit:,} columns; the limit is {limit:,}. "
        "Delete the columns you do not need and upload it again."
    )
