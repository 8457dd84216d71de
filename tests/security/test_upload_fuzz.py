"""Fuzz of the upload path: any bytes become a table or a plain message, never a traceback.

Inputs are raw bytes and mutations of valid files: CSV bytes, XLSX sheet XML (re-zipped, so
the XML reader sees the damage) and whole XLSX archives. Every read is traced: its peak
memory stays small whatever the input. Example counts are modest so the file runs in seconds.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phone_core.errors import FileFormatError
from phone_core.tables import read_table
from tests.security.hostile import row, sheet, text_cell, traced, xlsx

pytestmark = pytest.mark.slow  # hypothesis over file bytes: not in make test-fast

CSV = (
    "First Name;Last Name;Company;Website;Email\r\n"
    'Jane;Doe;"Acme; Inc";https://acme.com;jane@acme.com\r\n'
    "José;Núñez;Société Générale;sg.fr;\r\n"
    '"Li, Wei";"Zhang";"Beta ""B""";beta.cn;wei@beta.cn\r\n'
).encode()
SHEET_XML = b"".join(
    sheet(
        [
            row(
                1,
                text_cell("A1", "Email"),
                text_cell("B1", "Name"),
                b'<c r="C1" t="s"><v>0</v></c>',
            ),
            row(2, text_cell("A2", "a@b.co"), b'<c r="B2" s="1"><v>45000.5</v></c>'),
            row(3, b'<c r="A3" t="str"><v>c@d.co</v></c>', b'<c r="D3" t="b"><v>1</v></c>'),
        ],
        dimension="A1:D3",
    )
)
XLSX = xlsx([SHEET_XML], shared_strings=["Company"])
TOKENS = [
    b"<", b">", b"&", b'"', b"\x00", b"\x01", b"\x1b", b"\xff\xfe", b"\r\n", b";", b",", b"\t",
    b"_x0001_", b"_xD800_", b'r="XFD1"', b'<c r="XFD2"><v>1</v></c>', b"<row/>" * 50,
    b'<dimension ref="A1:XFE1048577"/>', b't="s"', b"<v>999999</v>", b"<!DOCTYPE x>",
    b'<c t="inlineStr"><is><t>x</t></is></c>' * 20, b"," * 3000,
]  # fmt: skip
DIRTY = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "flip", "repeat"]))
        if action == "insert":
            data[at:at] = draw(st.sampled_from(TOKENS) | st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif action == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 200))] * draw(st.integers(2, 40))
    return bytes(data)


def rezipped(sheet_xml: bytes) -> bytes:
    return xlsx([sheet_xml], shared_strings=["Company"])


UPLOADS = st.one_of(
    st.binary(max_size=4096),
    mutated(CSV),
    mutated(CSV).map(lambda data: data.decode("utf-8", "replace").encode("utf-16")),
    mutated(SHEET_XML).map(rezipped),
    mutated(XLSX),
)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=UPLOADS,
    filename=st.sampled_from(["leads.csv", "leads.xlsx", "export.txt", "noext"]),
    max_rows=st.sampled_from([None, 2, 100]),
    max_columns=st.sampled_from([3, 1_000, 16_384]),
)
def test_any_upload_is_a_table_or_a_plain_message(
    data: bytes, filename: str, max_rows: int | None, max_columns: int
) -> None:
    with traced() as peak:
        try:
            table = read_table(
                data, filename, max_rows=max_rows, max_columns=max_columns, max_bytes=100_000
            )
        except FileFormatError as exc:
            message = str(exc)
            assert message and "\n" not in message and "Traceback" not in message
            table = None
    assert peak() < 32
    if table is None:
        return
    assert table.rows and table.headers and len(table.headers) <= max_columns
    assert all(table.headers) and len(set(table.headers)) == len(table.headers)
    assert max_rows is None or table.row_count <= max_rows
    for cells in (table.headers, *table.rows):
        assert len(cells) == len(table.headers)
        assert all(cell == cell.strip() and not DIRTY.search(cell) for cell in cells)


def test_the_valid_seeds_read() -> None:
    assert read_table(CSV, "leads.csv").rows[2] == [
        "Li, Wei",
        "Zhang",
        'Beta "B"',
        "beta.cn",
        "wei@beta.cn",
    ]
    table = read_table(XLSX, "leads.xlsx")
    assert table.headers == ["Email", "Name", "Company", "column_4"]
    assert table.rows == [["a@b.co", "45000.5", "", ""], ["c@d.co", "", "", "TRUE"]]
