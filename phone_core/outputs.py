"""The run's outputs as bytes, from its outcomes (pure: no I/O): results.csv and
credits.csv (the contract), and the enriched export.

CSV cells that a spreadsheet would run as a formula (=, +, -, @ first) are written as is
in the contract files (programs read them) but prefixed with a quote in the enriched
export meant for spreadsheets; E.164 phones there start with '+', so the export cell is
typed as text in XLSX instead.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable

from phone_core.errors import ExportError
from phone_core.models import (
    CREDIT_COLUMNS,
    CREDITS_FILE,
    ENRICHED_CSV_FILE,
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


def _csv(header: tuple[str, ...] | list[str], rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


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


def enriched_csv(items: list[RecordOutcome]) -> bytes:
    header, rows = enriched_table(items)
    return _csv([_safe_cell(h) for h in header], [[_safe_cell(v) for v in r] for r in rows])


def enriched_xlsx(items: list[RecordOutcome]) -> bytes:
    from openpyxl import Workbook

    header, rows = enriched_table(items)
    if len(header) > XLSX_MAX_COLUMNS:
        raise ExportError(
            f"the Excel file cannot hold {len(header):,} columns (Excel allows "
            f"{XLSX_MAX_COLUMNS:,}); download the enriched CSV instead"
        )
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("enriched")
    ws.append([_xlsx_cell(h) for h in header])
    for r in rows:
        ws.append([_xlsx_cell(v) for v in r])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def contract_files(items: list[RecordOutcome]) -> dict[str, bytes]:
    """results.csv and credits.csv of a run's outcomes."""
    return {RESULTS_FILE.name: results_csv(items), CREDITS_FILE.name: credits_csv(items)}


# Each export on its own: one that cannot be built never blocks the other.
EXPORT_BUILDERS: dict[str, Callable[[list[RecordOutcome]], bytes]] = {
    ENRICHED_CSV_FILE.name: enriched_csv,
    ENRICHED_XLSX_FILE.name: enriched_xlsx,
}
