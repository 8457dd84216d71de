"""The endpoints. Each one acts as the key's user and only ever sees that user's data.

Handlers are plain ``def``: the engine calls are blocking (SQLAlchemy, boto3) and FastAPI
runs them in its thread pool.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BeforeValidator

from phone_core import credits, notify, service
from phone_core.api import idempotency
from phone_core.api.schemas import (
    AUTH_ERRORS,
    BAD_REQUEST,
    NOT_FOUND,
    SUBMIT_RESPONSES,
    VALIDATION_ERROR,
    CreditHold,
    CreditsRemaining,
    CreditsUsage,
    DeliveryAttempt,
    RunDeliveries,
    RunDelivery,
    RunStatus,
    UsageItem,
)
from phone_core.api.security import AuthenticatedRoute, Caller, current_caller, runtime_of
from phone_core.errors import InputError
from phone_core.models import REFERENCE_EXAMPLE, RUN_ID_MAX_LEN, BatchAccepted, BatchCreate
from phone_core.runtime import Runtime

router = APIRouter(route_class=AuthenticatedRoute)
CallerDep = Annotated[Caller, Depends(current_caller)]

RECORDS_EXAMPLE: dict[str, Any] = {
    "records": [
        {
            "id": "550e8400-e29b-41d4-a716-446655440001",
            "first_name": "John",
            "last_name": "Smith",
            "company_name": "Acme Corp",
            "company_url": "https://www.acme.com",
            "linkedin": "https://linkedin.com/in/john-smith-123456789/",
        }
    ],
    "entity_type": "person",
    "max_credits": 10,
}
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_date_only(value: object) -> object:
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise ValueError("expected a date as YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date_only)]


def _utc(value: datetime) -> datetime:
    """The state DB keeps naive UTC; the API says so (``...Z``/``+00:00``)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# A run id as the state DB keeps it (NUL never reaches here: see api/limits.py).
RunId = Annotated[str, Path(max_length=RUN_ID_MAX_LEN, description="The run's id")]


@router.post(
    "/v1/agents/phone",
    status_code=202,
    response_model=BatchAccepted,
    responses=SUBMIT_RESPONSES,
    summary="Phone Enrichment Batch",
    description=(
        "Submit 1-1000 person records (`records`) or ids from your person store (`ids`) for "
        "phone enrichment. `max_credits` is held from your balance until the run ends. "
        "Send an `Idempotency-Key` header to make retries safe (24 hours)."
    ),
)
def submit_batch(
    request: Request,
    caller: CallerDep,
    req: Annotated[
        BatchCreate,
        Body(
            openapi_examples={
                "ids": {"summary": "Submit IDs for processing", "value": REFERENCE_EXAMPLE},
                "records": {"summary": "Submit records for processing", "value": RECORDS_EXAMPLE},
            }
        ),
    ],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=idempotency.HEADER,
            description="Optional; same key and same body within 24 h replay the first 202",
        ),
    ] = None,
) -> Any:
    rt = runtime_of(request)
    check_sources(rt, req.sources)
    key = idempotency.check_key(idempotency_key)
    label = f"API ({caller.key_id})"
    if key is None:
        return service.submit_batch(rt, caller.user, req, label=label)
    replay = idempotency.claim(rt.db, caller.user, key, idempotency.body_hash(req))
    if replay is not None:
        return JSONResponse(replay, status_code=202, headers={"Idempotent-Replayed": "true"})
    try:
        accepted = service.submit_batch(rt, caller.user, req, label=label)
    except BaseException:
        idempotency.release(rt.db, caller.user, key)
        raise
    idempotency.complete(rt.db, caller.user, key, accepted.model_dump(mode="json"))
    return accepted


def check_sources(rt: Runtime, names: list[str] | None) -> None:
    """422 (the schema-violation shape) for a ``sources`` entry this install cannot use."""
    try:
        service.check_sources(rt, names)
    except InputError as exc:
        raise RequestValidationError(
            [{"loc": ("body", "sources"), "msg": str(exc), "type": "value_error"}]
        ) from None


@router.get(
    "/v1/agents/runs/{run_id}",
    response_model=RunStatus,
    responses={**NOT_FOUND, **AUTH_ERRORS, **VALIDATION_ERROR},
    summary="Run status",
    description="State, counts by status, credits, paths; download URLs once finished.",
)
def get_run(request: Request, caller: CallerDep, run_id: RunId) -> RunStatus:
    rt = runtime_of(request)
    run = service.get_run(rt, caller.user, run_id)  # NotFound (missing or not yours) -> 404
    urls = service.presigned_urls(rt, run)
    return RunStatus(
        run_id=run.run_id,
        state=run.state,
        counts=run.counts,
        max_credits=run.max_credits,
        credits_spent=run.credits_spent,
        credits_held=run.credits_held,
        cancel_requested=run.cancel_requested,
        notice=run.notice,
        created_at=_utc(run.created_at),
        started_at=_utc(run.started_at) if run.started_at else None,
        finished_at=_utc(run.finished_at) if run.finished_at else None,
        result_path=run.result_path,
        credits_csv_path=run.credits_csv_path,
        result_url=urls.get("results.csv"),
        credits_csv_url=urls.get("credits.csv"),
        urls_expire_in=rt.settings.presign_ttl_sec if urls else None,
    )


@router.get(
    "/v1/agents/runs/{run_id}/deliveries",
    response_model=RunDeliveries,
    responses={**NOT_FOUND, **AUTH_ERRORS, **VALIDATION_ERROR},
    summary="Run notifications",
    description=(
        "The notifications about the run (its `webhook_url`, and its batch's to your "
        "Account-page webhook), each with every delivery attempt."
    ),
)
def get_run_deliveries(request: Request, caller: CallerDep, run_id: RunId) -> RunDeliveries:
    rt = runtime_of(request)
    service.get_run(rt, caller.user, run_id)  # NotFound (missing or not yours) -> 404
    with rt.db.connect() as conn:
        found = notify.run_deliveries(conn, run_id)
    return RunDeliveries(
        run_id=run_id,
        deliveries=[
            RunDelivery(
                id=str(d.id),
                event=d.event,
                destination=d.destination,
                state=d.state,
                attempts=[
                    DeliveryAttempt(
                        attempt=a.attempt, at=_utc(a.at), status=a.status, error=a.error
                    )
                    for a in d.attempts
                ],
                next_attempt_at=_utc(d.next_attempt_at) if d.next_attempt_at else None,
                delivered_at=_utc(d.delivered_at) if d.delivered_at else None,
                created_at=_utc(d.created_at),
            )
            for d in found
        ],
    )


@router.get(
    "/v1/credits/remaining",
    response_model=CreditsRemaining,
    responses=AUTH_ERRORS,
    summary="Credits remaining",
)
def credits_remaining(request: Request, caller: CallerDep) -> CreditsRemaining:
    rt = runtime_of(request)
    with rt.db.connect() as conn:
        summary = credits.summarize(conn, caller.user)
    holds = [CreditHold(run_id=r, credits_held=n) for r, n in service.active_holds(rt, caller.user)]
    return CreditsRemaining(
        remaining_credits=summary.available,
        total_credits=summary.balance,
        held_credits=summary.held,
        holds=holds,
        monthly_limit=summary.monthly_limit,
        spent_this_month=summary.spent_this_month,
    )


@router.get(
    "/v1/credits/usage",
    response_model=CreditsUsage,
    responses={**BAD_REQUEST, **AUTH_ERRORS, **VALIDATION_ERROR},
    summary="Credits used",
    description="Credits charged between two UTC dates (both inclusive), optionally one run.",
)
def credits_usage(
    request: Request,
    caller: CallerDep,
    start_date: Annotated[IsoDate, Query(description="First day (UTC), YYYY-MM-DD")],
    end_date: Annotated[IsoDate, Query(description="Last day (UTC), YYYY-MM-DD, inclusive")],
    run_id: Annotated[
        str | None, Query(max_length=RUN_ID_MAX_LEN, description="Only this run")
    ] = None,
) -> CreditsUsage:
    if start_date > end_date:
        raise InputError("start_date is after end_date")
    rt = runtime_of(request)
    start = datetime.combine(start_date, time.min)
    end = None if end_date == date.max else datetime.combine(end_date + timedelta(days=1), time.min)
    with rt.db.connect() as conn:
        rows = credits.usage(conn, caller.user, start, end, run_id)
    items = [
        UsageItem(date=date.fromisoformat(r.day), run_id=r.run_id, credits=r.credits) for r in rows
    ]
    return CreditsUsage(
        start_date=start_date,
        end_date=end_date,
        run_id=run_id,
        credits_used=sum(i.credits for i in items),
        breakdown=items,
    )
