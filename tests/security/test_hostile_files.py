"""Issue 9 items 9 and 10, reading side: hostile uploads are refused on what bounds the work.

Every file is generated here. No assertion is on time (machines differ): each is on what
bounds the work instead: which check refused the file (so nothing was parsed), the peak
memory of the read (tracemalloc), or what came out.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import openpyxl
import pytest

from phone_core import tables
from phone_core.errors import FileFormatError
from phone_core.settings import Settings
from phone_core.tables import Table, read_table
from tests.security import hostile
from tests.security.hostile import SHEET, row, sheet, text_cell, traced, xlsx

pytestmark = pytest.mark.slow  # files of millions of rows and cells: not in make test-fast


def refusal(data: bytes, filename: str = "leads.xlsx", **limits: int | None) -> str:
    with pytest.raises(FileFormatError) as info:
        read_table(data, filename, **limits)  # type: ignore[arg-type]
    message = str(info.value)
    assert message and "\n" not in message
    return message


# --- wide sheets: one cell far right per row ----------------------------------------------------


def test_a_cell_in_column_xfd_refuses_the_file_at_once() -> None:
    data = hostile.wide_xlsx(150_000)  # 1.6 MB: drove the old reader past 4 GB
    with traced() as peak:
        message = refusal(data)
    assert message.startswith("The file has more than 1,000 columns; the limit is 1,000.")
    assert peak() < 20


def test_wide_rows_are_never_materialised() -> None:
    """Even where XFD is allowed, a row is built sparsely and the cell budget stops the read."""
    data = hostile.wide_xlsx(3_000)
    with traced() as peak:
        message = refusal(data, max_columns=16_384, max_cells=2_000_000)
    assert "more than 2,000,000 cells" in message
    assert peak() < 40  # 2M cells of 8 bytes; the old reader built 3,000 rows of 16,384


def test_sparse_cells_within_the_cap_are_read_and_empty_columns_dropped() -> None:
    rows = [row(1, text_cell("A1", "Email"), text_cell("ALL1", "Note"))]
    rows += [
        row(n, text_cell(f"A{n}", f"u{n}@x.co"), b'<c r="B%d"/><c r="ZZ%d" s="1"/>' % (n, n))
        for n in range(2, 5)
    ]
    rows.append(row(5, text_cell("A5", "v@x.co"), text_cell("ALL5", "last")))
    table = read_table(xlsx(sheet(rows)), "wide.xlsx")
    assert table.headers == ["Email", "Note"]
    assert table.rows == [["u2@x.co", ""], ["u3@x.co", ""], ["u4@x.co", ""], ["v@x.co", "last"]]


def test_more_columns_than_excel_has_are_refused_whatever_the_setting() -> None:
    header = ",".join(f"c{i}" for i in range(16_385))
    message = refusal(f"{header}\n1\n".encode(), "wide.csv", max_columns=100_000)
    assert "more than 16,384 columns, more than a spreadsheet can hold" in message


def test_csv_column_cap() -> None:
    header = ",".join(f"c{i}" for i in range(1_001))
    assert len(read_table(f"{header}\n1\n".encode(), "x.csv", max_columns=1_001).headers) == 1_001
    message = refusal(f"{header}\n1\n".encode(), "x.csv")
    assert message.startswith("The file has more than 1,000 columns; the limit is 1,000.")
    # Trailing empty header cells are not columns (exports pad rows with delimiters).
    assert read_table(b"a,b" + b"," * 5_000 + b"\n1,2\n", "x.csv").headers == ["a", "b"]


def test_a_line_of_delimiters_is_refused_before_csv_splits_it() -> None:
    data = b"a,b\n" + b"," * 2_000_000 + b"\n"
    with traced() as peak:
        message = refusal(data, "x.csv")
    assert "16,384 columns" in message
    assert peak() < 30  # the split line alone would be a 16 MB list


def test_short_rows_under_a_wide_header_cannot_multiply_memory() -> None:
    """1,000 named columns and 200,000 one-cell rows: a 0.4 MB file that padded to 1.6 GB."""
    header = ",".join(f"c{i}" for i in range(1_000))
    data = (header + "\n" + "1\n" * 200_000).encode()
    with traced() as peak:
        message = refusal(data, "x.csv")
    assert message.startswith("The file has more than 20,000,000 cells")
    assert peak() < 20


# --- zip bombs and lying archives -----------------------------------------------------------------


def test_zip_bomb_is_refused_from_the_zip_directory() -> None:
    data = hostile.bomb_xlsx(64 * 2**20)  # 64 MB of blank rows in ~100 KB
    assert len(data) < 200_000
    with traced() as peak:
        message = refusal(data)
    assert "would expand more than 100-fold" in message and "unsafe" in message
    assert peak() < 5


def test_declared_sizes_are_checked_before_anything_is_inflated() -> None:
    """The sheet claims 5 KB more than it holds: only the declaration can refuse the file."""
    data = hostile.small_xlsx()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        total = sum(info.file_size for info in archive.infolist())
        claimed = archive.getinfo(SHEET).file_size + 5_000
    cap = total + 1_000
    assert read_table(data, "ok.xlsx", max_uncompressed_bytes=cap).row_count == 2
    forged = hostile.claim_size(data, SHEET, claimed)
    assert refusal(forged, max_uncompressed_bytes=cap).startswith("The Excel file expands to")
    # Claiming gigabytes from a few hundred bytes is a bomb, refused as such.
    assert "unsafe" in refusal(hostile.claim_size(data, SHEET, 3_500_000_000))


def test_the_uncompressed_cap_is_a_parameter() -> None:
    data = hostile.small_xlsx()
    assert "the limit is 2 KB" in refusal(data, max_uncompressed_bytes=2_000)


def test_a_member_that_inflates_past_its_declared_size_is_cut_off() -> None:
    """zipfile stops at the declared size (then the CRC fails): declarations bound the work."""
    data = hostile.claim_size(hostile.wide_xlsx(2_000), SHEET, 1_000)
    with traced() as peak:
        message = refusal(data)
    assert "could not be read as an Excel workbook" in message
    assert peak() < 5


def test_a_declared_dimension_is_never_used_to_size_anything() -> None:
    table = read_table(hostile.small_xlsx(dimension="A1:XFD1048576"), "x.xlsx")
    assert table.headers == ["Email", "Name"] and table.row_count == 2
    assert "larger than Excel allows" in refusal(hostile.small_xlsx(dimension="A1:XFE2"))
    assert "larger than Excel allows" in refusal(hostile.small_xlsx(dimension="A1:C1048577"))


def test_xml_with_a_dtd_is_refused() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE w [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        b'<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&b;</t></is></c></row>'
        b"</sheetData></worksheet>"
    )
    assert "malformed" in refusal(xlsx([bomb]))


# --- row caps on every path -----------------------------------------------------------------------


def test_a_csv_of_two_million_rows_stops_at_the_cap(tmp_path: Path) -> None:
    data = hostile.long_csv(tmp_path / "long.csv", 2_100_000).read_bytes()  # 37 MB
    message = refusal(data, "long.csv")
    assert message == "The file has more than 200,000 data rows; the limit is 200,000."
    with traced() as peak:
        assert "the limit is 20,000" in refusal(data, "long.csv", max_rows=20_000)
    assert peak() < 15  # what 20,000 rows hold; decoding the file whole is 140 MB alone


def test_the_cli_path_has_the_row_cap(tmp_path: Path) -> None:
    from phone_core.ingest import load_upload

    data = hostile.long_csv(tmp_path / "long.csv", 200_001).read_bytes()
    with pytest.raises(FileFormatError, match="more than 200,000 data rows"):
        load_upload(data, "long.csv")


def test_xlsx_row_cap_stops_reading() -> None:
    # A header row, then 5,000 rows (a first row holding an email is data, not a header).
    rows = (row(n, text_cell(f"A{n}", f"u{n}@x.co" if n > 1 else "Email")) for n in range(1, 5_002))
    data = xlsx(sheet(rows))
    assert read_table(data, "x.xlsx", max_rows=5_000).row_count == 5_000
    assert "limit is 4,999" in refusal(data, max_rows=4_999)


def test_settings_defaults_are_the_reader_defaults() -> None:
    settings = Settings()
    assert settings.upload_max_rows == tables.DEFAULT_MAX_ROWS
    assert settings.upload_max_columns == tables.DEFAULT_MAX_COLUMNS
    assert settings.xlsx_max_uncompressed_bytes == tables.DEFAULT_MAX_UNCOMPRESSED_BYTES
    assert settings.upload_max_columns + 6 <= 16_384


# --- control characters (item 10) -------------------------------------------------------------


def writable(table: Table) -> None:
    """What the enriched exports do with a table must work: openpyxl and csv accept it."""
    workbook = openpyxl.Workbook(write_only=True)
    sheet_ = workbook.create_sheet()
    sheet_.append(table.headers)
    for cells in table.rows:
        sheet_.append(cells)
    workbook.save(io.BytesIO())
    csv.writer(io.StringIO()).writerows([table.headers, *table.rows])


def test_control_characters_are_dropped_from_csv_cells_and_headers() -> None:
    text = (
        'E\x01mail,Na\x7fme,Notes\na@b.co,Ann\x01ie,"line 1\nline\t2"\n'
        "c@d.co,\x1b[31mCy\x1b[0m,x\x0by\x0cz\x85\ufffe\n"
    )
    clean = "".join(f"u{n}@x.co,Name {n},\n" for n in range(200))  # a few bad cells in a list
    table = read_table((text + clean).encode(), "dirty.csv")
    assert table.headers == ["Email", "Name", "Notes"]
    assert table.rows[:2] == [
        ["a@b.co", "Annie", "line 1\nline\t2"],
        ["c@d.co", "[31mCy[0m", "x y z"],
    ]
    writable(table)


def test_nul_in_a_csv_is_refused_as_binary() -> None:
    assert "binary" in refusal(b"Email,Name\na@b.co,Ann\x00ie\n", "x.csv")
    late = b"Email,Name\n" + b"a@b.co,Ann\n" * 20_000 + b"c@d.co,C\x00y\n"
    assert "binary" in refusal(late.decode().encode("utf-16"), "x.csv")


def test_control_characters_escaped_in_xlsx_are_dropped() -> None:
    """OOXML writes control characters as _xHHHH_; decoded, then dropped like in a CSV."""
    rows = [
        row(1, text_cell("A1", "E_x0001_mail"), text_cell("B1", "Name"), text_cell("C1", "S")),
        row(
            2,
            text_cell("A2", "a@b.co"),
            text_cell("B2", "_x001B_[31mAnn_x0000_ie"),
            b'<c r="C2" t="s"><v>0</v></c>',
        ),
        row(3, text_cell("A3", "c@d.co"), text_cell("B3", "x_x005F_x0001_y_xD800_z")),
    ]
    data = xlsx(sheet(rows), shared_strings=["s_x0007_hared\x85", "unused"])
    table = read_table(data, "dirty.xlsx")
    assert table.headers == ["Email", "Name", "S"]
    assert table.rows == [["a@b.co", "[31mAnnie", "shared"], ["c@d.co", "x_x0001_yz", ""]]
    writable(table)


def test_a_raw_control_character_in_sheet_xml_is_a_clear_error() -> None:
    rows = [row(1, text_cell("A1", "Email")), row(2, b'<c r="A2" t="str"><v>a\x01b</v></c>')]
    assert "could not be read as an Excel workbook" in refusal(xlsx(sheet(rows)))
