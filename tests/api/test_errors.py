"""Error statuses and shapes (401, 400, 404, 422) and X-Request-ID, on both transports.

These only need a user of their own, so they share one install per transport.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from phone_core import keys, service
from phone_core.runtime import Runtime
from tests.api.conftest import (
    POST,
    REFERENCE_EXAMPLE,
    auth,
    body,
    check_error_body,
    check_validation_body,
    fresh_user,
)

Shared = tuple[Runtime, httpx.Client]
ENDPOINTS = [
    ("POST", POST),
    ("GET", f"/v1/agents/runs/{uuid.uuid4()}"),
    ("GET", "/v1/credits/remaining"),
    ("GET", "/v1/credits/usage?start_date=2024-01-01&end_date=2024-01-31"),
]


@pytest.mark.parametrize(
    "header",
    [None, "Basic dXNlcjpwdw==", "Bearer", "Bearer not-a-key", "Bearer pe_abc_def", "revoked"],
)
def test_401(shared: Shared, header: str | None) -> None:
    rt, client = shared
    user, _ = fresh_user(rt, 100)
    headers = {} if header is None else {"Authorization": header}
    if header == "revoked":
        with rt.db.begin() as conn:
            record, key = keys.create(conn, user)
            keys.revoke(conn, user, record.key_id)
        headers = auth(key)

    for method, path in ENDPOINTS:
        r = client.request(method, path, json=body(), headers=headers)

        assert r.status_code == 401, path
        assert r.headers["www-authenticate"] == "Bearer"
        data = r.json()
        check_error_body(data, "invalid or missing API key")
        assert data["request_id"] == r.headers["x-request-id"]
        assert data["credits_required"] is None and data["retry_after"] is None
        assert isinstance(data["details"], str)
        if header and header.startswith("Bearer "):
            assert header.split(" ", 1)[1] not in r.text
    assert service.list_runs(rt, user) == []


def test_401_comes_before_body_parsing(shared: Shared) -> None:
    _, client = shared
    r = client.post(POST, content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 401


RECORD = {"first_name": "A", "last_name": "B", "company_name": "C"}
INVALID_BODIES: dict[str, Any] = {
    "entity_type_company": body(entity_type="company"),
    "entity_type_missing": body(entity_type=...),
    "ids_empty": body(records=..., ids=[]),
    "ids_1001": body(records=..., ids=[f"id{i}" for i in range(1001)]),
    "ids_empty_string": body(records=..., ids=[""]),
    "records_empty": body(records=[]),
    "records_1001": body(records=[RECORD] * 1001),
    "both": body(ids=["x"]),
    "neither": body(records=...),
    "ids_null_only": body(records=..., ids=None),
    "max_credits_0": body(max_credits=0),
    "max_credits_negative": body(max_credits=-5),
    "max_credits_float": body(max_credits=1.5),
    "max_credits_float_integral": body(max_credits=10.0),
    "max_credits_string": body(max_credits="10"),
    "max_credits_bool": body(max_credits=True),
    "max_credits_missing": body(max_credits=...),
    "unknown_field": body(priority="high"),
    "unknown_record_field": body(records=[{**RECORD, "phone": "+15551234567"}]),
    "record_not_object": body(records=["John Smith"]),
    "ids_not_strings": body(records=..., ids=[1, 2]),
    "body_is_list": [REFERENCE_EXAMPLE],
    # NUL passes JSON but no PostgreSQL text column: refused by the model (issue 9, item 12)
    "nul_in_id": body(records=..., ids=["a\x00b"]),
    "nul_in_record": body(records=[{"first_name": "a\x00"}]),
}


@pytest.mark.parametrize("payload", INVALID_BODIES.values(), ids=INVALID_BODIES.keys())
def test_422_schema_violations(shared: Shared, payload: Any) -> None:
    rt, client = shared
    user, key = fresh_user(rt, 100_000)
    r = client.post(POST, json=payload, headers=auth(key))
    assert r.status_code == 422, r.text
    check_validation_body(r.json())
    assert r.headers["x-request-id"]
    assert service.list_runs(rt, user) == []


@pytest.mark.parametrize(
    ("content", "content_type"),
    [(b"{not json", "application/json"), (b"", "application/json"), (b"ids=1", "text/plain")],
)
def test_422_unreadable_body(shared: Shared, content: bytes, content_type: str) -> None:
    rt, client = shared
    _, key = fresh_user(rt)
    r = client.post(POST, content=content, headers={**auth(key), "Content-Type": content_type})
    assert r.status_code == 422
    check_validation_body(r.json())


def test_422_names_the_field(shared: Shared) -> None:
    rt, client = shared
    _, key = fresh_user(rt)
    r = client.post(POST, json=body(entity_type="company"), headers=auth(key))
    assert r.json()["detail"][0]["loc"] == ["body", "entity_type"]
    r = client.post(POST, json=body(max_credits="10"), headers=auth(key))
    assert r.json()["detail"][0]["loc"] == ["body", "max_credits"]
    r = client.post(POST, json=body(ids=["x"]), headers=auth(key))
    assert "exactly one of 'ids' or 'records'" in r.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/v1/credits/usage?start_date=2024-02-01&end_date=2024-01-31", {}),
        ("POST", POST, {"json": body(), "headers": {"Idempotency-Key": "has space"}}),
        ("POST", POST, {"json": body(), "headers": {"Idempotency-Key": "k" * 201}}),
    ],
    ids=["dates_reversed", "idem_key_space", "idem_key_long"],
)
def test_400_unusable(shared: Shared, method: str, path: str, kwargs: dict[str, Any]) -> None:
    rt, client = shared
    user, key = fresh_user(rt, 100)
    kwargs = dict(kwargs)
    headers = {**auth(key), **kwargs.pop("headers", {})}
    r = client.request(method, path, headers=headers, **kwargs)
    assert r.status_code == 400, r.text
    check_error_body(r.json(), "bad request")
    assert isinstance(r.json()["details"], str)
    assert service.list_runs(rt, user) == []


def test_404_unknown_route_and_run(shared: Shared) -> None:
    rt, client = shared
    _, key = fresh_user(rt)
    for path in ("/v1/agents/runs/does-not-exist", "/v1/nothing-here"):
        r = client.get(path, headers=auth(key))
        assert r.status_code == 404
        check_error_body(r.json(), "not found")


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [("abc-123.X:y_z", True), ("has space", False), ("x" * 129, False), (None, False)],
)
def test_request_id(shared: Shared, sent: str | None, echoed: bool) -> None:
    rt, client = shared
    _, key = fresh_user(rt)
    headers = auth(key) if sent is None else {**auth(key), "X-Request-ID": sent}
    for r in (
        client.get("/v1/credits/remaining", headers=headers),  # 200
        client.post(POST, json=body(max_credits=0), headers=headers),  # 422
        client.get("/v1/credits/remaining", headers={"X-Request-ID": sent or ""}),  # 401
        client.get("/v1/agents/runs/nope", headers=headers),  # 404
    ):
        rid = r.headers["x-request-id"]
        assert (rid == sent) is echoed
        assert rid and len(rid) <= 128 and " " not in rid


@pytest.mark.parametrize(
    "query",
    [
        "start_date=2024-13-01&end_date=2024-12-31",
        "start_date=2024-02-30&end_date=2024-03-01",
        "start_date=2024-1-1&end_date=2024-12-31",
        "start_date=yesterday&end_date=2024-12-31",
        "start_date=2024-01-01T00:00:00&end_date=2024-12-31",
        "start_date=1704067200&end_date=2024-12-31",
        "start_date=2024-01-01&end_date=",
        "start_date=2024-01-01",
        "end_date=2024-01-01",
        "",
    ],
)
def test_usage_bad_dates_422(shared: Shared, query: str) -> None:
    rt, client = shared
    _, key = fresh_user(rt)
    r = client.get(f"/v1/credits/usage?{query}", headers=auth(key))
    assert r.status_code == 422
    check_validation_body(r.json())
    assert r.json()["detail"][0]["loc"][0] == "query"
