"""The API contract, status by status, in-process (TestClient) and over real HTTP (uvicorn)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from phone_core import persons, service
from phone_core.models import Person, RunState
from phone_core.runtime import Runtime
from tests.api.conftest import (
    POST,
    REFERENCE_EXAMPLE,
    REFERENCE_IDS,
    ClientFactory,
    auth,
    body,
    check_error_body,
    new_key,
)
from tests.conftest import grant, wait_finished


def test_reference_example_is_accepted(client: httpx.Client, api_rt: Runtime) -> None:
    with api_rt.db.begin() as conn:
        persons.upsert(
            conn,
            "alice",
            [
                Person(id=i, first_name=f"F{n}", last_name=f"L{n}", company_url=f"c{n}.com")
                for n, i in enumerate(REFERENCE_IDS)
            ],
        )
    grant(api_rt, "alice", 100)
    key = new_key(api_rt, "alice")

    r = client.post(POST, json=REFERENCE_EXAMPLE, headers=auth(key))

    assert r.status_code == 202, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-request-id"]
    data = r.json()
    assert set(data) == {"run_id", "result_path", "credits_csv_path"}
    run_id = data["run_id"]
    assert str(uuid.UUID(run_id)) == run_id
    prefix = f"s3://{api_rt.settings.s3_bucket}/{api_rt.settings.s3_prefix}/runs/{run_id}"
    assert data["result_path"] == f"{prefix}/results.csv"
    assert data["credits_csv_path"] == f"{prefix}/credits.csv"
    run = wait_finished(api_rt, "alice", run_id)
    assert run.counts.total == 3
    assert run.counts.skipped == 0  # the ids were found in alice's person store
    assert run.counts.not_found == 3


def test_run_status_fields(client: httpx.Client, api_rt: Runtime) -> None:
    grant(api_rt, "alice", 50)
    key = new_key(api_rt, "alice")
    run_id = client.post(POST, json=body(), headers=auth(key)).json()["run_id"]
    wait_finished(api_rt, "alice", run_id)

    r = client.get(f"/v1/agents/runs/{run_id}", headers=auth(key))

    assert r.status_code == 200
    data = r.json()
    assert set(data) == {
        "run_id", "state", "counts", "max_credits", "credits_spent", "credits_held",
        "cancel_requested", "notice", "created_at", "started_at", "finished_at",
        "result_path", "credits_csv_path", "result_url", "credits_csv_url", "urls_expire_in",
    }  # fmt: skip
    assert data["run_id"] == run_id
    assert data["state"] == RunState.COMPLETED.value
    assert data["counts"] == {
        "total": 1, "pending": 0, "found": 0, "not_found": 1, "cached": 0, "duplicate": 0,
        "skipped": 0, "not_processed": 0, "error": 0, "duplicate_with_phone": 0,
        "suppressed": 0, "dnc_flagged": 0,  # issue 13: do-not-call lists
    }  # fmt: skip
    assert (data["max_credits"], data["credits_spent"], data["credits_held"]) == (10, 0, 0)
    assert data["cancel_requested"] is False
    for field in ("created_at", "started_at", "finished_at"):
        assert datetime.fromisoformat(data[field]).tzinfo is not None
    assert data["result_path"].endswith(f"/runs/{run_id}/results.csv")
    assert data["credits_csv_path"].endswith(f"/runs/{run_id}/credits.csv")
    assert f"/runs/{run_id}/results.csv?" in data["result_url"]
    assert f"/runs/{run_id}/credits.csv?" in data["credits_csv_url"]
    assert "X-Amz-Signature=" in data["result_url"]
    assert data["urls_expire_in"] == api_rt.settings.presign_ttl_sec


def test_queued_run_holds_and_has_no_urls(make_client: ClientFactory, frozen_rt: Runtime) -> None:
    client = make_client(frozen_rt)
    grant(frozen_rt, "alice", 100)
    key = new_key(frozen_rt, "alice")
    run_id = client.post(POST, json=body(max_credits=30), headers=auth(key)).json()["run_id"]

    status = client.get(f"/v1/agents/runs/{run_id}", headers=auth(key)).json()
    remaining = client.get("/v1/credits/remaining", headers=auth(key))

    assert status["state"] == "queued"
    assert (status["credits_held"], status["started_at"], status["finished_at"]) == (30, None, None)
    assert status["counts"]["pending"] == status["counts"]["total"] == 1
    assert (status["result_url"], status["credits_csv_url"], status["urls_expire_in"]) == (
        None,
        None,
        None,
    )
    assert remaining.status_code == 200
    assert remaining.json() == {
        "remaining_credits": 70,
        "total_credits": 100,
        "held_credits": 30,
        "holds": [{"run_id": run_id, "credits_held": 30}],
        "monthly_limit": None,
        "spent_this_month": 0,
    }


def test_402_holds_nothing(client: httpx.Client, api_rt: Runtime) -> None:
    grant(api_rt, "alice", 5)
    key = new_key(api_rt, "alice")

    r = client.post(POST, json=body(max_credits=10), headers=auth(key))

    assert r.status_code == 402
    data = r.json()
    check_error_body(data, "insufficient credits")
    assert data["credits_required"] == 10
    assert data["credits_remaining"] == 5
    assert data["retry_after"] is None
    assert service.list_runs(api_rt, "alice") == []
    assert client.get("/v1/credits/remaining", headers=auth(key)).json()["remaining_credits"] == 5


def test_429_per_key(make_client: ClientFactory, make_runtime: Callable[..., Runtime]) -> None:
    rt = make_runtime(api_rate_per_minute=3)
    client = make_client(rt)
    grant(rt, "alice", 100)
    key, other_key = new_key(rt, "alice"), new_key(rt, "alice")
    for _ in range(3):
        assert client.get("/v1/credits/remaining", headers=auth(key)).status_code == 200

    r = client.post(POST, json=body(), headers=auth(key))

    assert r.status_code == 429
    data = r.json()
    check_error_body(data, "rate limit exceeded")
    assert isinstance(data["retry_after"], int) and 1 <= data["retry_after"] <= 60
    assert r.headers["retry-after"] == str(data["retry_after"])
    assert service.list_runs(rt, "alice") == []
    # a malformed body is throttled too, and another key of the same user is not
    bad = client.post(POST, content=b"{", headers={**auth(key), "Content-Type": "application/json"})
    assert bad.status_code == 429
    assert client.get("/v1/credits/remaining", headers=auth(other_key)).status_code == 200


def test_500_hides_internals(
    client: httpx.Client,
    api_rt: Runtime,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    grant(api_rt, "alice", 100)
    key = new_key(api_rt, "alice")
    secret = "boom for john@example.com at +15551234567"

    def explode(*_a: object, **_k: object) -> None:
        raise RuntimeError(secret)

    monkeypatch.setattr(service, "submit_batch", explode)
    server_log = logging.getLogger("uvicorn.error")  # does not propagate to caplog's root
    server_log.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.ERROR, logger="phone_core.api"):
            r = client.post(POST, json=body(), headers={**auth(key), "X-Request-ID": "trace-500"})
    finally:
        server_log.removeHandler(caplog.handler)

    assert r.status_code == 500
    data = r.json()
    check_error_body(data, "internal error")
    assert data["request_id"] == "trace-500" == r.headers["x-request-id"]
    assert "boom" not in r.text and "RuntimeError" not in r.text
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "trace-500" in logged and "RuntimeError" in logged
    assert "Exception in ASGI application" not in logged  # uvicorn's log would carry the text
    for rec in caplog.records:
        text = rec.getMessage() + "".join(map(str, rec.exc_info or ()))
        assert "john@example.com" not in text and "+15551234567" not in text
        assert key not in text


def test_usage(client: httpx.Client, api_rt: Runtime) -> None:
    from phone_core.sources.directory import load_rows

    load_rows(
        api_rt.db,
        [{"first_name": "John", "last_name": "Smith", "company_url": "acme.com",
          "phone": "+1 212 555 0101"}],
        file_name="t.csv", loaded_by="test",
    )  # fmt: skip
    grant(api_rt, "alice", 100)
    key = new_key(api_rt, "alice")
    records = [{"first_name": "John", "last_name": "Smith", "company_url": "https://acme.com"}]
    run_id = client.post(POST, json=body(records=records), headers=auth(key)).json()["run_id"]
    assert wait_finished(api_rt, "alice", run_id).credits_spent == 1
    today = datetime.now(UTC).date().isoformat()

    r = client.get(f"/v1/credits/usage?start_date={today}&end_date={today}", headers=auth(key))

    assert r.status_code == 200
    assert r.json() == {
        "start_date": today,
        "end_date": today,
        "run_id": None,
        "credits_used": 1,
        "breakdown": [{"date": today, "run_id": run_id, "credits": 1}],
    }
    one = client.get(
        f"/v1/credits/usage?start_date={today}&end_date={today}&run_id={run_id}",
        headers=auth(key),
    ).json()
    assert (one["run_id"], one["credits_used"]) == (run_id, 1)
    before = client.get(
        "/v1/credits/usage?start_date=2020-01-01&end_date=2020-12-31", headers=auth(key)
    ).json()
    assert (before["credits_used"], before["breakdown"]) == (0, [])
    wide = client.get(
        "/v1/credits/usage?start_date=0001-01-01&end_date=9999-12-31", headers=auth(key)
    ).json()
    assert wide["credits_used"] == 1
    remaining = client.get("/v1/credits/remaining", headers=auth(key)).json()
    assert (remaining["remaining_credits"], remaining["spent_this_month"]) == (99, 1)
