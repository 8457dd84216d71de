"""What the upload, batch and run pages call (``ui_api`` has the rest): reading an upload,
its mapping and pre-flight, the submit (the one pipeline is ``phone_core.ingest``), and
runs and batches as server-side pages: no function here returns a whole history, only
a page, a count or an aggregate. Nothing here imports streamlit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import BinaryIO

from phone_core import (
    batch_views,
    batches,
    directory_upload,
    ingest,
    notify,
    service,
)
from phone_core import mapping as mapping_rules
from phone_core.batch_views import BatchOverview, BatchPage
from phone_core.batch_views import BatchQuery as BatchQuery  # the Runs page's filter
from phone_core.credits import worst_case
from phone_core.ingest import ParsedFile, Purpose
from phone_core.models import (
    Batch,
    BatchAccepted,
    ColumnRow,
    Preflight,
    RecordOutcome,
)
from phone_core.ui_api import runtime, settings

BATCH = ingest.BATCH  # what an upload is for: a batch of leads ...
DIRECTORY = ingest.DIRECTORY  # ... or the reference directory
BATCH_STATES = batch_views.BATCH_STATES  # the Runs page's filters
ROW_FILTERS = batch_views.ROW_FILTERS


# --- uploads: read, map, check, pre-flight, submit (the pipeline is phone_core.ingest) -----


def cache_source() -> str:
    """Where 'already known' phones come from, for the pre-flight."""
    s = settings()
    if s.cache_scope == "user":
        return f"Phones you found in the last {s.cache_ttl_days} days: free."
    return (
        f"Phones found in the last {s.cache_ttl_days} days by anyone in your organisation "
        "(paid for once, by whoever looked them up first): free for you."
    )


def read_upload(
    name: str,
    data: bytes | Callable[[], bytes] | BinaryIO,
    purpose: Purpose = BATCH,
    *,
    digest: str | None = None,
    sheet: str | None = None,
) -> ParsedFile:
    """An uploaded CSV/XLSX within the limits of the settings; FileFormatError says why not.
    ``sheet``: a workbook's sheet by name (default: the first holding a table).
    ``data``: the bytes, a callable giving them, or the uploaded file (a directory's is read
    a chunk at a time, its first rows only: ``ingest.read``)."""
    return ingest.read(name, data, settings(), purpose, digest=digest, sheet=sheet)


def initial_mapping(
    user: str, parsed: ParsedFile, purpose: Purpose = BATCH
) -> tuple[dict[str, str | None], bool]:
    """The user's last mapping for these headers, else the suggestion; True when recalled."""
    return ingest.initial_mapping(runtime(), user, parsed, purpose)


def mapping_problem(mapping: Mapping[str, str | None], purpose: Purpose = BATCH) -> str | None:
    return ingest.problem(mapping, purpose)


def can_enrich(mapping: Mapping[str, str | None]) -> bool:
    """Whether rows mapped this way can be enrichable at all (records.IDENTITY_GROUPS)."""
    return mapping_rules.can_enrich(mapping)


def column_rows(parsed: ParsedFile, mapping: Mapping[str, str | None]) -> list[ColumnRow]:
    """One row per column of the file: samples, the field it is mapped to, how sure."""
    return ingest.column_rows(parsed, mapping)


def column_warnings(parsed: ParsedFile, mapping: Mapping[str, str | None]) -> list[str]:
    """``mapping_warnings`` without the reading notes (a page that shows its own sheet
    picker and header-row note)."""
    return mapping_rules.mapping_warnings(parsed.table, mapping)


def preflight(
    user: str,
    parsed: ParsedFile,
    mapping: dict[str, str | None],
    revision: str = "",
    sources: Sequence[str] | None = None,
) -> Preflight:
    return ingest.preflight(runtime(), user, parsed, mapping, revision, sources)


def budget_blocker(pf: Preflight) -> str:
    return ingest.budget_blocker(pf)


def is_free(pf: Preflight) -> bool:
    return ingest.is_free(pf)


def default_max_credits(pf: Preflight) -> int:
    return ingest.default_max_credits(pf)


def budget_advice(pf: Preflight, max_credits: int) -> tuple[str, str]:
    """(a warning that blocks the submit, a note that does not); either may be ''."""
    warning = ingest.over_budget(pf, max_credits)
    return warning, "" if warning else ingest.below_worst_case(pf, max_credits)


def submit_upload(
    user: str,
    parsed: ParsedFile,
    mapping: dict[str, str | None],
    max_credits: int,
    label: str,
    sources: Sequence[str] | None = None,
) -> list[BatchAccepted]:
    return ingest.submit_upload(runtime(), user, parsed, mapping, max_credits, label, sources)


def load_directory(
    user: str,
    parsed: ParsedFile,
    mapping: dict[str, str | None],
    source: BinaryIO | None = None,
    *,
    replace: bool = True,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[int, int]:
    """Replace the reference directory with the mapped file (or add it: ``replace=False``),
    streamed from ``source`` (the uploaded file); (rows read, rows loaded). ``progress``
    is told the rows read and the share of the file read as it goes."""
    return directory_upload.load(
        runtime(), parsed, mapping, source, loaded_by=user, replace=replace, progress=progress
    )


def max_upload_mb(purpose: Purpose = BATCH) -> int:
    """The upload limit in Streamlit's MB (1,048,576 bytes, as every size shown here)."""
    return -(-purpose.limits(settings()).max_bytes // (1024 * 1024))


def per_record_worst_case() -> int:
    return worst_case(runtime().source_prices())


def pays_only_for_found() -> bool:
    """True when no source charges for a lookup that finds nothing (the default prices)."""
    return all(p.not_found_cost == 0 for p in runtime().source_prices())


def batch_source_choices() -> list[str]:
    """What a batch may choose from: the current waterfall, in order (the default)."""
    return [s.name for s in runtime().current_sources()]


# --- runs ----------------------------------------------------------------------------------


def run_outcomes(user: str, run_id: str, *, admin: bool = False) -> list[RecordOutcome]:
    return service.run_outcomes(runtime(), user, run_id, admin=admin)


def download(user: str, run_id: str, name: str, *, admin: bool = False) -> bytes:
    return service.download(runtime(), user, run_id, name, admin=admin)


# --- batches: an upload (its parts and re-runs) as one thing -------------------------------


def get_batch(user: str, batch_id: str, *, admin: bool = False) -> Batch:
    return batches.get_batch(runtime(), user, batch_id, admin=admin)


def batch_of_run(user: str, run_id: str, *, admin: bool = False) -> str:
    return batches.batch_of_run(runtime(), user, run_id, admin=admin)


def batch_page(
    user: str,
    query: BatchQuery,
    page: int,
    page_size: int,
    *,
    admin: bool = False,
) -> BatchPage:
    """Page ``page`` (from 1) of the batches ``query`` picks, newest first; a user sees
    only their own (an admin: ``query.owner``'s, or everyone's when it is None)."""
    scoped = (
        query if admin else BatchQuery(user, query.state, query.search, query.since, query.until)
    )
    with runtime().db.connect() as conn:
        return batch_views.batch_page(conn, scoped, page_size, (max(1, page) - 1) * page_size)


def batch_overview(user: str, *, admin: bool = False, owner: str | None = None) -> BatchOverview:
    """How many batches (active ones, the newest) the user (an admin: ``owner``, or
    everyone) has, from aggregates."""
    with runtime().db.connect() as conn:
        return batch_views.batch_overview(conn, owner if admin else user)


def batch_rows_page(
    user: str,
    batch_id: str,
    row_filter: str,
    page: int,
    page_size: int,
    *,
    admin: bool = False,
) -> tuple[list[RecordOutcome], int]:
    """Page ``page`` (from 1) of the batch's settled rows passing ``row_filter``
    (``ROW_FILTERS``), in upload order, and how many rows pass it."""
    with runtime().db.connect() as conn:
        rows = batch_views.batch_rows(conn, batch_id, None if admin else user)
        offset = (max(1, page) - 1) * page_size
        return batch_views.outcome_page(conn, rows, row_filter, page_size, offset)


def batch_source_tally(
    user: str, batch_id: str, *, admin: bool = False
) -> dict[tuple[str, str | None], int]:
    """(source, status) -> rows over the batch's rows (each row's newest outcome)."""
    with runtime().db.connect() as conn:
        rows = batch_views.batch_rows(conn, batch_id, None if admin else user)
        return batch_views.outcome_tally(conn, rows)


def cancel_batch(user: str, batch_id: str, *, admin: bool = False) -> Batch:
    return batches.cancel_batch(runtime(), user, batch_id, admin=admin)


def batch_rerunnable_count(user: str, batch_id: str) -> int:
    return batches.batch_rerunnable_count(runtime(), user, batch_id)


def rerun_batch(user: str, batch_id: str, max_credits: int) -> list[BatchAccepted]:
    return batches.rerun_batch(runtime(), user, batch_id, max_credits)


def download_batch(
    user: str, batch_id: str, name: str, version: int, *, admin: bool = False
) -> bytes:
    return batches.download_batch(runtime(), user, batch_id, name, version, admin=admin)


def batch_deliveries(user: str, batch_id: str, *, admin: bool = False) -> list[notify.RunDelivery]:
    """The notifications about the batch's runs (their webhooks, the batch's), oldest first."""
    batch = get_batch(user, batch_id, admin=admin)  # NotFound unless theirs (or an admin)
    seen: dict[int, notify.RunDelivery] = {}
    with runtime().db.connect() as conn:
        for part in batch.parts:
            for d in notify.run_deliveries(conn, part.run.run_id):
                seen.setdefault(d.id, d)
    return sorted(seen.values(), key=lambda d: d.id)
