"""Response bodies of the HTTP API (the request body is ``phone_core.models.BatchCreate``).

Field names follow the public batch API description (version 1.4.1); the OpenAPI examples
below are the ones that description shows.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from phone_core.models import RunCounts, RunState

API_VERSION = "1.4.1"

EXAMPLE_RUN_ID = "0b7c2f4e-4d1a-4d8e-9a51-2f0f6a1c9e11"
EXAMPLE_REQUEST_ID = "3f2b8c1d9e0a4b7c8d6e5f4a3b2c1d0e"


class ErrorBody(BaseModel):
    """Every non-422 error: ``error`` always, the other fields when they apply."""

    error: str = Field(description="Error message")
    details: Any = Field(default=None, description="Additional error details")
    request_id: str | None = Field(default=None, description="Request ID for tracking")
    credits_required: int | None = Field(
        default=None, description="Credits required for insufficient credit errors"
    )
    credits_remaining: int | None = Field(
        default=None, description="Credits remaining for insufficient credit errors"
    )
    retry_after: int | None = Field(
        default=None, description="Seconds to wait before retrying for rate limit errors"
    )


class ValidationItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorBody(BaseModel):
    """FastAPI's schema-violation shape, trimmed to ``loc``, ``msg`` and ``type``."""

    detail: list[ValidationItem]


class DeliveryAttempt(BaseModel):
    attempt: int
    at: datetime
    status: int | None = Field(description="The receiver's HTTP status, when it answered")
    error: str | None = Field(
        description="Why it was not delivered when there was no answer (timeout, ...)"
    )


class RunDelivery(BaseModel):
    id: str = Field(description="The X-Phone-Delivery header of its POSTs")
    event: str = Field(description="run.finished (the request's webhook_url) or batch.finished")
    destination: str = Field(description="run_webhook or user_webhook (your Account page)")
    state: str = Field(description="pending (retrying), delivered or failed")
    attempts: list[DeliveryAttempt]
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    created_at: datetime


class RunDeliveries(BaseModel):
    run_id: str
    deliveries: list[RunDelivery]


class RunStatus(BaseModel):
    """A run as the API shows it to its owner."""

    run_id: str
    state: RunState
    counts: RunCounts = Field(description="Records by status; `pending` are not done yet")
    max_credits: int
    credits_spent: int
    credits_held: int = Field(description="Part of max_credits still held (0 once finished)")
    cancel_requested: bool
    notice: str = Field(description="A message about the run, e.g. a source that failed")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    result_path: str
    credits_csv_path: str
    result_url: str | None = Field(
        description="Short-lived presigned download URL of results.csv, once finished"
    )
    credits_csv_url: str | None = Field(
        description="Short-lived presigned download URL of credits.csv, once finished"
    )
    urls_expire_in: int | None = Field(description="Seconds the download URLs stay valid")


class CreditHold(BaseModel):
    run_id: str
    credits_held: int


class CreditsRemaining(BaseModel):
    remaining_credits: int = Field(description="Credits a new batch may hold now")
    total_credits: int = Field(description="Account balance: grants minus charges")
    held_credits: int = Field(description="Credits held by queued and running batches")
    holds: list[CreditHold]
    monthly_limit: int | None
    spent_this_month: int


class UsageItem(BaseModel):
    date: date
    run_id: str | None
    credits: int


class CreditsUsage(BaseModel):
    start_date: date
    end_date: date = Field(description="Inclusive")
    run_id: str | None
    credits_used: int
    breakdown: list[UsageItem] = Field(description="Credits by day and run, newest day first")


def _error_example(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "error": "",
        "details": None,
        "request_id": EXAMPLE_REQUEST_ID,
        "credits_required": None,
        "credits_remaining": None,
        "retry_after": None,
    }
    body.update(fields)
    return body


def _doc(model: type[BaseModel], description: str, example: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": model,
        "description": description,
        "content": {"application/json": {"example": example}},
    }


AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _doc(
        ErrorBody,
        "Missing, malformed, unknown or revoked API key",
        _error_example(error="invalid or missing API key", details="unknown API key"),
    ),
    429: _doc(
        ErrorBody,
        "Too many requests for this API key, or too many failed key attempts from this "
        "client or for this key id (`error` says which; wait `Retry-After` seconds)",
        _error_example(
            error="rate limit exceeded", details="120 requests per minute", retry_after=7
        ),
    ),
    500: _doc(
        ErrorBody,
        "Internal error (nothing internal is shown)",
        _error_example(error="internal error"),
    ),
}

VALIDATION_ERROR: dict[int | str, dict[str, Any]] = {
    422: _doc(
        ValidationErrorBody,
        "Schema violation",
        {
            "detail": [
                {
                    "loc": ["body", "entity_type"],
                    "msg": "Input should be 'person'",
                    "type": "literal_error",
                }
            ]
        },
    )
}

BAD_REQUEST: dict[int | str, dict[str, Any]] = {
    400: _doc(
        ErrorBody,
        "Well-formed but unusable request",
        _error_example(error="bad request", details="start_date is after end_date"),
    )
}

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: _doc(ErrorBody, "No such run for this caller", _error_example(error="not found"))
}

SUBMIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "Accepted: the batch is queued",
        "content": {
            "application/json": {
                "example": {
                    "run_id": EXAMPLE_RUN_ID,
                    "result_path": f"s3://phone-enrich/phone/runs/{EXAMPLE_RUN_ID}/results.csv",
                    "credits_csv_path": (
                        f"s3://phone-enrich/phone/runs/{EXAMPLE_RUN_ID}/credits.csv"
                    ),
                }
            }
        },
    },
    **BAD_REQUEST,
    **AUTH_ERRORS,
    402: _doc(
        ErrorBody,
        "Not enough credits to hold max_credits; nothing was queued",
        _error_example(error="insufficient credits", credits_required=100, credits_remaining=40),
    ),
    409: _doc(
        ErrorBody,
        "A request with this Idempotency-Key is still being processed",
        _error_example(error="idempotency key in use", retry_after=1),
    ),
    **VALIDATION_ERROR,
}
