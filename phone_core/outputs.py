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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, BinaryIO, Protocol

from phone_core import xlsxwrite
from phone_core.errors import ExportError
from phone_core.models import (
    CREDIT_COLUMNS,
    CREDITS_FILE,
    ENRICHED_CSV_FILE,
    ENRICHED_EXCEL_CSV_FILE,
    ENRICHED_EXTRA_COLUMNS,
    ENRICHED_XLSX_FILE,
    OUTPUT_FILES,
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


Outcomes = Callable[[], Iterable[RecordOutcome]]
"""The outcomes of a file, in its order, afresh on each call. The enriched exports need
two passes (the header is the union of the rows' columns, known after the last row), so
a batch's files are written from windows of outcomes read twice, never a list of them
all (``write_files``)."""


def replay(items: Iterable[RecordOutcome]) -> Outcomes:
    """Outcomes already in memory (a run's), as ``Outcomes``."""
    held = items if isinstance(items, list) else list(items)
    return lambda: held


def phone_of(o: RecordOutcome) -> str:
    return o.phone if o.status is not None and o.status.carries_phone else ""


def _result_cells(o: RecordOutcome) -> list[str]:
    p = o.person
    phone = phone_of(o)
    return [
        p.id,
        p.first_name,
        p.last_name,
        p.company_name,
        p.company_url,
        p.linkedin,
        phone,
        "true" if phone else "false",
    ]


def _credit_cells(o: RecordOutcome) -> list[str]:
    return [
        o.person.id,
        (o.status or RecordStatus.NOT_PROCESSED).value,
        o.source,
        str(o.credits_charged),
        o.detail,
    ]


@dataclass(frozen=True)
class _Shape:
    """What an enriched export must know before its first row: its original columns,
    how many rows it has, and (XLSX) which original columns hold a value Excel would
    mangle."""

    original: list[str]
    rows: int
    mangled: frozenset[str]

    @property
    def header(self) -> list[str]:
        extra = list(ENRICHED_EXTRA_COLUMNS)
        return self.original + [c if c not in self.original else f"{c} (enriched)" for c in extra]


def _base(o: RecordOutcome) -> dict[str, Any]:
    return o.source_row or o.person.model_dump()


def _shape(outcomes: Outcomes, *, find_mangled: bool = False) -> _Shape:
    """Original columns untouched (their union over the rows, in order of appearance), or
    the canonical fields when no row has its uploaded columns."""
    seen: dict[str, None] = {}
    mangled: set[str] = set()
    rows = 0
    for o in outcomes():
        rows += 1
        if o.source_row:
            for key in o.source_row:
                if key not in seen:
                    seen[key] = None
        if find_mangled:
            for key, value in _base(o).items():
                if key not in mangled and _EXCEL_MANGLES.fullmatch(str(value or "")):
                    mangled.add(key)
    original = list(seen) if seen else list(PERSON_FIELDS)
    return _Shape(original, rows, frozenset(mangled))


def _enriched_cells(o: RecordOutcome, original: list[str]) -> list[str]:
    """The row of an enriched export: the original columns, then phone and credit ones."""
    base = _base(o)
    phone = phone_of(o)
    info = describe(phone) if phone else None
    return [str(base.get(c, "") or "") for c in original] + [
        phone,
        info.type if info else "",
        info.country if info else "",
        (o.status or RecordStatus.NOT_PROCESSED).value,
        o.source,
        str(o.credits_charged),
        "true" if o.dnc_list else "false",
        o.dnc_list,
    ]


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


def _number(value: str) -> int | Decimal | None:
    """The value as a number if it is a plain one Excel holds exactly, else None."""
    if not _PLAIN_NUMBER.fullmatch(value):
        return None
    if sum(c.isdigit() for c in value) > _NUMBER_DIGITS_MAX:
        return None
    return Decimal(value) if "." in value else int(value)


def _numeric_columns(shape: _Shape) -> set[int]:
    """The columns whose plain numbers are written as numbers: credits_charged, and each
    original one not named like a phone or postal code column and not holding any value
    Excel would mangle (a phone, or an ID with a leading zero or many digits): those stay
    text throughout."""
    numeric = set()
    for i, name in enumerate(shape.original):
        words = set(re.findall(r"[a-z]+", name.lower()))
        if words & _TEXT_COLUMN_WORDS or name in shape.mangled:
            continue
        numeric.add(i)
    numeric.add(len(shape.original) + ENRICHED_EXTRA_COLUMNS.index("credits_charged"))
    return numeric


class _Sink(Protocol):
    """One file being written, a row at a time."""

    def row(self, o: RecordOutcome, enriched: list[str]) -> None: ...

    def close(self) -> None: ...


class _CsvSink:
    def __init__(
        self,
        out: BinaryIO,
        header: Sequence[str],
        cells: Callable[[RecordOutcome, list[str]], list[str]],
        *,
        delimiter: str = ",",
        newline: str = "\n",
        encoding: str = "utf-8",
    ) -> None:
        self._text = io.TextIOWrapper(out, encoding=encoding, newline="")
        self._csv = csv.writer(self._text, delimiter=delimiter, lineterminator=newline)
        self._cells = cells
        self._csv.writerow(header)

    def row(self, o: RecordOutcome, enriched: list[str]) -> None:
        self._csv.writerow(self._cells(o, enriched))

    def close(self) -> None:
        self._text.flush()
        self._text.detach()  # the stream stays open: the caller's


class _XlsxSink:
    def __init__(self, out: BinaryIO, shape: _Shape) -> None:
        header = shape.header
        if len(header) > XLSX_MAX_COLUMNS:
            raise ExportError(
                f"the Excel file cannot hold {len(header):,} columns (Excel allows "
                f"{XLSX_MAX_COLUMNS:,}); download the enriched CSV instead"
            )
        self._numeric = _numeric_columns(shape)
        self._sheet = xlsxwrite.SheetWriter(out, "enriched", len(header), shape.rows + 1)
        self._sheet.row([_xlsx_cell(h) for h in header])

    def row(self, o: RecordOutcome, enriched: list[str]) -> None:
        cells: list[str | int | Decimal] = []
        for i, v in enumerate(enriched):
            number = _number(v) if i in self._numeric else None
            cells.append(_xlsx_cell(v) if number is None else number)
        self._sheet.row(cells)

    def close(self) -> None:
        self._sheet.close()


def _open(name: str, out: BinaryIO, shape: _Shape, ctx: ExportContext) -> _Sink:
    """The sink of file ``name`` (ExportError: the file cannot hold these outcomes)."""
    if name == RESULTS_FILE.name:
        return _CsvSink(out, RESULT_COLUMNS, lambda o, _: _result_cells(o))
    if name == CREDITS_FILE.name:
        return _CsvSink(out, CREDIT_COLUMNS, lambda o, _: _credit_cells(o))
    if name == ENRICHED_CSV_FILE.name:
        header = [_safe_cell(h) for h in shape.header]
        return _CsvSink(out, header, lambda _, row: [_safe_cell(v) for v in row])
    if name == ENRICHED_EXCEL_CSV_FILE.name:  # Excel in any locale (the module's docstring)
        return _CsvSink(
            out,
            [_excel_csv_cell(h) for h in shape.header],
            lambda _, row: [_excel_csv_cell(v) for v in row],
            delimiter=ctx.excel_delimiter,
            newline="\r\n",
            encoding="utf-8-sig",
        )
    if name == ENRICHED_XLSX_FILE.name:
        return _XlsxSink(out, shape)
    raise ExportError(f"no output called {name}")


_NO_SHAPE = _Shape([], 0, frozenset())


def write_files(
    outcomes: Outcomes, outs: Mapping[str, BinaryIO], ctx: ExportContext = PLAIN
) -> dict[str, Exception]:
    """Write each file of ``outs`` (name -> stream) from the same outcomes: one pass for
    the enriched exports' shape (if one is asked for), one pass writing every file, so
    only a window of outcomes and the rows being written are in memory. Each file on its
    own: one that cannot be written never blocks the others. Returns those that could not
    be, with why (their streams hold a partial file); the others are complete."""
    failed: dict[str, Exception] = {}
    enriched = any(not OUTPUT_FILES[n].contract for n in outs if n in OUTPUT_FILES)
    shape = _shape(outcomes, find_mangled=ENRICHED_XLSX_FILE.name in outs) if enriched else None
    sinks: dict[str, _Sink] = {}
    for name, out in outs.items():
        try:
            sinks[name] = _open(name, out, shape or _NO_SHAPE, ctx)
        except Exception as exc:
            failed[name] = exc
    for o in outcomes() if sinks else ():
        row = _enriched_cells(o, shape.original) if shape is not None else []
        for name, sink in list(sinks.items()):
            try:
                sink.row(o, row)
            except Exception as exc:
                failed[name] = exc
                del sinks[name]
    for name, sink in sinks.items():
        try:
            sink.close()
        except Exception as exc:
            failed[name] = exc
    return failed


def build(name: str, items: Iterable[RecordOutcome], ctx: ExportContext = PLAIN) -> bytes:
    """File ``name`` of outcomes held in memory (a run's), as bytes; raises why it cannot
    be built (ExportError: it cannot hold these outcomes)."""
    buf = io.BytesIO()
    failed = write_files(replay(items), {name: buf}, ctx)
    if name in failed:
        raise failed[name]
    return buf.getvalue()


def results_csv(items: list[RecordOutcome]) -> bytes:
    return build(RESULTS_FILE.name, items)


def credits_csv(items: list[RecordOutcome]) -> bytes:
    return build(CREDITS_FILE.name, items)


def enriched_csv(items: list[RecordOutcome], ctx: ExportContext = PLAIN) -> bytes:
    return build(ENRICHED_CSV_FILE.name, items, ctx)


def enriched_excel_csv(items: list[RecordOutcome], ctx: ExportContext = PLAIN) -> bytes:
    return build(ENRICHED_EXCEL_CSV_FILE.name, items, ctx)


def enriched_xlsx(items: list[RecordOutcome], ctx: ExportContext = PLAIN) -> bytes:
    return build(ENRICHED_XLSX_FILE.name, items, ctx)


def contract_files(items: list[RecordOutcome]) -> dict[str, bytes]:
    """results.csv and credits.csv of a run's outcomes."""
    return {RESULTS_FILE.name: results_csv(items), CREDITS_FILE.name: credits_csv(items)}


# The enriched exports of outcomes in memory, as bytes (a run's files).
ExportBuilder = Callable[[list[RecordOutcome], ExportContext], bytes]
EXPORT_BUILDERS: dict[str, ExportBuilder] = {
    ENRICHED_CSV_FILE.name: enriched_csv,
    ENRICHED_XLSX_FILE.name: enriched_xlsx,
    ENRICHED_EXCEL_CSV_FILE.name: enriched_excel_csv,
}
