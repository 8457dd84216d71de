"""``GET /v1/audit``: the audit log for programs (a SIEM, a compliance export), admin
keys only: a key whose user has the admin role. Anyone else gets 403, whatever they ask.

Newest first; filters by actor, action and UTC dates (both inclusive); pages back with
``before_id`` (the ``next_before_id`` of the previous page).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from phone_core import audit, users
from phone_core.api.errors import ApiError
from phone_core.api.schemas import AUTH_ERRORS, BAD_REQUEST, VALIDATION_ERROR, ErrorBody
from phone_core.api.security import AuthenticatedRoute, Caller, current_caller, runtime_of
from phone_core.errors import InputError

router = APIRouter(route_class=AuthenticatedRoute)
CallerDep = Annotated[Caller, Depends(current_caller)]
PAGE_MAX = 1000


class AuditEntry(BaseModel):
    id: int
    at: str = Field(description="When, UTC (YYYY-MM-DDTHH:MM:SSZ)")
    actor: str = Field(description="Who: a username, cli:<os user>, or system")
    action: str
    target: str = Field(description="What was acted on: a username, key id, list name...")
    detail: dict[str, Any]
    ip: str = Field(description="From where (the client address, when known)")
    via: str = Field(description="web, api or cli")


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    next_before_id: int | None = Field(
        description="Pass as before_id for the next (older) page; null on the last page"
    )


FORBIDDEN: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "The API key's user is not an admin"}
}


@router.get(
    "/v1/audit",
    response_model=AuditPage,
    responses={**FORBIDDEN, **BAD_REQUEST, **AUTH_ERRORS, **VALIDATION_ERROR},
    summary="Audit log (admin keys)",
    description="Who did what, when and from where; newest first. Admin keys only.",
)
def get_audit(
    request: Request,
    caller: CallerDep,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=50)] = None,
    start_date: Annotated[date | None, Query(description="First day (UTC)")] = None,
    end_date: Annotated[date | None, Query(description="Last day (UTC), inclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 200,
    before_id: Annotated[int | None, Query(ge=1)] = None,
) -> AuditPage:
    rt = runtime_of(request)
    with rt.db.connect() as conn:
        user = users.get(conn, caller.user)
        if user is None or not user.is_admin:
            raise ApiError(403, "forbidden", "the audit log is for admin keys only")
        if start_date and end_date and start_date > end_date:
            raise InputError("start_date is after end_date")
        since = datetime.combine(start_date, time.min) if start_date else None
        until = (
            datetime.combine(end_date + timedelta(days=1), time.min)
            if end_date and end_date < date.max
            else None
        )
        entries = audit.query(
            conn,
            actor=actor,
            action=action,
            since=since,
            until=until,
            limit=limit,
            before_id=before_id,
        )
    return AuditPage(
        entries=[AuditEntry(**e.as_json()) for e in entries],
        next_before_id=entries[-1].id if len(entries) == limit else None,
    )
