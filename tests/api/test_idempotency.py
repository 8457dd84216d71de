"""Idempotency-Key on POST: replay, conflict, expiry, and no second run or hold.

A worker-less install keeps every run queued, so holds stay visible for the whole test.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa

from phone_core import db, service
from phone_core.api import idempotency
from phone_core.runtime import Runtime
from tests.api.conftest import POST, ClientFactory, auth, body, check_validation_body, new_key
from tests.conftest import grant


@pytest.fixture
def client(make_client: ClientFactory, frozen_rt: Runtime) -> httpx.Client:
    return make_client(frozen_rt)


def idem(key: str, name: str) -> dict[str, str]:
    return {**auth(key), "Idempotency-Key": name}


def test_same_key_same_body_replays(client: httpx.Client, frozen_rt: Runtime) -> None:
    grant(frozen_rt, "alice", 15)
    key = new_key(frozen_rt, "alice")
    first = client.post(POST, json=body(), headers=idem(key, "order-1"))
    assert first.status_code == 202
    assert "idempotent-replayed" not in first.headers
    # same request, other key order and spacing: still the same body
    raw = json.dumps(dict(reversed(list(body().items()))), indent=2).encode()
    again = client.post(
        POST, content=raw, headers={**idem(key, "order-1"), "Content-Type": "application/json"}
    )

    assert again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["x-request-id"]
    runs = service.list_runs(frozen_rt, "alice")
    assert [r.run_id for r in runs] == [first.json()["run_id"]]
    assert service.active_holds(frozen_rt, "alice") == [(first.json()["run_id"], 10)]
    remaining = client.get("/v1/credits/remaining", headers=auth(key)).json()
    assert remaining["remaining_credits"] == 5  # held once, not twice


def test_same_key_other_body_422(client: httpx.Client, frozen_rt: Runtime) -> None:
    grant(frozen_rt, "alice", 100)
    key = new_key(frozen_rt, "alice")
    assert client.post(POST, json=body(), headers=idem(key, "k")).status_code == 202

    r = client.post(POST, json=body(max_credits=11), headers=idem(key, "k"))

    assert r.status_code == 422
    check_validation_body(r.json())
    item = r.json()["detail"][0]
    assert item["loc"] == ["header", "Idempotency-Key"]
    assert item["type"] == "idempotency_key_reused"
    assert len(service.list_runs(frozen_rt, "alice")) == 1


def test_without_key_each_post_is_a_run(client: httpx.Client, frozen_rt: Runtime) -> None:
    grant(frozen_rt, "alice", 100)
    key = new_key(frozen_rt, "alice")
    ids = {client.post(POST, json=body(), headers=auth(key)).json()["run_id"] for _ in range(2)}
    assert len(ids) == 2


def test_failed_submit_frees_the_key(client: httpx.Client, frozen_rt: Runtime) -> None:
    key = new_key(frozen_rt, "alice")
    assert client.post(POST, json=body(), headers=idem(key, "k")).status_code == 402
    grant(frozen_rt, "alice", 10)

    ok = client.post(POST, json=body(), headers=idem(key, "k"))

    assert ok.status_code == 202
    assert client.post(POST, json=body(), headers=idem(key, "k")).json() == ok.json()
    assert len(service.list_runs(frozen_rt, "alice")) == 1


def test_key_expires_after_24h(client: httpx.Client, frozen_rt: Runtime) -> None:
    grant(frozen_rt, "alice", 100)
    key = new_key(frozen_rt, "alice")
    first = client.post(POST, json=body(), headers=idem(key, "k")).json()
    with frozen_rt.db.begin() as conn:
        conn.execute(sa.update(db.idempotency).values(created_at=db.utcnow() - timedelta(hours=25)))

    later = client.post(POST, json=body(max_credits=12), headers=idem(key, "k"))

    assert later.status_code == 202
    assert later.json()["run_id"] != first["run_id"]


def test_scope_is_the_user(client: httpx.Client, frozen_rt: Runtime) -> None:
    grant(frozen_rt, "alice", 100)
    grant(frozen_rt, "bob", 100)
    alice1, alice2, bob = (new_key(frozen_rt, u) for u in ("alice", "alice", "bob"))
    a = client.post(POST, json=body(), headers=idem(alice1, "same")).json()
    # another key of the same user replays; another user gets a run of its own
    assert client.post(POST, json=body(), headers=idem(alice2, "same")).json() == a
    b = client.post(POST, json=body(), headers=idem(bob, "same")).json()
    assert b["run_id"] != a["run_id"]
    assert len(service.list_runs(frozen_rt, "alice")) == 1
    assert len(service.list_runs(frozen_rt, "bob")) == 1


def test_concurrent_duplicates_make_one_run(client: httpx.Client, frozen_rt: Runtime) -> None:
    grant(frozen_rt, "alice", 10)  # room for one hold only
    key = new_key(frozen_rt, "alice")
    with ThreadPoolExecutor(8) as pool:
        replies = list(
            pool.map(lambda _: client.post(POST, json=body(), headers=idem(key, "c")), range(8))
        )
    assert {r.status_code for r in replies} == {202}
    assert len({r.json()["run_id"] for r in replies}) == 1
    assert len(service.list_runs(frozen_rt, "alice")) == 1


def _pending(rt: Runtime, user: str, name: str, age: timedelta, digest: str) -> None:
    with rt.db.begin() as conn:
        conn.execute(
            sa.insert(db.idempotency).values(
                user=user, key=name, body_hash=digest, response={},
                created_at=db.utcnow() - age,
            )
        )  # fmt: skip


def test_in_flight_duplicate_gets_409(
    client: httpx.Client, frozen_rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from phone_core.models import BatchCreate

    monkeypatch.setattr(idempotency, "WAIT_SEC", 0.3)
    grant(frozen_rt, "alice", 100)
    key = new_key(frozen_rt, "alice")
    digest = idempotency.body_hash(BatchCreate.model_validate(body()))
    _pending(frozen_rt, "alice", "busy", timedelta(seconds=1), digest)

    r = client.post(POST, json=body(), headers=idem(key, "busy"))

    assert r.status_code == 409
    assert r.json()["retry_after"] == 1 and r.headers["retry-after"] == "1"
    assert client.post(POST, json=body(max_credits=3), headers=idem(key, "busy")).status_code == 422
    assert service.list_runs(frozen_rt, "alice") == []
    # a claim left behind by a dead process is taken over after a while
    _pending(frozen_rt, "alice", "orphan", timedelta(minutes=10), digest)
    assert client.post(POST, json=body(), headers=idem(key, "orphan")).status_code == 202
