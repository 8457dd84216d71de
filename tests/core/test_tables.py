"""read_table: CSV encodings and delimiters, XLSX, header clean-up and every user-facing error."""

from __future__ import annotations

import codecs
import datetime as dt
import io
import zipfile
from collections.abc import Sequence

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phone_core.errors import FileFormatError, InputError
from phone_core.tables import Table, detect_delimiter, find_header, read_table

ROWS = [["Jane", "Doe", "Acme"], ["John", "Roe", "Beta"]]


def csv_bytes(delimiter: str = ",", encoding: str = "utf-8", newline: str = "\n") -> bytes:
    lines = [delimiter.join(["First Name", "Last Name", "Company"])]
    lines += [delimiter.join(row) for row in ROWS]
    return (newline.join(lines) + newline).encode(encoding)


def xlsx_bytes(*sheets: Sequence[Sequence[object]]) -> bytes:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for index, rows in enumerate(sheets):
        sheet = workbook.create_sheet(f"Sheet{index + 1}")
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def format_error(data: bytes, filename: str = "leads.csv", **kwargs: int) -> str:
    """The message of the FileFormatError that reading ``data`` must raise."""
    with pytest.raises(FileFormatError) as info:
        read_table(data, filename, **kwargs)
    message = str(info.value)
    assert message and "\n" not in message
    return message


# --- CSV: delimiters and encodings -------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_each_delimiter_is_detected(delimiter: str) -> None:
    table = read_table(csv_bytes(delimiter), "leads.csv")
    assert table.delimiter == delimiter
    assert table.headers == ["First Name", "Last Name", "Company"]
    assert table.rows == ROWS
    assert table.row_count == 2


def test_semicolon_file_with_commas_in_values() -> None:
    data = "Name;Company;City\nSmith, John;Acme, Inc;Paris\nRoe, Jane;Beta, LLC;Lyon\n"
    table = read_table(data.encode(), "export.csv")
    assert table.delimiter == ";"
    assert table.rows[0] == ["Smith, John", "Acme, Inc", "Paris"]


def test_comma_file_with_quoted_semicolons_and_tabs() -> None:
    data = 'a,b,c\n"x;y;z","p\tq",1\n"u;v;w","r\ts",2\n'
    table = read_table(data.encode(), "x.csv")
    assert table.delimiter == ","
    assert table.rows == [["x;y;z", "p\tq", "1"], ["u;v;w", "r\ts", "2"]]


def test_single_column_file() -> None:
    table = read_table(b"Email\njane@acme.com\njohn@beta.io\n", "emails.txt")
    assert table.headers == ["Email"]
    assert table.rows == [["jane@acme.com"], ["john@beta.io"]]


def test_detect_delimiter_prefers_the_consistent_one() -> None:
    assert detect_delimiter("a|b|c\n1|2,5|3\n4|5|6,7\n") == "|"
    assert detect_delimiter("no delimiters here\nat all\n") == ","


def test_utf8() -> None:
    table = read_table("Prénom,Nom\nJosé,Núñez\n".encode(), "x.csv")
    assert table.encoding == "utf-8"
    assert table.rows == [["José", "Núñez"]]


def test_utf8_bom_is_not_part_of_the_first_header() -> None:
    table = read_table(codecs.BOM_UTF8 + "Email,Name\na@b.co,Zoë\n".encode(), "x.csv")
    assert table.encoding == "utf-8-sig"
    assert table.headers == ["Email", "Name"]
    assert table.rows == [["a@b.co", "Zoë"]]


def test_latin1() -> None:
    data = "Name;Firma\nMüller;Société\nGroß;Ærø\n".encode("latin-1")
    table = read_table(data, "x.csv")
    assert table.delimiter == ";"
    assert table.rows == [["Müller", "Société"], ["Groß", "Ærø"]]
    assert table.encoding in ("cp1252", "iso8859-1")


def test_cp1252_specific_characters() -> None:
    data = "Company,Note\nCafé “Chez Zoë”,€ 5 – ok\n".encode("cp1252")
    table = read_table(data, "x.csv")
    assert table.rows == [["Café “Chez Zoë”", "€ 5 – ok"]]
    assert table.encoding == "cp1252"


def test_non_utf8_bytes_late_in_a_large_file() -> None:
    lines = ["id,name"] + [f"{i},plain ascii {i}" for i in range(5000)] + ["5000,Müller"]
    table = read_table("\n".join(lines).encode("cp1252"), "x.csv")
    assert table.rows[-1] == ["5000", "Müller"]


def test_cyrillic_code_page() -> None:
    text = "Имя;Фамилия;Компания\n" + "Иван;Петров;Рога и копыта\nМария;Смирнова;Газпром\n" * 5
    table = read_table(text.encode("cp1251"), "x.csv")
    assert table.headers == ["Имя", "Фамилия", "Компания"]
    assert table.rows[0] == ["Иван", "Петров", "Рога и копыта"]


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_with_bom(codec: str) -> None:
    bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}.get(codec, b"")
    data = bom + "Name\tFirma\nMüller\tSociété\n".encode(codec)
    table = read_table(data, "export.txt")
    assert table.encoding == "utf-16"
    assert table.delimiter == "\t"
    assert table.rows == [["Müller", "Société"]]


def test_utf16_without_bom() -> None:
    table = read_table("Name,Firma\nMüller,Société\n".encode("utf-16-le"), "x.csv")
    assert table.rows == [["Müller", "Société"]]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_line_endings(newline: str) -> None:
    assert read_table(csv_bytes(newline=newline), "x.csv").rows == ROWS


# --- CSV: structure ----------------------------------------------------------------------------


def test_quoted_fields_with_delimiters_newlines_and_quotes() -> None:
    data = (
        'Name,Company,Notes\r\n"Doe, Jane","Acme; Inc","line one\r\nline two"\r\n'
        '"Roe, John","Beta ""The Best""",\r\n'
    )
    table = read_table(data.encode(), "x.csv")
    assert table.rows == [
        ["Doe, Jane", "Acme; Inc", "line one\r\nline two"],
        ["Roe, John", 'Beta "The Best"', ""],
    ]


def test_space_after_delimiter_before_quote() -> None:
    table = read_table(b'a, b\n1, "x, y"\n', "x.csv")
    assert table.rows == [["1", "x, y"]]


def test_cells_are_stripped_and_empty_rows_skipped() -> None:
    data = b"\n\n  Name , Email \n\n  Jane  ,  jane@acme.com \n,\n ; \n\xc2\xa0Bob\xc2\xa0,\n"
    table = read_table(data, "x.csv")
    assert table.headers == ["Name", "Email"]
    assert table.rows == [["Jane", "jane@acme.com"], [";", ""], ["Bob", ""]]


def test_blank_and_duplicate_headers_are_renamed() -> None:
    data = b"Email,,Email,Name,Email,column_2\na@b.co,x,c@d.co,Jane,e@f.co,y\n"
    table = read_table(data, "x.csv")
    assert table.headers == ["Email", "column_2_2", "Email (2)", "Name", "Email (3)", "column_2"]
    assert len(set(table.headers)) == len(table.headers)


def test_blank_header_columns_without_data_are_dropped() -> None:
    data = b"Name,,Email,\nJane,,jane@acme.com,\nJohn,,john@beta.io\n"
    table = read_table(data, "x.csv")
    assert table.headers == ["Name", "Email"]
    assert table.rows == [["Jane", "jane@acme.com"], ["John", "john@beta.io"]]


def test_ragged_rows_are_padded_or_truncated() -> None:
    data = b"a,b,c\n1\n1,2,3,4,5\n1,2\n"
    table = read_table(data, "x.csv")
    assert table.rows == [["1", "", ""], ["1", "2", "3"], ["1", "2", ""]]
    assert all(len(row) == len(table.headers) for row in table.rows)


def test_header_whitespace_is_collapsed() -> None:
    table = read_table(b'"First\nName",Last  Name\nJane,Doe\n', "x.csv")
    assert table.headers == ["First Name", "Last Name"]


def test_tsv_with_xls_extension_is_read() -> None:
    assert read_table(csv_bytes("\t"), "report.xls").rows == ROWS


def test_text_file_named_xlsx_is_read_as_csv() -> None:
    assert read_table(csv_bytes(";"), "leads.xlsx").rows == ROWS


def test_table_column_and_defaults() -> None:
    table = Table(headers=["a", "b"], rows=[["1", "2"], ["3", "4"]])
    assert table.column("b") == ["2", "4"]
    assert (table.encoding, table.delimiter, table.row_count) == ("utf-8", ",", 2)
    with pytest.raises(KeyError):
        table.column("c")


# --- XLSX ----------------------------------------------------------------------------------------


def test_xlsx_values_are_rendered_as_text() -> None:
    data = xlsx_bytes(
        [
            [None, None],
            ["Phone", "Count", "Score", "Joined", "Seen", "Active", "Name", None],
            [
                *(15551234567.0, 42, 0.25, dt.datetime(2024, 1, 15)),
                *(dt.datetime(2024, 1, 15, 9, 30), True, "  Jane  ", None),
            ],
            [None, None, None],
            [4.0, 1e20, 1 / 3, dt.date(2023, 12, 31), None, False, "John", None],
        ]
    )
    table = read_table(data, "leads.xlsx")
    assert (table.encoding, table.delimiter) == ("", "")
    assert table.headers == ["Phone", "Count", "Score", "Joined", "Seen", "Active", "Name"]
    assert table.rows == [
        ["15551234567", "42", "0.25", "2024-01-15", "2024-01-15T09:30:00", "TRUE", "Jane"],
        ["4", "100000000000000000000", "0.333333333333333", "2023-12-31", "", "FALSE", "John"],
    ]


def test_xlsx_detected_by_magic_whatever_the_name() -> None:
    data = xlsx_bytes([["Email"], ["a@b.co"]])
    assert read_table(data, "upload").rows == [["a@b.co"]]
    assert read_table(data, "leads.csv").headers == ["Email"]


def test_xlsx_first_non_empty_sheet_is_used() -> None:
    data = xlsx_bytes([], [["Email", "Email", None], ["a@b.co", "c@d.co", "x"]])
    table = read_table(data, "leads.xlsm")
    assert table.headers == ["Email", "Email (2)", "column_3"]
    assert table.rows == [["a@b.co", "c@d.co", "x"]]


def test_xlsx_header_only_and_empty() -> None:
    assert "no data rows" in format_error(xlsx_bytes([["Email", "Name"]]), "x.xlsx")
    assert "empty" in format_error(xlsx_bytes([]), "x.xlsx")


def test_xlsx_max_rows() -> None:
    data = xlsx_bytes([["Email"], *([f"u{i}@x.co"] for i in range(10))])
    assert read_table(data, "x.xlsx", max_rows=10).row_count == 10
    assert "limit is 5" in format_error(data, "x.xlsx", max_rows=5)


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"   \r\n\n\t ", codecs.BOM_UTF8, b",,,\n , ,\n"])
def test_empty_file(data: bytes) -> None:
    assert "empty" in format_error(data).lower()


def test_header_only() -> None:
    message = format_error(b"First Name,Last Name,Email\n\n,,\n")
    assert message == "The file has a header row but no data rows."


def test_too_many_bytes() -> None:
    message = format_error(b"a,b\n" + b"1,2\n" * 700_000, max_bytes=1024 * 1024)
    assert message == "The file is 2.7 MB; the limit is 1 MB."
    assert format_error(b"a\n" + b"1\n" * 30_000, max_bytes=50_000) == (
        "The file is 59 KB; the limit is 49 KB."
    )


def test_too_many_rows() -> None:
    data = b"a\n" + b"1\n" * 1001
    assert read_table(data, "x.csv", max_rows=1001).row_count == 1001
    message = format_error(data, max_rows=1000)
    assert message == "The file has more than 1,000 data rows; the limit is 1,000."


def test_binary_with_nul_bytes() -> None:
    message = format_error(b"name,email\x00\x01\x02\x00\xff\xfe\x00garbage" * 20)
    assert "binary" in message and ".csv or .xlsx" in message


def test_control_characters_are_binary() -> None:
    assert "binary" in format_error(bytes(range(1, 32)) * 50)


def test_png() -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(100)
    assert "image" in format_error(png, "leads.png")


def test_pdf() -> None:
    assert "PDF" in format_error(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "leads.pdf")


def test_legacy_xls() -> None:
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600)
    message = format_error(ole, "leads.xls")
    assert ".xls" in message and "save it as .xlsx or .csv" in message


def test_password_protected_xlsx() -> None:
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600)
    assert "password" in format_error(ole, "leads.xlsx")


def test_html_disguised_as_xls() -> None:
    html = b"<html><body><table><tr><td>Name</td></tr></table></body></html>"
    assert "web page" in format_error(html, "report.xls")


def test_corrupt_zip() -> None:
    message = format_error(b"PK\x03\x04" + b"\x00garbage" * 50, "leads.xlsx")
    assert "Excel" in message and ".xlsx or .csv" in message


def test_zip_that_is_not_a_workbook() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    assert "Excel" in format_error(buffer.getvalue(), "letter.docx")


def test_unclosed_quote_with_huge_cell() -> None:
    data = b'name,notes\nJane,"never closed\n' + b"x" * 200_000 + b"\n"
    assert "quote" in format_error(data)


def test_bad_utf16_after_bom() -> None:
    message = format_error(codecs.BOM_UTF16_LE + b"a\x00b")
    assert "damaged" in message and "UTF" not in message  # no encoding names (issue 10)


def test_errors_are_input_errors() -> None:
    with pytest.raises(InputError):
        read_table(b"", "x.csv")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.one_of(
        st.binary(max_size=2000),
        st.binary(max_size=500).map(lambda b: b"PK\x03\x04" + b),
        st.binary(max_size=500).map(lambda b: codecs.BOM_UTF16_LE + b),
        st.text(alphabet=st.sampled_from(list('ab,;\t|"\r\n \x00é€')), max_size=300).map(
            lambda t: t.encode("utf-8")
        ),
    ),
    filename=st.sampled_from(["x.csv", "x.xlsx", "x.xls", "x.txt", "noext"]),
    max_rows=st.none() | st.integers(0, 5),
)
def test_random_bytes_only_ever_raise_file_format_error(
    data: bytes, filename: str, max_rows: int | None
) -> None:
    try:
        table = read_table(data, filename, max_rows=max_rows, max_bytes=10_000)
    except FileFormatError as exc:
        assert str(exc)
    else:
        assert table.rows and table.headers
        assert all(table.headers) and len(set(table.headers)) == len(table.headers)
        assert all(len(row) == len(table.headers) for row in table.rows)
        assert all(cell == cell.strip() for row in table.rows for cell in row)


# --- XLSX as other exporters write it (the reader streams the XML itself) ----------------------


def test_xlsx_with_prefixed_elements_and_no_cell_references() -> None:
    from tests.security.hostile import xlsx

    ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    sheet = (
        f'<x:worksheet xmlns:x="{ns}"><x:sheetData>'
        '<x:row><x:c t="inlineStr"><x:is><x:t>Email</x:t></x:is></x:c>'
        '<x:c t="inlineStr"><x:is><x:t>Count</x:t></x:is></x:c></x:row>'
        '<x:row><x:c t="inlineStr"><x:is><x:t>a@b.co</x:t></x:is></x:c><x:c><x:v>7</x:v></x:c>'
        "</x:row></x:sheetData></x:worksheet>"
    )
    table = read_table(xlsx([sheet.encode()]), "dotnet.xlsx")
    assert table.headers == ["Email", "Count"]
    assert table.rows == [["a@b.co", "7"]]


def test_xlsx_rich_text_phonetic_guides_and_escapes() -> None:
    from tests.security.hostile import row, sheet, xlsx

    strings = [
        "Name",
        "<si><r><t>Ri</t></r><r><rPr><b/></rPr><t>ch</t></r></si>",
        "<si><t>東京</t><rPh sb='0' eb='2'><t>トウキョウ</t></rPh></si>",
        "<si><t>a_x005F_x0041_b_x0041_</t></si>",
    ]
    cells = [b'<c r="A%d" t="s"><v>%d</v></c>' % (n + 1, n) for n in range(4)]
    data = xlsx(sheet(row(n + 1, cell) for n, cell in enumerate(cells)), shared_strings=strings)
    assert read_table(data, "x.xlsx").rows == [["Rich"], ["東京"], ["a_x0041_bA"]]


def test_xlsx_1904_dates() -> None:
    workbook = openpyxl.Workbook()
    workbook.epoch = openpyxl.utils.datetime.CALENDAR_MAC_1904
    workbook.active.append(["Joined"])
    workbook.active.append([dt.datetime(2024, 1, 15)])
    buffer = io.BytesIO()
    workbook.save(buffer)
    assert read_table(buffer.getvalue(), "mac.xlsx").rows == [["2024-01-15"]]


def test_xlsx_phone_number_formatted_as_a_date_keeps_its_digits() -> None:
    workbook = openpyxl.Workbook()
    workbook.active.append(["Phone"])
    workbook.active.append([15551234567])
    workbook.active["A2"].number_format = "yyyy-mm-dd"
    buffer = io.BytesIO()
    workbook.save(buffer)
    assert read_table(buffer.getvalue(), "x.xlsx").rows == [["15551234567"]]


# --- which row is the header ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "header"),
    [
        ([["Email"], ["a@b.co"]], 0),
        ([["Leads"], ["First Name", "Last Name", "Company"], ["Ann", "Lee", "Acme"]], 1),
        ([["Leads"], ["x", "y", "z"], ["Ann", "Lee", "Acme"]], 1),  # the shape of a header
        ([["a", "b", "c"], ["Name", "Email", "Company"]], 0),  # a wide row above: not a title
        ([["Total", "3"], ["Name", "Email", "Company"], ["Ann", "a@b.co", "Acme"]], 1),
        ([["Ann", "a@b.co"], ["Bob", "b@c.co"]], None),  # an email in the first row: no header
        ([["2024", "2025"], ["1", "2"]], 0),  # nothing qualifies: the first row
        ([["Leads"], ["Phone", "Phone", "Email"], ["1", "2", "a@b.co"]], 1),  # repeated names
    ],
)
def test_find_header(rows: list[list[str]], header: int | None) -> None:
    assert find_header(rows) == header


def test_xlsx_header_row_is_excel_s_row_number() -> None:
    data = xlsx_bytes([["Lead list"], [None], [None], ["Email", "Name"], ["a@b.co", "Ann"]])
    table = read_table(data, "l.xlsx")
    assert (table.headers, table.header_row, table.rows_above) == (["Email", "Name"], 4, 1)
    assert (table.sheets, table.sheet) == (("Sheet1",), "Sheet1")
