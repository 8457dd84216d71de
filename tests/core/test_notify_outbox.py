"""Notifications when a batch ends: queued once in the outbox when the run settles, sent
signed to a real HTTP receiver on 127.0.0.1, retried, and given up on without touching
the run. Fast tier: the in-process engine on a SQLite file."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from phone_core import engine, notify, preferences, service, webhooks
from phone_core.credits import Price
from phone_core.inline import memory_runtime
from phone_core.models import RunState
from phone_core.runtime import Runtime
from tests.conftest import drain, free_port, grant, make_settings
from tests.fakes.sources import ScriptedSource
from tests.fakes.webhook import FakeWebhook, Received


@pytest.fixture
def nrt(tmp_path: Path) -> Iterator[Runtime]:
    rt = memory_runtime(
        make_settings(
            tmp_path / "mem",
            waterfall=[],
            notify_allow_private=True,  # the receiver is on 127.0.0.1
            notify_backoff_base_sec=0.0,  # retries due at once
            notify_timeout_sec=1.0,
            notify_poll_sec=0.05,
        )
    )
    rt.sources = [ScriptedSource("vendor", Price("vendor", 0, 1), hit_rate=0.5, seed=3)]
    grant(rt, "ann", 10_000)
    yield rt
    rt.close()


@pytest.fixture
def receiver() -> Iterator[FakeWebhook]:
    with FakeWebhook() as fake:
        yield fake


def _webhook(rt: Runtime, user: str, url: str) -> str:
    with rt.db.begin() as conn:
        secret = preferences.set_webhook(conn, user, url)
    assert secret is not None and secret.startswith("whsec_")
    return secret


def _people(n: int) -> list[dict[str, str]]:
    return [
        {"id": f"p{i}", "first_name": "Ann", "last_name": f"L{i}", "company_url": "a.com"}
        for i in range(n)
    ]


def _rows(rt: Runtime, user: str = "ann") -> list[notify.Notification]:
    with rt.db.connect() as conn:
        return notify.recent(conn, user, 50)


def _body(req: Received, secret: str) -> dict[str, object]:
    assert webhooks.verify(secret, req.body, req.headers["X-Phone-Signature"])
    body = json.loads(req.body)
    assert isinstance(body, dict)
    return body


def test_a_finished_run_is_delivered_once_signed(nrt: Runtime, receiver: FakeWebhook) -> None:
    secret = _webhook(nrt, "ann", receiver.url)
    (acc,) = service.submit_upload(nrt, "ann", _people(10), 100, label="q4.csv")
    drain(nrt)
    engine.finish_run(nrt, acc.run_id)  # the finish step again (after a crash): no second row
    assert len(_rows(nrt)) == 1 and receiver.received == []  # queued, not yet sent

    assert notify.deliver_due(nrt) == 1
    assert notify.deliver_due(nrt) == 0
    (req,) = receiver.received
    body = _body(req, secret)
    run = service.get_run(nrt, "ann", acc.run_id)
    assert body["event"] == "batch.finished" and body["run_id"] == acc.run_id
    assert body["label"] == "q4.csv" and body["state"] == "completed"
    assert body["credits_spent"] == run.credits_spent
    assert body["counts"] == {
        "total": 10,
        "rows_with_phone": run.counts.rows_with_phone,
        "found": run.counts.found,
        "not_found": run.counts.not_found,
        "cached": 0,
        "duplicate": 0,
        "skipped": 0,
        "not_processed": 0,
        "error": 0,
    }
    assert str(body["text"]).startswith(
        f"Batch 'q4.csv' finished: {run.counts.rows_with_phone:,} of 10 rows have a phone"
    )
    assert req.headers["X-Phone-Event"] == "batch.finished"
    assert req.headers["X-Phone-Delivery"] == body["delivery_id"]
    assert "+1" not in req.body.decode()  # no phone number in a notification
    (row,) = _rows(nrt)
    assert (row.state, row.attempts, row.last_error) == ("delivered", 1, None)
    assert row.delivered_at is not None


def test_an_upload_in_parts_is_one_notification_at_its_end(
    nrt: Runtime, receiver: FakeWebhook
) -> None:
    secret = _webhook(nrt, "ann", receiver.url)
    accepted = service.submit_upload(nrt, "ann", _people(2100), 5000, label="big.csv")
    assert len(accepted) == 3
    drain(nrt)
    assert notify.deliver_due(nrt) == 1
    (req,) = receiver.received
    body = _body(req, secret)
    assert body["run_ids"] == [a.run_id for a in accepted]
    assert body["label"] == "big.csv" and body["counts"]["total"] == 2100  # type: ignore[index]


def test_a_500_is_retried_then_delivered(nrt: Runtime, receiver: FakeWebhook) -> None:
    secret = _webhook(nrt, "ann", receiver.url)
    receiver.script(500)
    service.submit_upload(nrt, "ann", _people(3), 10)
    drain(nrt)
    notify.deliver_due(nrt)
    (row,) = _rows(nrt)
    assert (row.state, row.attempts, row.last_error) == ("pending", 1, "HTTP 500")
    notify.deliver_due(nrt)
    (row,) = _rows(nrt)
    assert (row.state, row.attempts, row.last_error) == ("delivered", 2, None)
    first, second = (_body(r, secret) for r in receiver.received)
    assert first == second  # the same delivery id: a receiver can drop a repeat


def test_a_dead_receiver_is_given_up_after_the_attempts(nrt: Runtime) -> None:
    _webhook(nrt, "ann", f"http://127.0.0.1:{free_port()}/gone")
    (acc,) = service.submit_upload(nrt, "ann", _people(3), 10)
    drain(nrt)
    for _ in range(nrt.settings.notify_max_attempts + 2):
        notify.deliver_due(nrt)
    (row,) = _rows(nrt)
    assert row.state == "failed" and row.attempts == nrt.settings.notify_max_attempts
    assert row.last_error == "connection_failed"
    assert service.get_run(nrt, "ann", acc.run_id).state is RunState.COMPLETED


def test_backoff_waits_between_attempts(tmp_path: Path, receiver: FakeWebhook) -> None:
    rt = memory_runtime(
        make_settings(
            tmp_path / "b", waterfall=[], notify_allow_private=True, notify_backoff_base_sec=60
        )
    )
    try:
        grant(rt, "ann", 10)
        _webhook(rt, "ann", receiver.url)
        receiver.script(503)
        service.submit_upload(rt, "ann", _people(1), 1)
        drain(rt)
        assert notify.deliver_due(rt) == 1
        assert notify.deliver_due(rt) == 0  # next try in 60 s
        assert len(receiver.received) == 1
    finally:
        rt.close()


def test_no_webhook_no_notification_and_a_broken_hook_never_breaks_the_run(
    nrt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    (acc,) = service.submit_upload(nrt, "ann", _people(2), 10)
    drain(nrt)
    assert _rows(nrt) == []

    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    _webhook(nrt, "ann", "http://127.0.0.1:9/x")
    monkeypatch.setattr(notify, "payload", broken)
    (acc,) = service.submit_upload(nrt, "ann", _people(2), 10)
    drain(nrt)
    assert service.get_run(nrt, "ann", acc.run_id).state is RunState.COMPLETED
    assert _rows(nrt) == []


def test_a_row_claimed_by_another_worker_is_left_alone(nrt: Runtime, receiver: FakeWebhook) -> None:
    _webhook(nrt, "ann", receiver.url)
    service.submit_upload(nrt, "ann", _people(1), 10)
    drain(nrt)
    (row,) = _rows(nrt)
    assert notify.deliver_one(nrt, row.id, attempts=3) is None  # stale view: not ours
    assert notify.deliver_one(nrt, row.id, attempts=0) is True
    assert notify.deliver_one(nrt, row.id, attempts=0) is None  # already taken
    assert len(receiver.received) == 1


def test_the_notifier_thread_delivers_and_stops_with_the_runtime(
    nrt: Runtime, receiver: FakeWebhook
) -> None:
    _webhook(nrt, "ann", receiver.url)
    nrt.background.append(notify.Notifier(nrt).start())
    service.submit_upload(nrt, "ann", _people(2), 10)
    drain(nrt)
    deadline = time.monotonic() + 10
    while not receiver.received and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(receiver.received) == 1
    notifier = nrt.background[0]
    assert isinstance(notifier, notify.Notifier)
    nrt.close()
    assert not notifier._thread.is_alive() and nrt.background == []


def test_a_test_notification_is_sent_now_and_signed(nrt: Runtime, receiver: FakeWebhook) -> None:
    assert notify.send_test(nrt, "ann") is None  # no webhook yet
    secret = _webhook(nrt, "ann", receiver.url)
    result = notify.send_test(nrt, "ann")
    assert result is not None and result.ok
    body = _body(receiver.received[0], secret)
    assert body["event"] == "test" and "Test notification" in str(body["text"])
    assert _rows(nrt) == []  # not through the outbox
    receiver.script(404)
    result = notify.send_test(nrt, "ann")
    assert result is not None and result.describe(5) == (
        "Not delivered: the receiver answered HTTP 404."
    )


def test_a_new_secret_replaces_the_old_one(nrt: Runtime, receiver: FakeWebhook) -> None:
    first = _webhook(nrt, "ann", receiver.url)
    with nrt.db.begin() as conn:
        assert preferences.set_webhook(conn, "ann", receiver.url + "?v=2") is None  # kept
        second = preferences.new_notify_secret(conn, "ann")
    assert second != first
    notify.send_test(nrt, "ann")
    _body(receiver.received[0], second)


def test_activity_shows_progress_then_the_batches_that_ended(nrt: Runtime) -> None:
    service.submit_upload(nrt, "ann", _people(2), 10, label="old.csv")
    drain(nrt)
    since = notify.clock()
    (acc,) = service.submit_upload(nrt, "ann", _people(3), 10, label="new.csv")
    with nrt.db.connect() as conn:
        act = notify.activity(conn, "ann", since)
        assert (act.active_runs, act.rows_done, act.rows_total, act.ended) == (1, 0, 3, [])
        assert notify.activity(conn, "bob", since).active_runs == 0  # only one's own
    drain(nrt)
    with nrt.db.connect() as conn:
        act = notify.activity(conn, "ann", since)
    assert act.active_runs == 0
    ((batch_id, text),) = act.ended  # not old.csv: it ended before ``since``
    assert batch_id == acc.run_id and text.startswith("Batch 'new.csv' finished: ")
