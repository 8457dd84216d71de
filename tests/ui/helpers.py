"""Small readers over an AppTest tree, and test files."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import openpyxl
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
NOT_MAPPED = "— not in the file —"
COLUMN_PREFIX = "nb_col_"  # the New batch page's "Use as" choice of a column
DONT_USE = "-"


def metrics(at: AppTest) -> dict[str, str]:
    """Main-area metrics, label -> shown value."""
    return {m.label: m.value for m in at.main.metric}


def mapping(at: AppTest) -> dict[str, str]:
    """Field -> column, as the New batch page's column table says (one "Use as" choice per
    column, keyed ``nb_col_<column>``)."""
    return {
        str(s.value): str(s.key)[len(COLUMN_PREFIX) :]
        for s in at.selectbox
        if s.key and str(s.key).startswith(COLUMN_PREFIX) and s.value != DONT_USE
    }


def use_as(at: AppTest, column: str, field: str = "-") -> AppTest:
    """Choose what ``column`` holds on the New batch page (default: "Don't use"), and rerun."""
    at.selectbox(key=COLUMN_PREFIX + column).set_value(field)
    return at.run()


def messages(at: AppTest, kind: str) -> list[str]:
    return [str(e.value) for e in at.get(kind)]


def upload(at: AppTest, name: str, data: bytes, key: str = "nb_upload") -> AppTest:
    at.file_uploader(key=key).upload(name, data, "application/octet-stream")
    return at.run()


def csv_bytes(header: Sequence[str], rows: Sequence[Sequence[str]], sep: str = ",") -> bytes:
    lines = [sep.join(header), *(sep.join(row) for row in rows)]
    return ("\n".join(lines) + "\n").encode("utf-8")


def workbook_bytes(sheets: dict[str, Sequence[Sequence[object]]]) -> bytes:
    """A workbook of several sheets, name -> rows (an empty list: an empty sheet)."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(list(row))
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def xlsx_bytes(header: Sequence[str], rows: Sequence[Sequence[object]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


# Ten leads with a known make-up (directory + disabled lantern: 1 credit per found phone):
# 8 enrichable (rows 1-4, 6, 7, 9, 10), 2 skipped (5, 8), 2 duplicates (6 of 1, 10 of 4),
# so 6 distinct people; one of them (Bob Ray at globex.com) is put in the cache by the test.
PREFLIGHT_HEADER = ["First Name", "Last Name", "Company", "Website", "Email"]
PREFLIGHT_ROWS = [
    ["Ann", "Lee", "Acme", "acme.com", ""],
    ["Bob", "Ray", "Globex", "globex.com", ""],
    ["Cat", "Fox", "Initech", "", ""],
    ["", "", "", "", "dan@umbrella.com"],
    ["Eve", "Kim", "", "", ""],
    ["ANN", "Lee", "Acme", "https://www.acme.com/", ""],
    ["Finn", "Ng", "Hooli", "hooli.com", ""],
    ["", "", "Stark", "", ""],
    ["Gus", "Poe", "Wayne", "wayne.com", ""],
    ["", "", "", "", "DAN@umbrella.com"],
]
