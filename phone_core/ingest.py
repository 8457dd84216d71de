"""The upload pipeline, one for the web app, the CLI and the reference-data loader.

read (bounded by the settings) -> mapping (the user's last one for these headers, else
suggested; then edited) -> problems and warnings -> mapped rows -> pre-flight -> submit a
batch or load the directory. Pages call this through ``ui_api`` and only render.

Parsed files and pre-flights are kept in small bounded caches so a page can ask for them
on every rerun instead of holding them in its session: a parsed file is keyed by the
sha256 of its bytes (only someone holding the same bytes can hit it), a pre-flight by the
user, the file, the mapping and the upload's revision (a fresh upload is a fresh count).
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import BinaryIO, Generic, TypeVar, cast

from phone_core import preferences, service, tablestream
from phone_core.errors import FileFormatError, InputError
from phone_core.mapping import (
    DIRECTORY_TARGETS,
    FIELDS,
    PERSON_TARGETS,
    PHONE,
    apply_mapping,
    can_enrich,
    confidence,
    map_rows,
    mapping_warnings,
    suggest_mapping,
)
from phone_core.models import MAX_BATCH, BatchAccepted, ColumnRow, Preflight
from phone_core.records import ENRICHABLE_RULE
from phone_core.runtime import Runtime
from phone_core.settings import Settings, get_settings
from phone_core.tables import Table, read_table

NO_COLUMNS = (
    "None of the columns could be recognised as a name, company, website, LinkedIn or email "
    "column. Check that the file has a row of column names, or choose the columns by hand."
)
NO_PHONE = "Map the column that holds the phone numbers: a directory needs one."
NOTHING_TO_MATCH = f"Map the columns to match on: {ENRICHABLE_RULE}."
NOTHING_ENRICHABLE = (
    f"No row of this file can be enriched with this mapping: each row needs {ENRICHABLE_RULE}."
)
NO_CREDITS = (
    "You have no credits available, so this batch cannot start. Ask an administrator to "
    "grant you credits."
)
Mapped = dict[str, str | None]  # field -> column of the file, or None


@dataclass(frozen=True)
class ReadLimits:
    """The bounds a file is read within (``tables.read_table``'s limits)."""

    max_bytes: int
    max_rows: int
    max_columns: int
    max_uncompressed_bytes: int

    def read(self, data: bytes, filename: str, sheet: str | None = None) -> Table:
        return read_table(
            data,
            filename,
            max_bytes=self.max_bytes,
            max_rows=self.max_rows,
            max_columns=self.max_columns,
            max_uncompressed_bytes=self.max_uncompressed_bytes,
            sheet=sheet,
        )

    def open_rows(
        self, fh: BinaryIO, filename: str, sheet: str | None = None
    ) -> AbstractContextManager[tablestream.RowStream]:
        """The rows of a file as a stream, within these limits (``tablestream.open_rows``)."""
        return tablestream.open_rows(
            fh,
            filename,
            max_rows=self.max_rows,
            max_bytes=self.max_bytes,
            max_columns=self.max_columns,
            max_uncompressed_bytes=self.max_uncompressed_bytes,
            sheet=sheet,
        )


@dataclass(frozen=True)
class Purpose:
    """What an upload is for: the fields it maps, its limits, its remembered mappings."""

    scope: str  # the preferences scope its mappings are remembered under
    targets: tuple[str, ...]

    def limits(self, settings: Settings) -> ReadLimits:
        """What a file for this purpose may hold, from the settings (every path)."""
        directory = self is DIRECTORY
        return ReadLimits(
            max_bytes=settings.directory_max_bytes if directory else settings.upload_max_bytes,
            max_rows=settings.directory_max_rows if directory else settings.upload_max_rows,
            max_columns=settings.upload_max_columns,
            max_uncompressed_bytes=settings.xlsx_max_uncompressed_bytes,
        )


BATCH = Purpose(preferences.BATCH, PERSON_TARGETS)
DIRECTORY = Purpose(preferences.DIRECTORY, DIRECTORY_TARGETS)


@dataclass(frozen=True)
class ParsedFile:
    """An uploaded file read into a table; treat as read-only (it may be shared)."""

    name: str
    digest: str  # sha256 of the bytes
    table: Table

    @property
    def sheets(self) -> tuple[str, ...]:
        """A workbook's sheets (for a picker); ``table.sheet`` is the one read. CSV: ()."""
        return self.table.sheets


@dataclass
class Upload:
    """A file read and mapped: what the CLI and the loaders submit."""

    table: Table
    mapping: Mapped
    rows: list[dict[str, str]] = field(default_factory=list)
    source_rows: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Lru(Generic[K, V]):
    """A small thread-safe LRU map (Streamlit serves sessions from several threads)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: K, value: V) -> V:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


# A parsed file, or the message of why it could not be read (not parsed again either).
_FILES: _Lru[tuple[str, str, ReadLimits, str | None], ParsedFile | str] = _Lru(4)
_PreflightKey = tuple[
    str, str, str, str, tuple[tuple[str, str | None], ...], tuple[str, ...] | None
]
_PREFLIGHTS: _Lru[_PreflightKey, Preflight] = _Lru(64)


def clear_caches() -> None:
    _FILES.clear()
    _PREFLIGHTS.clear()


# --- read and map -----------------------------------------------------------------------


def read(
    name: str,
    data: bytes | Callable[[], bytes] | BinaryIO,
    settings: Settings,
    purpose: Purpose = BATCH,
    *,
    digest: str | None = None,
    sheet: str | None = None,
) -> ParsedFile:
    """The file as a table, within ``purpose``'s limits; FileFormatError says why not.

    ``data`` may be a callable, called only when ``digest`` (the sha256 hex of an earlier
    read of the same bytes) does not find the file in the cache, or a seekable binary file
    (read a chunk at a time). ``sheet``: the worksheet of a workbook to read, by name
    (default: the first holding a table; ``ParsedFile.sheets`` lists them).

    A directory (``DIRECTORY``, up to millions of rows) is read as its first
    ``DIRECTORY_SAMPLE_ROWS`` rows (``Table.partial``), for the preview and the mapping:
    ``directory_upload.load`` streams the whole file.
    """
    limits = purpose.limits(settings)
    cached = _FILES.get((digest, name, limits, sheet)) if digest else None
    if cached is None:
        fh = None if isinstance(data, bytes) or callable(data) else data
        raw = b"" if fh is not None else data() if callable(data) else cast(bytes, data)
        digest = _sha256(fh) if fh is not None else hashlib.sha256(raw).hexdigest()
        key = (digest, name, limits, sheet)
        cached = _FILES.get(key)
        if cached is None:
            try:
                if purpose is DIRECTORY:
                    source = fh if fh is not None else io.BytesIO(raw)
                    table = _sample(source, name, limits, sheet)
                else:
                    table = limits.read(raw, name, sheet)
                cached = _FILES.put(key, ParsedFile(name, digest, table))
            except FileFormatError as exc:
                cached = _FILES.put(key, str(exc))
    if isinstance(cached, str):
        raise FileFormatError(cached)
    return cached


DIRECTORY_SAMPLE_ROWS = 1000  # rows of a directory file read for its preview and mapping


def _sha256(fh: BinaryIO) -> str:
    digest = hashlib.sha256()
    fh.seek(0)
    while chunk := fh.read(1024 * 1024):
        digest.update(chunk)
    fh.seek(0)
    return digest.hexdigest()


def _sample(fh: BinaryIO, name: str, limits: ReadLimits, sheet: str | None) -> Table:
    with limits.open_rows(fh, name, sheet) as stream:
        return tablestream.sample(stream, DIRECTORY_SAMPLE_ROWS)


def initial_mapping(
    rt: Runtime, user: str, parsed: ParsedFile, purpose: Purpose = BATCH
) -> tuple[Mapped, bool]:
    """The user's last mapping for these headers, else the suggestion; True when recalled."""
    headers = parsed.table.headers
    with rt.db.connect() as conn:
        saved = preferences.load_mapping(conn, user, headers, purpose.scope)
    if saved and any(saved.values()):
        return {f: saved.get(f) if saved.get(f) in headers else None for f in purpose.targets}, True
    return suggest_mapping(parsed.table, purpose.targets), False


def merge_mapping(
    table: Table, suggested: Mapping[str, str | None], overrides: Mapping[str, str]
) -> Mapped:
    """Suggested mapping with ``field=Column`` overrides (column '' or '-' unmaps)."""
    mapping = dict(suggested)
    for name, column in overrides.items():
        if name not in FIELDS:
            raise InputError(f"unknown field {name!r}; fields are: {', '.join(FIELDS)}")
        if column in ("", "-"):
            mapping[name] = None
            continue
        if column not in table.headers:
            raise InputError(
                f"the file has no column {column!r} (columns: {', '.join(table.headers)})"
            )
        for other, col in list(mapping.items()):
            if col == column and other != name:
                mapping[other] = None
        mapping[name] = column
    return mapping


def problem(mapping: Mapping[str, str | None], purpose: Purpose = BATCH) -> str | None:
    """Why nothing can go on with this mapping, or None."""
    if not any(mapping.values()):
        return NO_COLUMNS
    if purpose is DIRECTORY and not mapping.get(PHONE):
        return NO_PHONE
    if purpose is DIRECTORY and not can_enrich(mapping):
        return NOTHING_TO_MATCH
    return None


def warnings(table: Table, mapping: Mapping[str, str | None]) -> list[str]:
    """What was read (which sheet, which row was the header), then mapped columns whose
    contents look wrong, repeated ids, or nothing enrichable."""
    return [*reading_notes(table), *mapping_warnings(table, mapping)]


def reading_notes(table: Table) -> list[str]:
    """Which sheet of a workbook was read, and which row was taken as the header when rows
    above it were left out."""
    notes: list[str] = []
    if len(table.sheets) > 1:
        others = [f'"{name}"' for name in table.sheets if name != table.sheet]
        listed = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        notes.append(
            f'Read the sheet "{table.sheet}" of this workbook; it also has {listed}. '
            "Choose another sheet if the list is there."
        )
    if table.header_row == 0:
        notes.append(
            "The file has no header row (its first row holds an email address or a link), so "
            "its columns are named column_1, column_2, ...: choose what each one holds."
        )
    if table.rows_above:
        above = "the row" if table.rows_above == 1 else f"the {table.rows_above} rows"
        notes.append(
            f"Row {table.header_row} was taken as the header row (the column names); "
            f"{above} above it (a title or notes) were left out."
        )
    return notes


def column_rows(parsed: ParsedFile | Table, mapping: Mapping[str, str | None]) -> list[ColumnRow]:
    """One row per column of the file, in file order: its name, up to 3 sample values, the
    field it is mapped to (None: not used, but still carried into the enriched export) and
    how sure that mapping is (``mapping.confidence``; None when not mapped)."""
    table = parsed.table if isinstance(parsed, ParsedFile) else parsed
    mapped_to = {column: field for field, column in mapping.items() if column}
    out: list[ColumnRow] = []
    for position, column in enumerate(table.headers):
        field_name = mapped_to.get(column)
        out.append(
            ColumnRow(
                column=column,
                samples=_samples(table, position),
                field=field_name,
                confidence=None if field_name is None else confidence(table, field_name, column),
            )
        )
    return out


SAMPLES = 3
_SAMPLE_CHARS = 60


def _samples(table: Table, position: int) -> list[str]:
    """Up to ``SAMPLES`` different non-empty values of a column, from its first rows."""
    seen: list[str] = []
    for row in table.rows[:1000]:
        value = row[position]
        if value and value not in seen:
            seen.append(value)
            if len(seen) == SAMPLES:
                break
    return [v if len(v) <= _SAMPLE_CHARS else v[: _SAMPLE_CHARS - 1] + "…" for v in seen]


def source_rows(table: Table) -> list[dict[str, str]]:
    """The original rows as header -> cell (kept for the enriched export)."""
    return [dict(zip(table.headers, row, strict=True)) for row in table.rows]


def build_upload(table: Table, mapping: Mapped, purpose: Purpose = BATCH) -> Upload:
    """Map every row; InputError when the mapping cannot be used at all."""
    refused = problem(mapping, purpose)
    if refused:
        raise InputError(refused)
    return Upload(
        table=table,
        mapping=mapping,
        rows=apply_mapping(table, mapping),
        source_rows=source_rows(table),
        warnings=warnings(table, mapping),
    )


def load_upload(
    data: bytes,
    filename: str,
    *,
    settings: Settings | None = None,
    overrides: Mapping[str, str] | None = None,
    purpose: Purpose = BATCH,
    sheet: str | None = None,
) -> Upload:
    """Read a file (``sheet``: a workbook's sheet by name) and map it by the suggestion plus
    ``overrides`` (the CLI's ``--map``)."""
    table = purpose.limits(settings or get_settings()).read(data, filename, sheet)
    mapping = merge_mapping(table, suggest_mapping(table, purpose.targets), overrides or {})
    return build_upload(table, mapping, purpose)


# --- pre-flight and budget --------------------------------------------------------------


def preflight(
    rt: Runtime,
    user: str,
    parsed: ParsedFile,
    mapping: Mapped,
    revision: str = "",
    sources: Sequence[str] | None = None,
) -> Preflight:
    """Counts and worst-case cost of the mapped file for ``user``, before anything is spent.

    Kept per (user, file, sheet, mapping, ``revision``): the same upload shows the same
    numbers on every rerun; a new revision (a new upload of the file) counts again.
    """
    chosen = None if sources is None else tuple(sources)
    key = (
        user, parsed.digest, parsed.table.sheet, revision, tuple(sorted(mapping.items())), chosen
    )  # fmt: skip
    cached = _PREFLIGHTS.get(key)
    if cached is None:
        rows = map_rows(parsed.table.headers, parsed.table.rows, mapping)  # a row at a time
        pf = (
            service.preflight(rt, user, rows)
            if sources is None
            else service.preflight(rt, user, rows, sources=sources)
        )
        cached = _PREFLIGHTS.put(key, pf)
    return cached


def budget_blocker(pf: Preflight) -> str:
    """Why this batch cannot be submitted whatever the budget, or ''."""
    if pf.enrichable == 0:
        return NOTHING_ENRICHABLE
    if is_free(pf):
        return ""  # nothing to pay for: no credits needed
    return NO_CREDITS if pf.available_credits < 1 else ""


def is_free(pf: Preflight) -> bool:
    """Nothing in the batch can cost a credit (it may then be submitted with a cap of 0)."""
    return pf.worst_case_credits == 0


def default_max_credits(pf: Preflight) -> int:
    """The smaller of the worst case and the available balance (at least 1, or 0 when
    the batch is free)."""
    if is_free(pf):
        return 0
    return max(1, min(pf.worst_case_credits, pf.available_credits))


def over_budget(pf: Preflight, max_credits: int) -> str:
    """The warning that blocks the submit (a cap above what the user has, or a cap of 0
    for a batch that has rows to pay for), or ''."""
    if max_credits < 1 and not is_free(pf):
        return (
            f"Set a cap of at least 1 credit: {_people(pf.to_look_up)} looking up, at "
            f"up to {_credits(pf.per_record_worst_case)} each."
        )
    if max_credits <= pf.available_credits:
        return ""
    return (
        f"You have {_credits(pf.available_credits)} available: lower the maximum to "
        f"{pf.available_credits:,} or less, or ask an administrator for more credits."
    )


def below_worst_case(pf: Preflight, max_credits: int) -> str:
    """The note when the cap may stop the batch early, or ''."""
    if max_credits >= pf.worst_case_credits:
        return ""
    return (
        f"This cap is below the worst case ({_credits(pf.worst_case_credits)}). The batch "
        "stops when the cap is reached; rows it did not reach are marked 'not processed' "
        "and can be re-run later from the Runs page."
    )


def _credits(n: int) -> str:
    return f"{n:,} credit{'' if n == 1 else 's'}"


def _people(n: int) -> str:
    return "1 person needs" if n == 1 else f"{n:,} people need"


def dry_run(rt: Runtime, user: str, upload: Upload, max_credits: int) -> dict[str, object]:
    """What submitting ``upload`` with ``max_credits`` would do, spending and queueing
    nothing (the CLI's ``submit --dry-run``): what was read, the mapping with its columns,
    the warnings, the pre-flight, and why it could not be submitted (``blocker``, '' if it
    could) or a ``note`` when the cap may stop it early."""
    if max_credits < 1:
        raise InputError("max credits must be at least 1")
    pf = service.preflight(rt, user, upload.rows)
    blocker = budget_blocker(pf) or over_budget(pf, max_credits)
    table = upload.table
    return {
        "sheet": table.sheet or None,
        "sheets": list(table.sheets),
        "header_row": table.header_row,
        "mapping": upload.mapping,
        "columns": [row.model_dump(mode="json") for row in column_rows(table, upload.mapping)],
        "warnings": upload.warnings,
        "preflight": pf.model_dump(mode="json"),
        "max_credits": max_credits,
        "blocker": blocker,
        "note": "" if blocker else below_worst_case(pf, max_credits),
    }


# --- submit and load --------------------------------------------------------------------


def remember_mapping(
    rt: Runtime, user: str, table: Table, mapping: Mapped, purpose: Purpose
) -> None:
    with rt.db.begin() as conn:
        preferences.save_mapping(conn, user, table.headers, mapping, purpose.scope)


def submit_upload(
    rt: Runtime,
    user: str,
    parsed: ParsedFile,
    mapping: Mapped,
    max_credits: int,
    label: str = "",
    sources: Sequence[str] | None = None,
) -> list[BatchAccepted]:
    """Submit the mapped file (runs of at most 1000 under one budget); remember the mapping.

    The file's rows are mapped a part (a run) at a time as the runs are written: besides
    the parsed table, a submit holds one part's rows, never a copy of the whole file."""
    refused = problem(mapping)
    if refused:
        raise InputError(refused)
    table = parsed.table
    accepted = service.submit_parts(
        rt,
        user,
        len(table.rows),
        upload_parts(table, mapping),
        max_credits,
        label=label,
        source_delimiter=table.delimiter,
        sources=sources,
    )
    remember_mapping(rt, user, table, mapping, BATCH)
    return accepted


def upload_parts(table: Table, mapping: Mapped) -> Iterator[service.UploadPart]:
    """The table's rows mapped (``apply_mapping``) with their original cells
    (``source_rows``), ``MAX_BATCH`` rows at a time."""
    for start in range(0, len(table.rows), MAX_BATCH):
        part = table.rows[start : start + MAX_BATCH]
        mapped = list(map_rows(table.headers, part, mapping))
        yield mapped, [dict(zip(table.headers, row, strict=True)) for row in part]
