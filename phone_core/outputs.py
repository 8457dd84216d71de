"""The run's outputs as bytes, from its outcomes (pure: no I/O): results.csv and
credits.csv (the contract), and the enriched exports.

CSV cells that a spreadsheet would run as a formula (=, +, -, @ first) are written as is
in the contract files (programs read them) but prefixed with a quote in the enriched
exports meant for spreadsheets; E.164 phones there start with '+', so the export cell is
typed as text in XLSX instead, where plain numbers of the original columns are numbers.

The Excel-friendly CSV is for Excel outside English locales: UTF-8 with a BOM (so Excel
does not guess a code page), CRLF, the upload's own delimiter (Excel splits a CSV at the
locale's list separator: ';' in Germany), and the values Excel would mangle written as
``="..."``. That is a formula, but only for a value that is a '+' and digits, or digits
with a leading zero or more than 11 of them (nothing else can reach it: no quote, no
function, no reference), so it is a constant text; every other cell gets the same
formula guard as the plain export.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from phone_core import xlsxwrite
from phone_core.errors import ExportError
from phone_core.models import (
    CREDIT_COLUMNS,
    CREDITS_FILE,
    ENRICHED_CSV_FILE,
    ENRICHED_EXCEL_CSV_FILE,
    ENRICHED_EXTRA_COLUMNS,
    ENRICHED_XLSX_FILE,
    PERSON_FIELDS,
    RESULT_COLUMNS,
    RESULTS_FILE,
    RecordOutcome,
    RecordStatus,
)
from phone_core.phones import describe

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# What XLSX (XML 1.0) cannot store: C0 controls but tab, newline and carriage return.
_XLSX_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
XLSX_MAX_COLUMNS = 16_384
# Values Excel reads as a number and shows or keeps wrong: '+' and digits (4.47E+11), a
# leading zero (dropped), more than 11 digits (scientific; past 15, digits lost).
_EXCEL_MANGLES = re.compile(r"\+[0-9]+|0[0-9]+|[0-9]{12,}", re.ASCII)
_EXCEL_TEXT_MAX = 255  # the longest text constant an Excel formula may hold
_SIGNED_NUMBER = re.compile(r"-[0-9]+(?:\.[0-9]+)?", re.ASCII)  # a number to Excel, no formula
# A plain number in an original column: written to XLSX as a number when it fits Excel's
# General format (at most 11 digits before the point) and its precision (15 digits).
_PLAIN_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]{0,10})(?:\.[0-9]+)?", re.ASCII)
_NUMBER_DIGITS_MAX = 15
# Header words of columns that hold phone numbers or codes, not quantities: kept as text.
_TEXT_COLUMN_WORDS = frozenset(
    {"phone", "phones", "telephone", "tel", "mobile", "cell", "fax", "handy", "telefon"}
    | {"zip", "postal", "postcode", "plz"}
)


@dataclass(frozen=True)
class ExportContext:
    """What a builder knows of the run beyond its outcomes: the delimiter of the uploaded
    CSV (None for an XLSX upload or an API batch)."""

    source_delimiter: str | None = None

    @property
    def excel_delimiter(self) -> str:
        """The delimiter of the Excel-friendly CSV: ';' or tab as uploaded, else ','."""
        return self.source_delimiter if self.source_delimiter in (";", "\t") else ","


PLAIN = ExportContext()


def _csv(
    header: tuple[str, ...] | list[str],
    rows: list[list[str]],
    *,
    delimiter: str = ",",
    newline: str = "\n",
    encoding: str = "utf-8",
) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator=newline)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode(encoding)


def phone_of(o: RecordOutcome) -> str:
    return o.phone if o.status is not None and o.status.carries_phone else ""


def results_csv(items: list[RecordOutcome]) -> bytes:
    rows = []
    for o in items:
        p = o.person
        phone = phone_of(o)
        rows.append(
            [
                p.id,
                p.first_name,
                p.last_name,
                p.company_name,
                p.company_url,
                p.linkedin,
                phone,
                "true" if phone else "false",
            ]
        )
    return _csv(RESULT_COLUMNS, rows)


def credits_csv(items: list[RecordOutcome]) -> bytes:
    rows = [
        [
            o.person.id,
            (o.status or RecordStatus.NOT_PROCESSED).value,
            o.source,
            str(o.credits_charged),
            o.detail,
        ]
        for o in items
    ]
    return _csv(CREDIT_COLUMNS, rows)


def enriched_table(items: list[RecordOutcome]) -> tuple[list[str], list[list[str]]]:
    """Original columns untouched (or the canonical fields), plus phone and credit columns."""
    original: list[str] = []
    for o in items:
        if o.source_row:
            for key in o.source_row:
                if key not in original:
                    original.append(key)
    if not original:
        original = list(PERSON_FIELDS)
    extra = [c for c in ENRICHED_EXTRA_COLUMNS]
    header = original + [c if c not in original else f"{c} (enriched)" for c in extra]
    rows: list[list[str]] = []
    for o in items:
        base = o.source_row or o.person.model_dump()
        phone = phone_of(o)
        info = describe(phone) if phone else None
        rows.append(
            [str(base.get(c, "") or "") for c in original]
            + [
                phone,
                info.type if info else "",
                info.country if info else "",
                (o.status or RecordStatus.NOT_PROCESSED).value,
                o.source,
                str(o.credits_charged),
                "true" if o.dnc_list else "false",
                o.dnc_list,
            ]
        )
    return header, rows


def _safe_cell(value: str) -> str:
    """A cell a spreadsheet shows as text: a leading formula character gets a quote
    (numbers such as +4474... and -5 stay as they are)."""
    return "'" + value if value.startswith(_FORMULA_START) and not value[1:].isdigit() else value


def _xlsx_cell(value: str) -> str:
    """Formula-safe, and without the control characters an XLSX file cannot hold."""
    return _XLSX_ILLEGAL.sub("", _safe_cell(value))


def _excel_csv_cell(value: str) -> str:
    """A cell of the Excel-friendly CSV: a value Excel would mangle as ``="value"`` (a
    constant text: the value is digits, so it cannot carry a quote or a call), a negative
    number as is, any other formula-safe as in the plain export."""
    if len(value) <= _EXCEL_TEXT_MAX and _EXCEL_MANGLES.fullmatch(value):
        return f'="{value}"'
    if _SIGNED_NUMBER.fullmatch(value):
        return value  # -3.5 is read as a number; a quote would show in the cell
    return _safe_cell(value)


def enriched_csv(items: list[RecordOutcome], ctx: ExportContext = PLAIN) -> bytes:
    header, rows = enriched_table(items)
    return _csv([_safe_cell(h) for h in header], [[_safe_cell(v) for v in r] for r in rows])


def enriched_excel_csv(items: list[RecordOutcome], ctx: ExportContext = PLAIN) -> bytes:
    """The enriched table for Excel in any locale (see the module's docstring)."""
    header, rows = enriched_table(items)
    return _csv(
        [_excel_csv_cell(h) for h in header],
        [[_excel_csv_cell(v) for v in r] for r in rows],
        delimiter=ctx.excel_delimiter,
        newline="\r\n",
        encoding="utf-8-sig",
    )


def _number(value: str) -> int | Decimal | None:
    """The value as a number if it is a plain one Excel holds exactly, else None."""
    if not _PLAIN_NUMBER.fullmatch(value):
        return None
    if sum(c.isdigit() for c in value) > _NUMBER_DIGITS_MAX:
        return None
    return Decimal(value) if "." in value else int(value)


def _numeric_columns(header: list[str], rows: list[list[str]], original: int) -> set[int]:
    """The original columns whose plain numbers are written as numbers: not one named
    like a phone or postal code column, and not one holding any value Excel would mangle
    (a phone, or an ID with a leading zero or many digits): those stay text throughout."""
    numeric = set()
    for i in range(original):
        words = set(re.findall(r"[a-z]+", header[i].lower()))
        if words & _TEXT_COLUMN_WORDS:
            continue
        if any(_EXCEL_MANGLES.fullmatch(r[i]) for r in rows):
            continue
        numeric.add(i)
    return numeric


def enriched_xlsx(items: list[RecordOutcome], ctx: ExportContext = PLAIN) -> bytes:
    header, rows = enriched_table(items)
    if len(header) > XLSX_MAX_COLUMNS:
        raise ExportError(
            f"the Excel file cannot hold {len(header):,} columns (Excel allows "
            f"{XLSX_MAX_COLUMNS:,}); download the enriched CSV instead"
        )
    original = len(header) - len(ENRICHED_EXTRA_COLUMNS)
    numeric = _numeric_columns(header, rows, original)
    numeric.add(original + ENRICHED_EXTRA_COLUMNS.index("credits_charged"))

    def cells(r: list[str]) -> list[str | int | Decimal]:
        out: list[str | int | Decimal] = []
        for i, v in enumerate(r):
            number = _number(v) if i in numeric else None
            out.append(_xlsx_cell(v) if number is None else number)
        return out

    return xlsxwrite.write("enriched", [[_xlsx_cell(h) for h in header], *map(cells, rows)])


def contract_files(items: list[RecordOutcome]) -> dict[str, bytes]:
    """results.csv and credits.csv of a run's outcomes."""
    return {RESULTS_FILE.name: results_csv(items), CREDITS_FILE.name: credits_csv(items)}


# Each export on its own: one that cannot be built never blocks the others. A builder
# takes the run's outcomes and its ExportContext.
ExportBuilder = Callable[[list[RecordOutcome], ExportContext], bytes]
EXPORT_BUILDERS: dict[str, ExportBuilder] = {
    ENRICHED_CSV_FILE.name: enriched_csv,
    ENRICHED_XLSX_FILE.name: enriched_xlsx,
    ENRICHED_EXCEL_CSV_FILE.name: enriched_excel_csv,
}
