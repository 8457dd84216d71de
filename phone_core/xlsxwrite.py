"""Writing a one-sheet XLSX file quickly: the enriched export.

openpyxl's write-only mode spends about a millisecond a row building an element tree per
cell; a run of 1000 rows and its batch's merged file cost over a second of a run's time.
An XLSX file is a zip of a few XML parts, and a sheet of text and numbers needs only
these: the content types, the package and workbook relationships, the workbook, a
minimal style sheet and the sheet itself (ECMA-376 Part 1, SpreadsheetML). Strings are
written inline (``t="inlineStr"``), numbers as ``<v>``; every cell carries its
reference. The caller gives cells already safe for a spreadsheet (``outputs._xlsx_cell``:
no formula start, no character XML cannot hold); here they are only escaped.

Read back by openpyxl and by this product's reader (``xlsx``) in the tests.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from decimal import Decimal
from functools import lru_cache
from typing import BinaryIO
from xml.sax.saxutils import escape

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/styles.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/worksheet" Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/styles" Target="styles.xml"/>'
    "</Relationships>"
)
_STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)
_SHEET_START = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
)
_SHEET_END = "</sheetData></worksheet>"
_ATTR = {'"': "&quot;"}

Cell = str | int | Decimal


@lru_cache(maxsize=16384)  # Excel has 16,384 columns
def column_letter(index: int) -> str:
    """A, B, ... Z, AA, ... for the 0-based column ``index``."""
    letters = ""
    n = index + 1
    while n:
        n, rest = divmod(n - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _workbook(sheet_name: str) -> str:
    name = escape(sheet_name[:31], _ATTR)
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        f'<sheets><sheet name="{name}" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )


def _row(number: int, cells: Sequence[Cell]) -> str:
    parts = [f'<row r="{number}">']
    for i, value in enumerate(cells):
        ref = f"{column_letter(i)}{number}"
        if isinstance(value, str):
            if value:
                parts.append(
                    f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">'
                    f"{escape(value)}</t></is></c>"
                )
        else:
            parts.append(f'<c r="{ref}"><v>{value}</v></c>')
    parts.append("</row>")
    return "".join(parts)


def write(sheet_name: str, rows: Sequence[Sequence[Cell]]) -> bytes:
    """The XLSX file of one sheet holding ``rows`` (the first one is the header)."""
    buf = io.BytesIO()
    sheet = SheetWriter(buf, sheet_name, max((len(r) for r in rows), default=0), len(rows))
    for cells in rows:
        sheet.row(cells)
    sheet.close()
    return buf.getvalue()


class SheetWriter:
    """An XLSX file of one sheet written to ``out`` a row at a time: nothing but a chunk
    of rows is held. The sheet states its size (``dimension``, hence ``width`` and
    ``height`` up front): readers then give every row the full width, empty cells at the
    end of a row included."""

    def __init__(self, out: BinaryIO, sheet_name: str, width: int, height: int) -> None:
        size = f"A1:{column_letter(max(width, 1) - 1)}{max(height, 1)}"
        self._archive = zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED)
        self._archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        self._archive.writestr("_rels/.rels", _ROOT_RELS)
        self._archive.writestr("xl/workbook.xml", _workbook(sheet_name))
        self._archive.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        self._archive.writestr("xl/styles.xml", _STYLES)
        self._sheet = self._archive.open("xl/worksheets/sheet1.xml", "w")
        self._sheet.write(f'{_SHEET_START}<dimension ref="{size}"/><sheetData>'.encode())
        self._chunk: list[str] = []
        self._number = 0

    def row(self, cells: Sequence[Cell]) -> None:
        self._number += 1
        self._chunk.append(_row(self._number, cells))
        if len(self._chunk) >= 512:
            self._sheet.write("".join(self._chunk).encode())
            self._chunk.clear()

    def close(self) -> None:
        self._sheet.write(("".join(self._chunk) + _SHEET_END).encode())
        self._sheet.close()
        self._archive.close()
