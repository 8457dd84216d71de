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


def metrics(at: AppTest) -> dict[str, str]:
    """Main-area metrics, label -> shown value."""
    return {m.label: m.value for m in at.main.metric}


def mapping(at: AppTest, prefix: str = "nb_map_") -> dict[str, str]:
    return {
        str(s.key)[len(prefix) :]: str(s.value)
        for s in at.selectbox
        if s.key and str(s.key).startswith(prefix)
    }


def messages(at: AppTest, kind: str) -> list[str]:
    return [str(e.value) for e in at.get(kind)]


def upload(at: AppTest, name: str, data: bytes, key: str = "nb_upload") -> AppTest:
    at.file_uploader(key=key).upload(name, data, "application/octet-stream")
    return at.run()


def csv_bytes(header: Sequence[str], rows: Sequence[Sequence[str]], sep: str = ",") -> bytes:
    lines = [sep.join(header), *(sep.join(row) for row in rows)]
    return ("\n".join(lines) + "\n").encode("utf-8")


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
