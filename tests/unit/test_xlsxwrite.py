"""The XLSX writer of the enriched export: what it writes reads back the same, in
openpyxl (what Excel users' tools use) and in this product's own reader (a user may
upload an export again)."""

from __future__ import annotations

import io
import zipfile
from decimal import Decimal

from openpyxl import load_workbook

from phone_core import xlsxwrite
from phone_core.tables import read_table


def _rows() -> list[list[str | int | Decimal]]:
    header: list[str | int | Decimal] = [f"col {i}" for i in range(30)]  # past Z: AA.. AD
    rows = [header]
    for n in range(1200):  # more than one chunk of the sheet's writer
        row: list[str | int | Decimal] = [f"r{n} c{i}" for i in range(30)]
        row[1] = n
        row[2] = Decimal("12.50")
        row[3] = 'Tom & "Jerry" <b>Ltd</b> \u00e9\u4e2d\U0001f600'
        row[4] = ""
        row[5] = "  padded  "
        rows.append(row)
    return rows


def test_openpyxl_reads_back_every_cell() -> None:
    rows = _rows()
    book = load_workbook(io.BytesIO(xlsxwrite.write("enriched", rows)), read_only=True)
    sheet = book["enriched"]
    got = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert len(got) == len(rows)
    assert got[0] == rows[0]
    last = got[-1]
    assert last[1] == 1199 and isinstance(last[1], int)
    assert last[2] == 12.5
    assert last[3] == 'Tom & "Jerry" <b>Ltd</b> \u00e9\u4e2d\U0001f600'
    assert last[4] is None  # an empty cell is no cell
    assert last[5] == "  padded  "
    assert last[29] == "r1199 c29"


def test_the_product_reads_its_own_export_again() -> None:
    data = xlsxwrite.write("enriched", _rows()[:3])
    table = read_table(data, "export.xlsx")
    assert table.headers[:2] == ["col 0", "col 1"]
    assert table.rows[1][1] == "1"
    assert table.rows[1][3] == 'Tom & "Jerry" <b>Ltd</b> \u00e9\u4e2d\U0001f600'


def test_the_package_holds_the_parts_excel_needs() -> None:
    names = set(zipfile.ZipFile(io.BytesIO(xlsxwrite.write("x" * 40, [["a"]]))).namelist())
    assert names == {
        "[Content_Types].xml",
        "_rels/.rels",
        "xl/workbook.xml",
        "xl/_rels/workbook.xml.rels",
        "xl/styles.xml",
        "xl/worksheets/sheet1.xml",
    }


def test_column_letters() -> None:
    assert [xlsxwrite.column_letter(i) for i in (0, 25, 26, 51, 52, 701, 702, 16383)] == [
        "A",
        "Z",
        "AA",
        "AZ",
        "BA",
        "ZZ",
        "AAA",
        "XFD",
    ]
