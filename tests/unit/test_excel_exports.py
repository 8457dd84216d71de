"""The exports for Excel (issue 10, defect 10): the Excel-friendly CSV (BOM, CRLF, the
upload's own delimiter, values Excel would mangle kept as text, formulas neutralised) and
the XLSX with numbers as numbers, phones as text."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from phone_core import outputs
from phone_core.models import (
    ENRICHED_EXCEL_CSV_FILE,
    OUTPUT_FILES,
    Person,
    RecordOutcome,
    RecordStatus,
)
from phone_core.outputs import ExportContext

PHONE = "+447400125881"


def _outcome(row: dict[str, str], idx: int = 0, phone: str = PHONE) -> RecordOutcome:
    return RecordOutcome(
        idx=idx,
        person=Person(id=f"r{idx}", first_name="Ann", last_name="Lee", company_url="a.com"),
        status=RecordStatus.FOUND if phone else RecordStatus.NOT_FOUND,
        source="directory",
        phone=phone,
        credits_charged=1 if phone else 0,
        source_row=row,
    )


ROW = {"Name": "Zoë Müller", "Customer": "00123", "Employees": "250", "Score": "3.5"}


def _excel_rows(data: bytes, delimiter: str, *, crlf_only: bool = True) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 with a BOM
    text = data[3:].decode("utf-8")
    assert text.endswith("\r\n")
    if crlf_only:  # no line break inside a cell: every one is a CRLF
        assert "\n" not in text.replace("\r\n", "")
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def _sheet(data: bytes) -> list[list[object]]:
    ws = load_workbook(io.BytesIO(data)).active
    assert ws is not None
    return [list(r) for r in ws.iter_rows(values_only=True)]


def test_the_excel_csv_is_offered_beside_the_others() -> None:
    spec = OUTPUT_FILES["enriched-excel.csv"]
    assert spec is ENRICHED_EXCEL_CSV_FILE and not spec.contract
    assert spec.label == "Excel-friendly CSV" and spec.mime == "text/csv"
    assert "language other than English" in spec.description
    assert outputs.EXPORT_BUILDERS[spec.name] is outputs.enriched_excel_csv


@pytest.mark.parametrize(
    ("uploaded", "written"),
    [
        (";", ";"),  # a semicolon CSV (Excel in Germany, France, ...)
        ("\t", "\t"),  # a TSV
        (",", ","),
        ("|", ","),  # Excel splits at no locale's pipe
        (None, ","),  # an XLSX upload or an API batch
    ],
)
def test_the_excel_csv_uses_the_uploads_delimiter(uploaded: str | None, written: str) -> None:
    data = outputs.enriched_excel_csv([_outcome(ROW)], ExportContext(uploaded))
    rows = _excel_rows(data, written)
    assert rows[0][:4] == ["Name", "Customer", "Employees", "Score"]
    assert rows[0][4] == "phone_e164" and len(rows[0]) == len(rows[1]) == 12
    assert rows[1][0] == "Zoë Müller"  # no mojibake: the BOM tells Excel it is UTF-8


def test_values_excel_would_mangle_are_written_as_text() -> None:
    row = {
        "Mobile": "+4915112345678",
        "Customer": "00123",
        "Account": "12345678901234567890",  # 20 digits: Excel keeps 15
        "Ref": "123456789012",  # 12 digits: shown as 1.23457E+11
        "Employees": "250",
        "Score": "-3.5",
        "Zero": "0",
    }
    rows = _excel_rows(outputs.enriched_excel_csv([_outcome(row)], ExportContext(";")), ";")
    got = dict(zip(rows[0], rows[1], strict=True))
    assert got["phone_e164"] == f'="{PHONE}"'
    assert got["Mobile"] == '="+4915112345678"'
    assert got["Customer"] == '="00123"'
    assert got["Account"] == '="12345678901234567890"'
    assert got["Ref"] == '="123456789012"'
    # numbers Excel reads right stay numbers
    assert (got["Employees"], got["Score"], got["Zero"], got["credits_charged"]) == (
        "250",
        "-3.5",
        "0",
        "1",
    )


def test_the_plain_enriched_csv_is_unchanged_by_the_context() -> None:
    items = [_outcome(ROW)]
    plain = outputs.enriched_csv(items)
    assert outputs.enriched_csv(items, ExportContext(";")) == plain
    assert plain.startswith(b"Name,Customer,") and b"\r\n" not in plain
    assert f",{PHONE},".encode() in plain and b"00123" in plain and b'="' not in plain


def test_formulas_stay_neutralised_in_the_excel_csv() -> None:
    evil = '=HYPERLINK("http://evil.example","Session expired")'
    row = {
        evil: "=1+2",
        "@SUM(A1)": '="+4474"',  # a formula that looks like our own text idiom
        "Name": "-x",
        "Tab": "\t=cmd",
        "Spaced": "+44 7400 125881",
        "Long": "+" + "1" * 300,  # too long for a formula's text: as is (a number)
        "Sum": "-1+2",
        "Minus": "-3.5",
        "Newline": "+4474\n=cmd",
        "Quote": '0123"&"x',
    }
    data = outputs.enriched_excel_csv([_outcome(row)], ExportContext(";"))
    rows = _excel_rows(data, ";", crlf_only=False)
    assert rows[0][0] == "'" + evil and rows[0][1] == "'@SUM(A1)"
    assert rows[1][:5] == ["'=1+2", '\'="+4474"', "'-x", "'\t=cmd", "'+44 7400 125881"]
    assert rows[1][5:8] == ["+" + "1" * 300, "'-1+2", "-3.5"]
    assert rows[1][8:10] == ["'+4474\n=cmd", '0123"&"x']  # only digits get ="..."
    # the only formulas written are ="<digits>" built here
    formulas = [c for r in rows for c in r if c.startswith("=")]
    assert formulas == [f'="{PHONE}"']


def test_xlsx_numbers_are_numbers_and_phones_and_ids_are_text() -> None:
    items = [
        _outcome(
            {
                "Name": "Ann",
                "Employees": "250",
                "Revenue": "1234.50",
                "Customer": "00123",
                "Phone": "2125550100",  # a phone column, even without a '+'
                "Big": "123456789012",
                "Postcode": "10115",
                "Mixed": "7",
                "Formula": "=1+2",
            }
        ),
        _outcome(
            {
                "Name": "Bob",
                "Employees": "n/a",
                "Revenue": "-0.5",
                "Customer": "77",  # the column has an ID with a leading zero: text
                "Phone": "2125550101",
                "Big": "5",
                "Postcode": "20095",
                "Mixed": "+4474",  # a phone in the column: the column stays text
                "Formula": "-7",
            },
            idx=1,
            phone="",
        ),
    ]
    header, ann, bob = _sheet(outputs.enriched_xlsx(items))
    ann_by = dict(zip(header, ann, strict=True))
    bob_by = dict(zip(header, bob, strict=True))
    assert ann_by["Employees"] == 250 and isinstance(ann_by["Employees"], int)
    assert ann_by["Revenue"] == 1234.5 and bob_by["Revenue"] == -0.5
    assert bob_by["Employees"] == "n/a"
    assert (ann_by["Customer"], bob_by["Customer"]) == ("00123", "77")
    assert (ann_by["Phone"], ann_by["Postcode"]) == ("2125550100", "10115")
    assert (ann_by["Big"], bob_by["Big"]) == ("123456789012", "5")
    assert (ann_by["Mixed"], bob_by["Mixed"]) == ("7", "+4474")
    assert (ann_by["Formula"], bob_by["Formula"]) == ("'=1+2", -7)
    assert ann_by["phone_e164"] == PHONE and isinstance(ann_by["phone_e164"], str)
    assert (ann_by["credits_charged"], bob_by["credits_charged"]) == (1, 0)
    assert bob_by["phone_e164"] is None  # an empty cell stays empty


def test_xlsx_reads_the_cell_types_back() -> None:
    data = outputs.enriched_xlsx([_outcome({"Employees": "250", "Tel": "+4474"})])
    ws = load_workbook(io.BytesIO(data)).active
    assert ws is not None
    types = {ws.cell(1, c).value: ws.cell(2, c).data_type for c in range(1, ws.max_column + 1)}
    assert types["Employees"] == "n" and types["credits_charged"] == "n"
    assert types["Tel"] == "s" and types["phone_e164"] == "s"


@pytest.mark.parametrize(
    ("value", "number"),
    [
        ("250", 250),
        ("0", 0),
        ("-12", -12),
        ("3.25", Decimal("3.25")),
        ("99999999999", 99_999_999_999),  # 11 digits: Excel shows it whole
        ("123456789012", None),  # 12: scientific in Excel's General format
        ("1234567890.123456", None),  # 16 digits: past Excel's precision
        ("0123", None),
        ("+12", None),
        ("1e5", None),
        ("1,5", None),
        ("١٢", None),  # digits of another script
        ("", None),
    ],
)
def test_what_counts_as_a_plain_number(value: str, number: int | Decimal | None) -> None:
    assert outputs._number(value) == number
