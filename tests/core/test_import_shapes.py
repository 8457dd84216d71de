"""Harder files (issue 10, item 2): files made in the shapes CRM and Excel exports take, read
and mapped end to end (``ingest``), with the exact mapping and rows each must give."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

import openpyxl
import pytest

from phone_core import ingest
from phone_core.errors import FileFormatError
from phone_core.mapping import DIRECTORY_TARGETS, PERSON_KEYS, suggest_mapping
from phone_core.models import ColumnRow, Confidence
from phone_core.settings import Settings
from phone_core.tables import read_table

SETTINGS = Settings(_env_file=None)  # type: ignore[call-arg]

HEADER = ["First Name", "Last Name", "Company", "Email", "Website"]
PEOPLE = [
    ["Ann", "Lee", "Acme Corp", "ann@acme.com", "acme.com"],
    ["Bob", "Ray", "Globex GmbH", "bob@globex.de", "https://www.globex.de"],
    ["Cleo", "Diaz", "Initech LLC", "", "initech.com"],
]
MAPPED = {
    "first_name": "First Name",
    "last_name": "Last Name",
    "company_name": "Company",
    "email": "Email",
    "company_url": "Website",
}


def csv_of(lines: Sequence[Sequence[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(lines)
    return out.getvalue().encode()


def workbook(sheets: dict[str, Sequence[Sequence[object]]], hidden: Sequence[str] = ()) -> bytes:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(list(row))
        if name in hidden:
            sheet.sheet_state = "hidden"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def person(**fields: str) -> dict[str, str]:
    return {key: fields.get(key, "") for key in PERSON_KEYS}


def upload(data: bytes, name: str, sheet: str | None = None) -> ingest.Upload:
    """What the CLI and the web app both get: read, suggested mapping, rows, warnings."""
    parsed = ingest.read(name, data, SETTINGS, sheet=sheet)
    via_cli = ingest.load_upload(data, name, settings=SETTINGS, sheet=sheet)
    mapping = suggest_mapping(parsed.table)
    assert via_cli.mapping == mapping
    built = ingest.build_upload(parsed.table, mapping)
    assert via_cli.rows == built.rows and via_cli.warnings == built.warnings
    return built


def mapped(mapping: dict[str, str | None]) -> dict[str, str]:
    return {field: column for field, column in mapping.items() if column}


PEOPLE_ROWS = [
    person(
        first_name="Ann",
        last_name="Lee",
        company_name="Acme Corp",
        email="ann@acme.com",
        company_url="acme.com",
    ),
    person(
        first_name="Bob",
        last_name="Ray",
        company_name="Globex GmbH",
        email="bob@globex.de",
        company_url="https://www.globex.de",
    ),
    person(
        first_name="Cleo", last_name="Diaz", company_name="Initech LLC", company_url="initech.com"
    ),
]


# --- a header row that is not the first line ------------------------------------------------------


def test_csv_with_a_title_and_date_above_the_header() -> None:
    data = csv_of([["Leads export"], ["Generated 2026-11-30 by HubSpot"], [], HEADER, *PEOPLE])
    up = upload(data, "leads.csv")
    assert up.table.headers == HEADER
    assert up.table.rows == PEOPLE
    assert (up.table.header_row, up.table.rows_above) == (4, 2)
    assert mapped(up.mapping) == MAPPED
    assert up.rows == PEOPLE_ROWS
    assert up.warnings == [
        "Row 4 was taken as the header row (the column names); the 2 rows above it (a title "
        "or notes) were left out."
    ]


def test_xlsx_salesforce_style_report_with_filters_above_the_header() -> None:
    data = workbook(
        {
            "Report": [
                ["Open leads by owner"],
                [None],
                ["Filtered By:", "Lead Status equals Open"],
                ["Generated", "2026-11-30 09:14"],
                [None],
                HEADER,
                *PEOPLE,
            ]
        }
    )
    up = upload(data, "report.xlsx")
    assert up.table.headers == HEADER and up.table.rows == PEOPLE
    assert (up.table.header_row, up.table.rows_above) == (6, 3)  # Excel's row number
    assert mapped(up.mapping) == MAPPED
    assert up.rows == PEOPLE_ROWS
    assert up.warnings[0].startswith("Row 6 was taken as the header row")


def test_a_preamble_above_generic_headers() -> None:
    data = csv_of([["Prospects (Q4)"], [], ["A", "B", "C"], *[row[:3] for row in PEOPLE]])
    table = ingest.read("p.csv", data, SETTINGS).table
    assert table.headers == ["A", "B", "C"]
    assert (table.header_row, table.rows_above) == (3, 1)


def test_a_key_value_preamble_narrower_than_the_table() -> None:
    data = csv_of([["Report", "Leads"], ["Owner", "Dana"], HEADER[:3], *[p[:3] for p in PEOPLE]])
    table = read_table(data, "l.csv")
    assert table.headers == HEADER[:3]
    assert table.rows == [p[:3] for p in PEOPLE]
    assert (table.header_row, table.rows_above) == (3, 2)


@pytest.mark.parametrize(
    "lines",
    [
        [HEADER, *PEOPLE],  # the ordinary file
        [[], [], HEADER, *PEOPLE],  # blank lines above the header: nothing left out
        [["a", "b", "c", "d", "e"], *PEOPLE],  # odd column names are still the header
        [["Name", "Email"], ["Ann Lee", "ann@acme.com", "x", "y", "z"]],  # data wider than it
    ],
)
def test_a_first_row_header_stays_the_header(lines: list[list[str]]) -> None:
    table = read_table(csv_of(lines), "l.csv")
    header = next(line for line in lines if line)
    assert table.headers[: len(header)] == header
    assert table.rows_above == 0 and ingest.reading_notes(table) == []
    assert table.header_row == lines.index(header) + 1


def test_a_first_row_with_an_email_or_a_link_is_data_not_a_header() -> None:
    table = read_table(csv_of(PEOPLE), "l.csv")
    assert table.headers == ["column_1", "column_2", "column_3", "column_4", "column_5"]
    assert table.rows == PEOPLE
    assert (table.header_row, table.rows_above) == (0, 0)
    assert ingest.reading_notes(table) == [
        "The file has no header row (its first row holds an email address or a link), so its "
        "columns are named column_1, column_2, ...: choose what each one holds."
    ]
    up = upload(csv_of(PEOPLE), "l.csv")
    assert mapped(up.mapping) == {
        "company_name": "column_3",
        "email": "column_4",
        "company_url": "column_5",
    }


def test_a_first_row_of_plain_names_is_still_the_header() -> None:
    rows = [row[:3] for row in PEOPLE]  # cannot be told from column names
    table = read_table(csv_of(rows), "l.csv")
    assert table.headers == rows[0] and table.rows == rows[1:]


def test_the_header_is_only_looked_for_in_the_first_rows() -> None:
    lines = [[f"note {i}"] for i in range(25)] + [HEADER, *PEOPLE]
    table = read_table(csv_of(lines), "l.csv")
    assert table.headers == ["note 0"] and table.rows_above == 0  # as before: the first row


# --- several sheets in one workbook ----------------------------------------------------------

SHEETS = {
    "Cover": [["Lead list"], ["Prepared for the sales team"], ["Confidential"]],
    "Empty": [],
    "Leads": [HEADER, *PEOPLE],
    "Notes": [["Who", "Note"], ["Ann", "call Monday"]],
}


def test_the_first_sheet_with_a_table_is_read_and_every_sheet_listed() -> None:
    up = upload(workbook(SHEETS), "book.xlsx")
    assert up.table.sheets == ("Cover", "Empty", "Leads", "Notes")
    assert up.table.sheet == "Leads"
    assert up.table.rows == PEOPLE and mapped(up.mapping) == MAPPED
    assert up.rows == PEOPLE_ROWS
    assert up.warnings == [
        'Read the sheet "Leads" of this workbook; it also has "Cover", "Empty", "Notes". '
        "Choose another sheet if the list is there."
    ]
    parsed = ingest.read("book.xlsx", workbook(SHEETS), SETTINGS)
    assert parsed.sheets == ("Cover", "Empty", "Leads", "Notes")


def test_a_sheet_is_chosen_by_name() -> None:
    data = workbook(SHEETS)
    notes = ingest.read("book.xlsx", data, SETTINGS, sheet="Notes")
    assert notes.table.sheet == "Notes" and notes.table.headers == ["Who", "Note"]
    assert ingest.read("book.xlsx", data, SETTINGS, sheet=" notes ").table.sheet == "Notes"
    assert ingest.read("book.xlsx", data, SETTINGS).table.sheet == "Leads"  # cached apart
    with pytest.raises(FileFormatError, match=r'no sheet called "Deals"\. Its sheets are: "Cover"'):
        ingest.read("book.xlsx", data, SETTINGS, sheet="Deals")
    with pytest.raises(FileFormatError, match="empty"):
        read_table(data, "book.xlsx", sheet="Empty")
    with pytest.raises(FileFormatError, match="Only an Excel workbook has sheets"):
        read_table(csv_of([HEADER, *PEOPLE]), "l.csv", sheet="Leads")


def test_hidden_sheets_are_not_listed_nor_read_by_default() -> None:
    data = workbook({"Lookup": [["Code", "Label"], ["a", "b"]], **SHEETS}, hidden=["Lookup"])
    table = read_table(data, "book.xlsx")
    assert table.sheets == ("Cover", "Empty", "Leads", "Notes") and table.sheet == "Leads"
    assert read_table(data, "book.xlsx", sheet="Lookup").headers == ["Code", "Label"]


def test_a_workbook_of_cover_sheets_only_reads_the_first_with_rows() -> None:
    data = workbook({"Empty": [], "Cover": [["Lead list"], ["ann@acme.com"]]})
    table = read_table(data, "book.xlsx")
    assert table.sheet == "Cover" and table.headers == ["Lead list"]


def test_a_preamble_xlsx_with_two_sheets() -> None:
    """The issue's browser path starts from this file: a cover sheet, then a titled report."""
    data = workbook(
        {
            "About": [["Exported from Salesforce"], ["2026-11-30"]],
            "Contacts": [
                ["Contacts - all"],
                [],
                ["Full Name", "Account Name", "Email"],
                ["Dr. Bob Ray", "Globex GmbH", "bob@globex.de"],
                ["Lee, Ann", "Acme Corp", ""],
            ],
        }
    )
    up = upload(data, "contacts.xlsx")
    assert up.table.sheet == "Contacts" and up.table.header_row == 3
    assert mapped(up.mapping) == {
        "full_name": "Full Name",
        "company_name": "Account Name",
        "email": "Email",
    }
    assert up.rows == [
        person(
            first_name="Bob", last_name="Ray", company_name="Globex GmbH", email="bob@globex.de"
        ),
        person(first_name="Ann", last_name="Lee", company_name="Acme Corp"),
    ]
    assert len(up.warnings) == 2


# --- generic headers: the contents decide -------------------------------------------------------

NAMES = ["Ann Lee", "Dr. Bob Ray", "Jane van der Berg", "Mary-Jane O'Neil", "José García"]
COMPANIES = ["Acme Corp", "Globex GmbH", "Initech LLC", "Hooli", "Stark Industries"]
EMAILS = ["ann@acme.com", "bob@globex.de", "jane@initech.com", "", "jose@stark.es"]
LINKEDINS = [
    "https://www.linkedin.com/in/ann-lee",
    "linkedin.com/in/bobray/",
    "https://linkedin.com/in/jane-van-der-berg-12",
    "",
    "https://www.linkedin.com/in/jose-garcia",
]
DOMAINS = ["acme.com", "https://www.globex.de/", "initech.com", "hooli.xyz", "stark.es"]
PHONES = ["+1 415 555 0100", "(415) 555-0101", "+49 30 1234567", "", "+34 91 123 4567"]
TITLES = ["CEO", "VP Sales", "Head of Marketing", "CTO", "Account Executive"]


def generic_file(headers: Sequence[str], columns: Sequence[Sequence[str]]) -> bytes:
    return csv_of([list(headers), *(list(row) for row in zip(*columns, strict=True))])


SPLIT = [
    ("Ann", "Lee"),
    ("Bob", "Ray"),
    ("Jane", "van der Berg"),
    ("Mary-Jane", "O'Neil"),
    ("José", "García"),
]


@pytest.mark.parametrize(
    "headers",
    [
        ["Column 1", "Column 2", "Column 3", "Column 4", "Column 5", "Column 6", "Column 7"],
        ["A", "B", "C", "D", "E", "F", "G"],
        ["Field 1", "Field 2", "Field 3", "Field 4", "Field 5", "Field 6", "Field 7"],
        ["", "", "", "", "", "", ""],
    ],
)
def test_generic_headers_are_mapped_by_their_contents(headers: list[str]) -> None:
    columns = [TITLES, COMPANIES, NAMES, DOMAINS, EMAILS, PHONES, LINKEDINS]
    up = upload(generic_file(headers, columns), "g.csv")
    names = up.table.headers
    if not headers[0]:
        assert names == [f"column_{i}" for i in range(1, 8)]
    assert mapped(up.mapping) == {
        "full_name": names[2],
        "company_name": names[1],
        "company_url": names[3],
        "email": names[4],
        "linkedin": names[6],
    }
    assert [(r["first_name"], r["last_name"]) for r in up.rows] == SPLIT
    assert [r["company_name"] for r in up.rows] == COMPANIES
    assert up.rows[1] == person(
        first_name="Bob",
        last_name="Ray",
        company_name="Globex GmbH",
        company_url="https://www.globex.de/",
        linkedin="linkedin.com/in/bobray/",
        email="bob@globex.de",
    )
    # A row of empty headers is no header row: the first row is data, and said so.
    assert up.warnings == ([] if headers[0] else ingest.reading_notes(up.table))
    assert len(up.rows) == len(NAMES) and len(up.warnings) == (0 if headers[0] else 1)
    rated = {row.field: row.confidence for row in ingest.column_rows(up.table, up.mapping)}
    assert rated == {
        None: None,  # the titles and the phones are carried, not used
        "company_name": Confidence.MEDIUM,  # told by their cells alone: a likely guess
        "full_name": Confidence.MEDIUM,
        "company_url": Confidence.HIGH,
        "email": Confidence.HIGH,
        "linkedin": Confidence.HIGH,
    }
    directory = suggest_mapping(up.table, DIRECTORY_TARGETS)
    assert directory["phone"] == names[5]  # a directory file maps its phones too


def test_names_and_companies_are_told_apart_whatever_their_order() -> None:
    data = generic_file(["Column 1", "Column 2"], [COMPANIES, NAMES])
    assert mapped(upload(data, "g.csv").mapping) == {
        "company_name": "Column 1",
        "full_name": "Column 2",
    }
    data = generic_file(["Column 1", "Column 2"], [NAMES, COMPANIES])
    assert mapped(upload(data, "g.csv").mapping) == {
        "full_name": "Column 1",
        "company_name": "Column 2",
    }


def test_job_titles_cities_and_repeated_values_are_not_names() -> None:
    cities = ["New York", "San Francisco", "New York", "San Francisco", "New York"]
    data = generic_file(["Column 1", "Column 2"], [TITLES, cities])
    parsed = ingest.read("g.csv", data, SETTINGS)
    assert mapped(suggest_mapping(parsed.table)) == {}


def test_a_name_header_over_company_names_is_the_company() -> None:
    data = generic_file(["Name", "Website"], [COMPANIES, DOMAINS])
    up = upload(data, "accounts.csv")
    assert mapped(up.mapping) == {"company_name": "Name", "company_url": "Website"}
    # Mapped by hand to the full name anyway: warned, and rated low.
    mapping = {**up.mapping, "company_name": None, "full_name": "Name"}
    assert ingest.warnings(up.table, mapping)[0] == (
        '"Name" (mapped to Full name): the values look like company names, not people\'s names.'
    )
    rated = {row.column: row.confidence for row in ingest.column_rows(up.table, mapping)}
    assert rated["Name"] is Confidence.LOW


# --- first and last name in one column ------------------------------------------------------------


@pytest.mark.parametrize("header", ["Full name", "Name", "Contact", "Contact Name", "Full Name"])
def test_one_name_column_is_split_into_first_and_last_name(header: str) -> None:
    names = ["Ann Lee", "Dr. Bob Ray", "Lee, Ann", "Jane van der Berg", "Bob Smith Jr."]
    data = generic_file([header, "Company"], [names, COMPANIES])
    up = upload(data, "c.csv")
    assert mapped(up.mapping) == {"full_name": header, "company_name": "Company"}
    assert [(r["first_name"], r["last_name"]) for r in up.rows] == [
        ("Ann", "Lee"),
        ("Bob", "Ray"),
        ("Ann", "Lee"),
        ("Jane", "van der Berg"),
        ("Bob", "Smith"),
    ]
    assert up.warnings == []


# --- the column-first table -----------------------------------------------------------------------


def test_column_rows_give_samples_field_and_confidence() -> None:
    data = csv_of(
        [
            ["Record ID", "Full Name", "Column 3", "Work Email", "Notes", "Website"],
            ["r1", "Ann Lee", "Acme Corp", "ann@acme.com", "call back", "acme.com"],
            ["r2", "Dr. Bob Ray", "Globex GmbH", "bob@globex.de", "call back", "globex.de"],
            ["r3", "Jane van der Berg", "Initech LLC", "not an email", "", "initech.com"],
            ["r4", "Ann Lee", "Hooli", "jose@stark.es", "a very long note " * 6, "hooli.xyz"],
        ]
    )
    parsed = ingest.read("c.csv", data, SETTINGS)
    mapping = suggest_mapping(parsed.table)
    rows = ingest.column_rows(parsed, mapping)
    assert (
        rows
        == [
            ColumnRow(
                column="Record ID",
                samples=["r1", "r2", "r3"],
                field="id",
                confidence=Confidence.HIGH,
            ),
            ColumnRow(
                column="Full Name",
                samples=["Ann Lee", "Dr. Bob Ray", "Jane van der Berg"],
                field="full_name",
                confidence=Confidence.HIGH,
            ),
            ColumnRow(
                column="Column 3",
                samples=["Acme Corp", "Globex GmbH", "Initech LLC"],
                field="company_name",
                confidence=Confidence.MEDIUM,  # the cells alone decide, and "Hooli" says nothing
            ),
            ColumnRow(
                column="Work Email",
                samples=["ann@acme.com", "bob@globex.de", "not an email"],
                field="email",
                confidence=Confidence.HIGH,
            ),
            ColumnRow(
                column="Notes",
                samples=["call back", ("a very long note " * 6)[:59] + "…"],
                field=None,
                confidence=None,
            ),
            ColumnRow(
                column="Website",
                samples=["acme.com", "globex.de", "initech.com"],
                field="company_url",
                confidence=Confidence.HIGH,
            ),
        ]
    )
    # The user's own choices are rated too: a guess and a misfit are low.
    edited = {**mapping, "linkedin": "Notes", "company_name": None}
    by_column = {row.column: row for row in ingest.column_rows(parsed.table, edited)}
    assert by_column["Notes"].confidence is Confidence.LOW
    assert by_column["Column 3"].field is None and by_column["Column 3"].confidence is None


def test_confidence_follows_the_score() -> None:
    data = csv_of(
        [
            ["Profile URL", "URL", "Name", "Vorname"],
            ["linkedin.com/in/ann-lee", "acme.com", "Lee", "Ann"],
            ["linkedin.com/in/bob-ray", "globex.de", "Ray", "Bob"],
        ]
    )
    parsed = ingest.read("c.csv", data, SETTINGS)
    mapping = suggest_mapping(parsed.table)
    assert mapped(mapping) == {
        "linkedin": "Profile URL",
        "company_url": "URL",
        "last_name": "Name",
        "first_name": "Vorname",
    }
    rated = {row.column: row.confidence for row in ingest.column_rows(parsed, mapping)}
    assert rated == {
        "Profile URL": Confidence.HIGH,  # a generic header, clear LinkedIn links
        "URL": Confidence.HIGH,
        "Name": Confidence.MEDIUM,  # a name column taken as last names: a likely guess
        "Vorname": Confidence.HIGH,
    }
