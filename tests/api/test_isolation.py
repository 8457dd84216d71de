"""A key acts as its user: same credits and person store; never another user's data."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import httpx

from phone_core.runtime import Runtime
from phone_core.sources.directory import load_rows
from tests.api.conftest import POST, RESULT_HEADER, auth, body, check_error_body, new_key
from tests.conftest import grant, wait_finished

ALICE_PEOPLE = [
    {"id": "p1", "first_name": "Alice", "last_name": "Liddell", "company_url": "wonder.land"},
    {"id": "p2", "first_name": "Carol", "last_name": "Dodgson", "company_name": "Christ Church"},
]


def _finished(
    client: httpx.Client, rt: Runtime, user: str, key: str, run_id: str
) -> dict[str, Any]:
    wait_finished(rt, user, run_id)
    r = client.get(f"/v1/agents/runs/{run_id}", headers=auth(key))
    assert r.status_code == 200
    data: dict[str, Any] = r.json()
    return data


def test_other_users_run_looks_missing(client: httpx.Client, api_rt: Runtime) -> None:
    grant(api_rt, "alice", 100)
    alice, bob = new_key(api_rt, "alice"), new_key(api_rt, "bob")
    run_id = client.post(POST, json=body(), headers=auth(alice)).json()["run_id"]
    assert _finished(client, api_rt, "alice", alice, run_id)["result_url"]

    theirs = client.get(f"/v1/agents/runs/{run_id}", headers=auth(bob))
    missing = client.get("/v1/agents/runs/00000000-0000-0000-0000-000000000000", headers=auth(bob))

    assert theirs.status_code == missing.status_code == 404
    check_error_body(theirs.json(), "not found")
    strip = {"request_id": None}
    assert {**theirs.json(), **strip} == {**missing.json(), **strip}
    assert "X-Amz" not in theirs.text and run_id not in theirs.text


def test_person_store_is_per_user(client: httpx.Client, api_rt: Runtime) -> None:
    load_rows(
        api_rt.db,
        [{"first_name": "Alice", "last_name": "Liddell", "company_url": "wonder.land",
          "phone": "+44 20 7946 0018"}],
        file_name="d.csv", loaded_by="test",
    )  # fmt: skip
    grant(api_rt, "alice", 100)
    grant(api_rt, "bob", 100)
    alice, bob = new_key(api_rt, "alice"), new_key(api_rt, "bob")
    first = client.post(POST, json=body(records=ALICE_PEOPLE), headers=auth(alice)).json()
    wait_finished(api_rt, "alice", first["run_id"])
    by_ids = {"ids": ["p1", "p2"], "entity_type": "person", "max_credits": 10}

    mine = client.post(POST, json=by_ids, headers=auth(alice)).json()
    theirs = client.post(POST, json=by_ids, headers=auth(bob)).json()

    mine_status = _finished(client, api_rt, "alice", alice, mine["run_id"])
    theirs_status = _finished(client, api_rt, "bob", bob, theirs["run_id"])
    assert mine_status["counts"]["skipped"] == 0
    assert mine_status["counts"]["cached"] == 1  # alice's first run found and cached p1
    assert theirs_status["counts"]["skipped"] == 2  # unknown ids for bob
    assert theirs_status["credits_spent"] == 0
    results = httpx.get(theirs_status["result_url"]).text
    assert results.splitlines()[0] == RESULT_HEADER
    assert "Alice" not in results and "Liddell" not in results and "+44" not in results
    credits_rows = list(
        csv.DictReader(io.StringIO(httpx.get(theirs_status["credits_csv_url"]).text))
    )
    assert [r["detail"] for r in credits_rows] == ["unknown_id", "unknown_id"]


def test_spending_is_per_user(client: httpx.Client, api_rt: Runtime) -> None:
    grant(api_rt, "alice", 100)
    alice, bob = new_key(api_rt, "alice"), new_key(api_rt, "bob")
    records = [{"first_name": "X", "last_name": "Y", "company_url": "z.com"}]
    load_rows(
        api_rt.db,
        [{**records[0], "phone": "+1 212 555 0199"}],
        file_name="d.csv",
        loaded_by="test",
    )

    refused = client.post(POST, json=body(records=records, max_credits=50), headers=auth(bob))
    run = client.post(POST, json=body(records=records, max_credits=50), headers=auth(alice))

    assert refused.status_code == 402
    assert refused.json()["credits_remaining"] == 0
    assert run.status_code == 202
    run_id = run.json()["run_id"]
    assert wait_finished(api_rt, "alice", run_id).credits_spent == 1
    bob_credits = client.get("/v1/credits/remaining", headers=auth(bob)).json()
    assert (bob_credits["remaining_credits"], bob_credits["total_credits"]) == (0, 0)
    alice_credits = client.get("/v1/credits/remaining", headers=auth(alice)).json()
    assert (alice_credits["remaining_credits"], alice_credits["total_credits"]) == (99, 99)
    today = datetime.now(UTC).date().isoformat()
    usage = f"/v1/credits/usage?start_date={today}&end_date={today}&run_id={run_id}"
    assert client.get(usage, headers=auth(bob)).json()["credits_used"] == 0
    assert client.get(usage, headers=auth(alice)).json()["credits_used"] == 1


def test_keys_of_one_user_share_everything(client: httpx.Client, api_rt: Runtime) -> None:
    grant(api_rt, "alice", 40)
    one, two = new_key(api_rt, "alice"), new_key(api_rt, "alice")
    run_id = client.post(POST, json=body(records=ALICE_PEOPLE), headers=auth(one)).json()["run_id"]
    wait_finished(api_rt, "alice", run_id)

    assert client.get(f"/v1/agents/runs/{run_id}", headers=auth(two)).status_code == 200
    by_ids = {"ids": ["p1", "p2"], "entity_type": "person", "max_credits": 40}
    again = client.post(POST, json=by_ids, headers=auth(two)).json()["run_id"]
    assert _finished(client, api_rt, "alice", two, again)["counts"]["skipped"] == 0
    assert client.get("/v1/credits/remaining", headers=auth(one)).json()["total_credits"] == 40
