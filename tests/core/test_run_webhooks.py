"""Completion webhooks of API runs (issue 13, item 5): ``webhook_url`` on the batch request,
a signed and timestamped POST to a real receiver on 127.0.0.1 when the run ends, retries
on 500s within the retry window, attempts visible on the run, refusal of private
addresses. Fast tier: the in-process engine, the API app over TestClient."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from phone_core import notify, preferences, service, webhooks
from phone_core.api.app import create_app
from phone_core.credits import Price
from phone_core.errors import InputError
from phone_core.inline import memory_runtime
from phone_core.models import BatchCreate, PersonRecord
from phone_core.runtime import Runtime
from phone_core.settings import Settings
from tests.api.backends import NO_PG, PG_URL, _pg_database
from tests.api.conftest import POST, TestClient, auth, body, new_key
from tests.conftest import drain, grant, make_settings
from tests.fakes.sources import ScriptedSource
from tests.fakes.webhook import FakeWebhook, Received


def _runtime(path: Path, **over: Any) -> Runtime:
    settings: dict[str, Any] = {
        "waterfall": [],
        "webhook_allow_private": True,  # the receiver is on 127.0.0.1
        "notify_backoff_base_sec": 0.0,  # retries due at once
        "notify_timeout_sec": 1.0,
        **over,
    }
    rt = memory_runtime(make_settings(path, **settings))
    rt.sources = [ScriptedSource("vendor", Price("vendor", 0, 1), hit_rate=0.5, seed=3)]
    grant(rt, "ann", 10_000)
    return rt


@pytest.fixture(params=["sqlite", "postgres"])
def wrt(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    databases: Iterator[str] | None = None
    over: dict[str, Any] = {}
    if request.param == "postgres":
        if not PG_URL:
            pytest.skip(NO_PG)
        databases = _pg_database()
        over["database_url"] = next(databases)
    rt = _runtime(tmp_path / "mem", **over)
    try:
        yield rt
    finally:
        rt.close()
        if databases is not None:
            next(databases, None)


@pytest.fixture
def receiver() -> Iterator[FakeWebhook]:
    with FakeWebhook() as fake:
        yield fake


def _secret(rt: Runtime, user: str = "ann") -> str:
    with rt.db.begin() as conn:
        return preferences.new_notify_secret(conn, user)


def _submit(rt: Runtime, url: str | None, n: int = 4) -> str:
    req = BatchCreate(
        records=[
            PersonRecord(id=f"p{i}", first_name="Ann", last_name=f"L{i}", company_url="a.com")
            for i in range(n)
        ],
        entity_type="person",
        max_credits=100,
        webhook_url=url,
    )
    return service.submit_batch(rt, "ann", req).run_id


def _checked(req: Received, secret: str) -> dict[str, Any]:
    ts = req.headers["X-Phone-Timestamp"]
    sig = req.headers["X-Phone-Signature-256"]
    assert webhooks.verify_timestamped(secret, req.body, ts, sig, now=time.time())
    assert webhooks.verify(secret, req.body, req.headers["X-Phone-Signature"])  # the old one
    # a replay later, or a changed timestamp or body, does not pass
    assert not webhooks.verify_timestamped(secret, req.body, ts, sig, now=int(ts) + 301)
    assert not webhooks.verify_timestamped(secret, req.body, str(int(ts) + 1), sig, now=int(ts))
    assert not webhooks.verify_timestamped(secret, req.body + b" ", ts, sig, now=int(ts))
    out = json.loads(req.body)
    assert isinstance(out, dict)
    return out


def test_a_run_posts_its_result_signed_and_timestamped(wrt: Runtime, receiver: FakeWebhook) -> None:
    secret = _secret(wrt)
    run_id = _submit(wrt, receiver.url)
    drain(wrt)
    assert notify.deliver_due(wrt) == 1
    assert notify.deliver_due(wrt) == 0  # delivered: not sent again
    (req,) = receiver.received
    payload = _checked(req, secret)
    run = service.get_run(wrt, "ann", run_id)
    assert req.headers["X-Phone-Event"] == "run.finished"
    assert payload["run_id"] == run_id and payload["state"] == "completed"
    assert payload["credits_spent"] == run.credits_spent
    assert payload["counts"]["total"] == 4 and payload["counts"]["found"] == run.counts.found
    assert payload["result_path"] == run.result_path
    assert payload["credits_csv_path"] == run.credits_csv_path
    assert payload["delivery_id"] == req.headers["X-Phone-Delivery"]
    with wrt.db.connect() as conn:
        (d,) = notify.run_deliveries(conn, run_id)
    assert d.state == "delivered" and [(a.attempt, a.status) for a in d.attempts] == [(1, 200)]


def test_retried_on_500s_then_delivered_attempts_on_the_run(
    wrt: Runtime, receiver: FakeWebhook
) -> None:
    secret = _secret(wrt)
    receiver.script(500, 503)
    run_id = _submit(wrt, receiver.url)
    drain(wrt)
    for _ in range(5):
        notify.deliver_due(wrt)
    assert len(receiver.received) == 3
    ids = {r.headers["X-Phone-Delivery"] for r in receiver.received}
    assert len(ids) == 1  # one notification, three attempts: the receiver can de-duplicate
    _checked(receiver.received[-1], secret)
    with wrt.db.connect() as conn:
        (d,) = notify.run_deliveries(conn, run_id)
    assert d.state == "delivered"
    assert [(a.attempt, a.status, a.error) for a in d.attempts] == [
        (1, 500, None),
        (2, 503, None),
        (3, 200, None),
    ]


def test_given_up_when_the_retry_window_is_over(tmp_path: Path, receiver: FakeWebhook) -> None:
    # the first retry would come 60 s later, after the 36 s window: failed after one try
    rt = _runtime(tmp_path / "w", notify_backoff_base_sec=60.0, webhook_retry_hours=0.01)
    try:
        _secret(rt)
        receiver.script(500)
        run_id = _submit(rt, receiver.url)
        drain(rt)
        notify.deliver_due(rt)
        with rt.db.connect() as conn:
            (d,) = notify.run_deliveries(conn, run_id)
        assert d.state == "failed" and [a.status for a in d.attempts] == [500]
        assert notify.backoff(rt.settings, 3) == 960.0
        assert (
            notify.backoff(rt.settings.model_copy(update={"notify_backoff_max_sec": 100}), 3) == 100
        )
    finally:
        rt.close()


def test_the_run_ended_before_its_webhook_was_registered(
    wrt: Runtime, receiver: FakeWebhook
) -> None:
    _secret(wrt)
    run_id = _submit(wrt, None)
    drain(wrt)
    notify.register_run_webhook(wrt, run_id, "ann", receiver.url)
    notify.register_run_webhook(wrt, run_id, "ann", receiver.url)  # twice: still one
    notify.deliver_due(wrt)
    assert len(receiver.received) == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://10.1.2.3/hook",
        "http://[::1]/x",
        "http://169.254.169.254/",
    ],
)
def test_private_addresses_are_refused_before_anything_is_held(tmp_path: Path, url: str) -> None:
    rt = _runtime(tmp_path / "p", webhook_allow_private=False)
    try:
        _secret(rt)
        with pytest.raises(InputError, match="private network"):
            _submit(rt, url)
        assert service.active_holds(rt, "ann") == []
    finally:
        rt.close()


def test_the_allow_private_setting_and_its_older_name(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not Settings().allow_private_webhooks
    monkeypatch.setenv("PHONE_WEBHOOK_ALLOW_PRIVATE", "true")
    assert Settings().allow_private_webhooks
    monkeypatch.delenv("PHONE_WEBHOOK_ALLOW_PRIVATE")
    monkeypatch.setenv("PHONE_NOTIFY_ALLOW_PRIVATE", "true")
    assert Settings().allow_private_webhooks


def test_the_api_field(tmp_path: Path, receiver: FakeWebhook) -> None:
    rt = _runtime(tmp_path / "api")
    try:
        key = new_key(rt, "ann")
        other = new_key(rt, "bob")
        client = TestClient(create_app(rt), raise_server_exceptions=False)
        # no signing secret yet: refused with what to do
        r = client.post(POST, json=body(webhook_url=receiver.url), headers=auth(key))
        assert r.status_code == 400 and "signing secret" in r.text
        secret = _secret(rt)
        for bad in ("ftp://example.com/x", "not a url", "https://" + "a" * 2000, 42):
            r = client.post(POST, json=body(webhook_url=bad), headers=auth(key))
            assert r.status_code == 422, (bad, r.text)
        r = client.post(POST, json=body(), headers=auth(key))  # the reference request
        assert r.status_code == 202 and set(r.json()) == {
            "run_id",
            "result_path",
            "credits_csv_path",
        }
        r = client.post(POST, json=body(webhook_url=receiver.url), headers=auth(key))
        assert r.status_code == 202
        run_id = r.json()["run_id"]
        drain(rt)
        notify.deliver_due(rt)
        _checked(receiver.received[0], secret)
        r = client.get(f"/v1/agents/runs/{run_id}/deliveries", headers=auth(key))
        assert r.status_code == 200
        (d,) = r.json()["deliveries"]
        assert d["event"] == "run.finished" and d["state"] == "delivered"
        assert d["attempts"][0]["status"] == 200 and "url" not in d
        r = client.get(f"/v1/agents/runs/{run_id}/deliveries", headers=auth(other))
        assert r.status_code == 404
    finally:
        rt.close()
