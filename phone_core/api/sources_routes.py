"""The sources endpoints: one person looked up now, and per-source figures for admins.

``POST /v1/enrich/phone`` speaks the Lantern-compatible wire format (``sources.lantern_wire``)
so another install's ``lantern`` source can point at this one. ``GET /v1/sources/stats``
needs the key of an admin of this install.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from phone_core import single, source_report, users
from phone_core.api.context import request_id_of
from phone_core.api.errors import ApiError
from phone_core.api.routes import IsoDate
from phone_core.api.schemas import AUTH_ERRORS, BAD_REQUEST, VALIDATION_ERROR, ErrorBody, _doc
from phone_core.api.security import AuthenticatedRoute, Caller, current_caller, runtime_of
from phone_core.runtime import Runtime

router = APIRouter(route_class=AuthenticatedRoute)
CallerDep = Annotated[Caller, Depends(current_caller)]
Field500 = Annotated[str | None, Field(default=None, max_length=500)]


class EnrichPhoneRequest(BaseModel):
    """One person, as the Lantern-compatible source sends it."""

    model_config = ConfigDict(extra="ignore")

    record_id: Annotated[str | None, Field(default=None, max_length=200)] = None
    first_name: Field500 = None
    last_name: Field500 = None
    company: Field500 = None
    domain: Field500 = None
    linkedin_id: Field500 = None
    email: Field500 = None
    company_name: Field500 = None
    company_url: Field500 = None
    linkedin: Field500 = None


class EnrichPhoneResponse(BaseModel):
    record_id: str | None
    phone_number: str | None = Field(description="E.164 when found, else null")
    status: str = Field(description="found or not_found")
    source: str | None = Field(description="The source that found it (cache included)")
    cached: bool
    credits_consumed: int
    request_id: str


@router.post(
    "/v1/enrich/phone",
    response_model=EnrichPhoneResponse,
    responses={
        **BAD_REQUEST,
        **AUTH_ERRORS,
        402: _doc(ErrorBody, "Not enough credits for the worst case of one lookup", {}),
        502: _doc(ErrorBody, "Every source failed on this person; try again later", {}),
        **VALIDATION_ERROR,
    },
    summary="Phone enrichment, one record",
    description=(
        "Look one person up now: cache first, then the waterfall; charged like a batch "
        "record. The same wire format as the Lantern-compatible source, so an install "
        "can be another's upstream."
    ),
)
async def enrich_phone(request: Request, caller: CallerDep, req: EnrichPhoneRequest) -> Any:
    rt = runtime_of(request)
    fields = single.person_of(req.model_dump(exclude={"record_id"}))
    res = await single.enrich_one(rt, caller.user, fields, req.record_id or "")
    rid = request_id_of(request)
    if res.error:
        return JSONResponse(
            ErrorBody(
                error="no source could answer for this person",
                details=res.detail,
                request_id=rid,
            ).model_dump(mode="json"),
            status_code=502,
        )
    return EnrichPhoneResponse(
        record_id=req.record_id,
        phone_number=res.phone,
        status="found" if res.phone else "not_found",
        source=res.source or None,
        cached=res.cached,
        credits_consumed=res.credits,
        request_id=rid,
    )


def require_admin(rt: Runtime, caller: Caller) -> None:
    with rt.db.connect() as conn:
        user = users.get(conn, caller.user)
    if user is None or not user.is_admin or not user.active:
        raise ApiError(403, "admin only", "this endpoint needs the API key of an admin")


@router.get(
    "/v1/sources/stats",
    responses={**BAD_REQUEST, **AUTH_ERRORS, 403: _doc(ErrorBody, "Not an admin's key", {})},
    summary="Per-source figures (admins)",
    description=(
        "Per source over a period (UTC dates, both inclusive; default the last 30 days): "
        "lookups, phones found, hit rate, credits charged, cost per phone found, latency "
        "p50/p95, errors by kind; and the suggested order (expected credits per phone found)."
    ),
)
def sources_stats(
    request: Request,
    caller: CallerDep,
    start_date: Annotated[IsoDate | None, Query(description="First day (UTC)")] = None,
    end_date: Annotated[IsoDate | None, Query(description="Last day (UTC), inclusive")] = None,
) -> dict[str, Any]:
    rt = runtime_of(request)
    require_admin(rt, caller)
    start, end = source_report.period(start_date, end_date)
    return source_report.report(rt.db, rt.settings, start, end)
