"""Pydantic contracts shared by the engine, the web app and the HTTP API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

MAX_BATCH = 1000
# The largest grant, monthly limit or hold: far above any real budget, and well inside
# the 32-bit integer columns of every supported database.
MAX_CREDIT_AMOUNT = 1_000_000_000

# Sizes of the state-DB columns that caller text lands in. ``db.py`` sizes its columns with
# these and the request models below validate with them, so the two cannot drift apart:
# text that passes the model always fits its column (PostgreSQL enforces the sizes).
ID_MAX_LEN = 200  # persons.id, run_records.person_id
PERSON_TEXT_MAX_LEN = 500  # every other person field, in persons and run_records
RUN_ID_MAX_LEN = 64  # runs.run_id and every column that refers to a run
IDENTITY_MAX_LEN = 1200  # run_records.identity, cache.identity (see records.identity_key)

RESULT_COLUMNS: tuple[str, ...] = (
    "id",
    "first_name",
    "last_name",
    "company_name",
    "company_url",
    "linkedin",
    "phone_number",
    "phone_found",
)
CREDIT_COLUMNS: tuple[str, ...] = ("id", "status", "source", "credits_charged", "detail")
PERSON_FIELDS: tuple[str, ...] = (
    "id",
    "first_name",
    "last_name",
    "company_name",
    "company_url",
    "linkedin",
    "email",
)


@dataclass(frozen=True)
class OutputFile:
    """One file a run produces in S3: its name, MIME type, and how it is offered."""

    name: str
    mime: str
    label: str
    description: str
    contract: bool  # results.csv / credits.csv: the batch API's files, written first


CSV_TYPE = "text/csv"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# The contract files are machine files: cells exactly as given (the batch API's contract),
# so a cell such as "=HYPERLINK(...)" is not neutralised there. The enriched exports are
# the spreadsheet files: formula-safe, headers included.
_MACHINE = " A machine file for programs: open the enriched file in a spreadsheet instead."
RESULTS_FILE = OutputFile(
    "results.csv",
    CSV_TYPE,
    "results.csv (for programs)",
    "The batch API's results file: one row per input record." + _MACHINE,
    True,
)
CREDITS_FILE = OutputFile(
    "credits.csv",
    CSV_TYPE,
    "credits.csv (for programs)",
    "What each record cost, and why." + _MACHINE,
    True,
)
ENRICHED_CSV_FILE = OutputFile(
    "enriched.csv",
    CSV_TYPE,
    "Enriched CSV",
    "Your original columns plus the phone; safe to open in a spreadsheet.",
    False,
)
ENRICHED_XLSX_FILE = OutputFile(
    "enriched.xlsx",
    XLSX_TYPE,
    "Enriched Excel",
    "Your original columns plus the phone, as an Excel workbook.",
    False,
)
ENRICHED_EXCEL_CSV_FILE = OutputFile(
    "enriched-excel.csv",
    CSV_TYPE,
    "Excel-friendly CSV",
    "The enriched CSV for Excel in a language other than English (e.g. German or French):"
    " your file's own separator, accents kept, and phone numbers and IDs shown as written."
    " For other programs, use the Enriched CSV.",
    False,
)
OUTPUT_FILES: dict[str, OutputFile] = {
    f.name: f
    for f in (
        RESULTS_FILE,
        CREDITS_FILE,
        ENRICHED_CSV_FILE,
        ENRICHED_XLSX_FILE,
        ENRICHED_EXCEL_CSV_FILE,
    )
}

ENRICHED_EXTRA_COLUMNS: tuple[str, ...] = (
    "phone_e164",
    "phone_type",
    "phone_country",
    "status",
    "source",
    "credits_charged",
    "dnc",  # true when the phone or the person is on a suppression (do-not-call) list
    "dnc_list",  # the names of those lists, ";"-joined
)


class RunState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    CREDIT_LIMIT_REACHED = "credit_limit_reached"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self not in (RunState.QUEUED, RunState.RUNNING)


class RecordStatus(StrEnum):
    FOUND = "found"
    NOT_FOUND = "not_found"
    CACHED = "cached"
    DUPLICATE = "duplicate"
    SKIPPED = "skipped"
    NOT_PROCESSED = "not_processed"
    ERROR = "error"
    SUPPRESSED = "suppressed"  # on a do-not-call list with PHONE_DNC_MODE=withhold: no phone

    @property
    def carries_phone(self) -> bool:
        """Statuses whose record may hold a phone (its own, the cache's, or its first row's)."""
        return self in (RecordStatus.FOUND, RecordStatus.CACHED, RecordStatus.DUPLICATE)


class Detail(StrEnum):
    """Why a record ended the way it did (the ``detail`` column of credits.csv)."""

    MISSING_REQUIRED_FIELDS = "missing_required_fields"
    UNKNOWN_ID = "unknown_id"
    CREDIT_LIMIT = "credit_limit"
    CANCELLED = "cancelled"
    RUN_FAILED = "run_failed"
    NO_MATCH = "no_match"
    INVALID_PHONE = "invalid_phone"
    UPSTREAM_TIMEOUT = "upstream_timeout"
    UPSTREAM_5XX = "upstream_5xx"
    UPSTREAM_AUTH = "upstream_auth"
    UPSTREAM_CREDITS = "upstream_credits"
    UPSTREAM_RATE_LIMITED = "upstream_rate_limited"
    UPSTREAM_BAD_RESPONSE = "upstream_bad_response"
    UPSTREAM_CONNECTION = "upstream_connection"
    UPSTREAM_CIRCUIT_OPEN = "upstream_circuit_open"
    UPSTREAM_REJECTED = "upstream_rejected"
    UPSTREAM_INCOMPLETE = "upstream_incomplete"  # a bulk/async answer left this record out
    UPSTREAM_JOB_UNKNOWN = "upstream_job_unknown"  # an async job was sent; its id was lost


def refuse_nul(value: str) -> str:
    """NUL passes JSON and Python but no PostgreSQL text column: refuse it at the edge."""
    if "\x00" in value:
        raise ValueError("NUL characters are not allowed")
    return value


NoNul = AfterValidator(refuse_nul)
IdText = Annotated[str, StringConstraints(max_length=ID_MAX_LEN), NoNul]
Text = Annotated[str, StringConstraints(max_length=PERSON_TEXT_MAX_LEN), NoNul]


class PersonRecord(BaseModel):
    """A person as given by a caller: every field optional except what makes it enrichable."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: IdText | None = None
    first_name: Text | None = None
    last_name: Text | None = None
    company_name: Text | None = None
    company_url: Text | None = None
    linkedin: Text | None = None
    email: Text | None = None


# The longest value each PersonRecord field takes (its column's size).
PERSON_FIELD_MAX_LEN: dict[str, int] = {
    name: ID_MAX_LEN if name == "id" else PERSON_TEXT_MAX_LEN for name in PERSON_FIELDS
}


class Person(BaseModel):
    """A normalised record with an id, as kept in the person store and in a run."""

    id: str
    first_name: str = ""
    last_name: str = ""
    company_name: str = ""
    company_url: str = ""
    linkedin: str = ""
    email: str = ""


# The request example of the public batch API description, as given there.
REFERENCE_EXAMPLE: dict[str, Any] = {
    "ids": [
        "550e8400-e29b-41d4-a716-446655440001",
        "550e8400-e29b-41d4-a716-446655440002",
        "550e8400-e29b-41d4-a716-446655440003",
    ],
    "entity_type": "person",
    "max_credits": 100,
}

BatchId = Annotated[str, StringConstraints(min_length=1, max_length=ID_MAX_LEN), NoNul]
WEBHOOK_URL_MAX_LEN = 2000


def _http_url(value: str) -> str:
    if not value.lower().startswith(("https://", "http://")):
        raise ValueError("webhook_url must be an https:// (or http://) address")
    return value


WebhookUrl = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=8, max_length=WEBHOOK_URL_MAX_LEN),
    NoNul,
    AfterValidator(_http_url),
]


class BatchCreate(BaseModel):
    """The batch request body: exactly one of ``ids`` or ``records``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [REFERENCE_EXAMPLE]},
    )

    ids: Annotated[list[BatchId], Field(min_length=1, max_length=MAX_BATCH)] | None = Field(
        default=None, description="List of IDs to process for phone enrichment"
    )
    records: Annotated[list[PersonRecord], Field(min_length=1, max_length=MAX_BATCH)] | None = (
        Field(default=None, description="List of record objects to process for phone enrichment")
    )
    entity_type: Literal["person"] = Field(
        description="Type of entity being processed (must be 'person' for phone enrichment)"
    )
    max_credits: int = Field(
        ge=1,
        le=MAX_CREDIT_AMOUNT,
        strict=True,
        description="Maximum credits this request is allowed to consume",
    )
    # An extension of the reference request (issue 13): optional, so the reference's
    # requests and answers are unchanged.
    webhook_url: WebhookUrl | None = Field(
        default=None,
        description=(
            "Optional. When the run ends, a JSON POST goes here (run_id, state, counts, "
            "credits_spent, result_path, credits_csv_path), signed with your signing secret "
            "(X-Phone-Timestamp, X-Phone-Signature-256: sha256 HMAC of '<timestamp>.' + body) "
            "and retried with backoff for up to a day. https (or http) to a public address."
        ),
    )
    sources: (
        Annotated[list[Annotated[str, Field(max_length=50)]], Field(min_length=1, max_length=20)]
        | None
    ) = Field(
        default=None,
        description=(
            'Optional: only these sources, by name (e.g. ["directory", "lantern"]), in the '
            "admin's waterfall order; default: the whole waterfall. The cache is always used."
        ),
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> BatchCreate:
        if (self.ids is None) == (self.records is None):
            raise ValueError("give exactly one of 'ids' or 'records'")
        return self


class BatchAccepted(BaseModel):
    run_id: str = Field(description="Unique identifier for the batch run")
    result_path: str = Field(description="S3 bucket path where results will be stored")
    credits_csv_path: str = Field(
        description="S3 bucket path where credit usage report will be stored"
    )


class SourceResult(BaseModel):
    """What one source said about one record."""

    source: str
    phone: str | None = None  # E.164 when found
    status: RecordStatus = RecordStatus.NOT_FOUND
    detail: str = ""
    credits: int = 0
    raw: dict[str, Any] = Field(default_factory=dict)
    line_type: str = ""  # of the phone kept: mobile, direct, office, ... ("" unknown)
    verified_at: datetime | None = None  # when the vendor last verified it (else answered)


class RunCounts(BaseModel):
    total: int = 0
    pending: int = 0
    found: int = 0
    not_found: int = 0
    cached: int = 0
    duplicate: int = 0
    skipped: int = 0
    not_processed: int = 0
    error: int = 0
    duplicate_with_phone: int = 0  # duplicate rows that got their first row's phone
    suppressed: int = 0  # withheld: on a do-not-call list (PHONE_DNC_MODE=withhold)
    dnc_flagged: int = 0  # rows whose phone is returned marked do-not-call (flag mode)

    @property
    def processed(self) -> int:
        """Rows with a final outcome (not processed ones included)."""
        return self.total - self.pending

    @property
    def handled(self) -> int:
        """Rows the run really dealt with: processed, less those it never reached."""
        return self.processed - self.not_processed

    @property
    def with_phone(self) -> int:
        """People with a phone (found now or already known): one per distinct person."""
        return self.found + self.cached

    @property
    def rows_with_phone(self) -> int:
        """Rows with a phone: ``phone_found=true`` in results.csv (duplicates included)."""
        return self.with_phone + self.duplicate_with_phone

    @property
    def looked_up(self) -> int:
        """Distinct people looked up (source or cache)."""
        return self.found + self.not_found + self.cached + self.error

    @property
    def found_rate(self) -> float:
        """Share of distinct people looked up (source or cache) that got a phone.

        Duplicates follow their first occurrence and skipped / not processed rows were
        never looked up, so none of them count either way.
        """
        return 0.0 if self.looked_up == 0 else self.with_phone / self.looked_up


class Run(BaseModel):
    run_id: str
    owner: str
    state: RunState
    max_credits: int
    credits_spent: int
    credits_held: int
    counts: RunCounts
    result_path: str
    credits_csv_path: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    cancel_requested: bool = False
    notice: str = ""  # e.g. an upstream auth failure shown on the run
    label: str = ""  # e.g. the uploaded file name
    parent_run_id: str | None = None


class RecordOutcome(BaseModel):
    """One row of a run, as shown in the results table and written to the CSVs."""

    idx: int
    person: Person
    status: RecordStatus | None
    source: str = ""
    phone: str = ""
    credits_charged: int = 0
    detail: str = ""
    source_row: dict[str, str] | None = None
    dnc_list: str = ""  # the suppression lists the phone or person is on ("" when none)


class CreditSummary(BaseModel):
    user: str
    balance: int
    held: int
    available: int
    monthly_limit: int | None
    spent_this_month: int
    granted_total: int


class UsageRow(BaseModel):
    user: str
    day: str
    run_id: str | None
    credits: int


class Preflight(BaseModel):
    """What a batch would do, computed before anything is spent.

    ``to_look_up`` is what the submit button counts: the people the sources will be asked
    about (rows less the skipped, the in-file duplicates and the cache hits).
    ``worst_case_credits`` is the cap (every one of them found by the dearest path);
    ``expected_credits`` and ``expected_found`` follow each source's measured hit rate
    (``hit_rates``: source -> share of the people sent to it that it found; see
    ``credits.expected_cost``).
    """

    rows: int
    enrichable: int
    skipped: dict[str, int]
    duplicates: int
    cache_hits: int
    to_look_up: int
    worst_case_credits: int
    per_record_worst_case: int
    available_credits: int
    runs_needed: int
    expected_credits: int = 0
    expected_found: int = 0
    hit_rates: dict[str, float] = Field(default_factory=dict)


class Confidence(StrEnum):
    """How sure the suggested mapping of a column is (from its score)."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class ColumnRow(BaseModel):
    """One column of an uploaded file as the column-first mapping shows it."""

    column: str
    samples: list[str]  # up to 3 different non-empty values from its first rows
    field: str | None  # the field it is mapped to, or None (carried into the export only)
    confidence: Confidence | None  # None when not mapped


class BatchPart(BaseModel):
    """One run of a batch, shown as a detail: an upload's part, or a re-run's."""

    run: Run
    submission: int  # 1: the upload; 2, 3, ...: its re-runs, in order
    part: int  # 1-based within its submission
    parts: int
    waiting_for: int | None = None  # queued behind this part number of its submission


class BatchVersion(BaseModel):
    """One version of a batch's merged files: 1 when the upload's parts have all
    finished, n + 1 after each re-run."""

    version: int
    created_at: datetime | None
    note: str


class Batch(BaseModel):
    """An upload as one thing: its parts and re-runs combined (phone_core.batch_views)."""

    batch_id: str
    owner: str
    label: str
    state: RunState
    created_at: datetime
    finished_at: datetime | None = None
    counts: RunCounts
    credits_spent: int
    budget: int  # what the user set: the upload's max credits, plus each re-run's
    credits_held: int
    cancel_requested: bool = False
    notice: str = ""
    parts: list[BatchPart]
    versions: list[BatchVersion]
