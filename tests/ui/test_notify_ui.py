"""Told when it ends: the Account page's webhook form, the toast on any page when a
batch ends, and the browser tab title (the full stack: DBOS worker and its notifier)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest
from streamlit.testing.v1 import AppTest

from phone_core import service, ui_api, webhooks
from phone_core.runtime import Runtime
from tests.conftest import grant, wait_finished
from tests.fakes.webhook import FakeWebhook
from tests.ui.helpers import messages
from ui import notices
from ui.notify_settings import NEW_SECRET_BUTTON, SAVE, TEST, URL


@pytest.fixture
def rt(make_runtime: Callable[..., Runtime]) -> Runtime:
    """The receiver is on 127.0.0.1, which a real install refuses by default."""
    return make_runtime(notify_allow_private=True, notify_poll_sec=0.1)


@pytest.fixture
def receiver() -> Iterator[FakeWebhook]:
    with FakeWebhook() as fake:
        yield fake


def _account(app: Callable[..., AppTest], user: str = "alice") -> AppTest:
    at = app(user).run()
    at.switch_page("app_pages/account.py").run()
    assert not at.exception
    return at


def _save(at: AppTest, url: str) -> AppTest:
    at.text_input(key=URL).input(url)
    return at.button(key=SAVE).click().run()


def test_account_webhook_form(
    app: Callable[..., AppTest], rt: Runtime, receiver: FakeWebhook
) -> None:
    at = _account(app)
    assert not at.button(key=TEST).value and at.button(key=TEST).disabled  # nothing saved

    _save(at, "ftp://hooks.example.com/x")
    assert any("The address must start with https" in m for m in messages(at, "error"))
    assert ui_api.webhook_url("alice") == ""

    _save(at, receiver.url)
    assert not at.exception
    assert any("Saved." in m for m in messages(at, "success"))
    assert ui_api.webhook_url("alice") == receiver.url
    (shown,) = [c.value for c in at.code]
    assert shown.startswith("whsec_")
    at.run()
    assert [c.value for c in at.code] == []  # shown once

    at.button(key=TEST).click().run()
    assert "Delivered: the receiver answered HTTP 200." in messages(at, "success")
    (req,) = receiver.received
    assert webhooks.verify(shown, req.body, req.headers["X-Phone-Signature"])
    assert json.loads(req.body)["event"] == "test"

    receiver.script(404)
    at.button(key=TEST).click().run()
    assert "Not delivered: the receiver answered HTTP 404." in messages(at, "error")

    at.button(key=NEW_SECRET_BUTTON).click().run()
    (fresh,) = [c.value for c in at.code]
    assert fresh.startswith("whsec_") and fresh != shown
    at.button(key=TEST).click().run()
    assert webhooks.verify(
        fresh, receiver.received[-1].body, receiver.received[-1].headers["X-Phone-Signature"]
    )

    _save(at, "")
    assert "Saved. Notifications are off." in messages(at, "success")
    assert ui_api.webhook_url("alice") == ""


def _rows(n: int) -> list[dict[str, str]]:
    return [
        {"id": f"p{i}", "first_name": "Ann", "last_name": f"L{i}", "company_url": "a.com"}
        for i in range(n)
    ]


def test_a_toast_when_a_batch_ends_and_the_webhook_is_delivered(
    app: Callable[..., AppTest], rt: Runtime, receiver: FakeWebhook
) -> None:
    grant(rt, "alice", 100)
    before = service.submit_upload(rt, "alice", _rows(2), 10, label="old.csv")[0].run_id
    wait_finished(rt, "alice", before)  # ended before the session: not announced

    at = app("alice").run()
    assert not at.exception and [t.value for t in at.toast] == []
    ui_api.save_webhook("alice", receiver.url)
    run_id = service.submit_upload(rt, "alice", _rows(3), 10, label="q4.csv")[0].run_id
    run = wait_finished(rt, "alice", run_id)

    at.run()
    expected = (
        f"Batch 'q4.csv' finished: {run.counts.rows_with_phone} of 3 rows have a phone, "
        f"{run.credits_spent} credits spent."
    )
    assert [t.value for t in at.toast] == [notices.common.plain(expected)]
    at.run()
    assert [t.value for t in at.toast] == []  # announced once

    deadline = time.monotonic() + 20  # the worker's notifier sends it
    while not receiver.received and time.monotonic() < deadline:
        time.sleep(0.05)
    (req,) = receiver.received
    body = json.loads(req.body)
    assert body["event"] == "batch.finished" and body["run_id"] == run_id
    assert str(body["text"]).startswith(expected)


def test_tab_title_shows_progress_then_done() -> None:
    assert notices.tab_title(0, 0, 0, False) == "Phone enrichment"
    assert notices.tab_title(2, 420, 1000, False) == "(42%) Runs · Phone enrichment"
    assert notices.tab_title(1, 0, 0, True) == "(0%) Runs · Phone enrichment"
    assert notices.tab_title(1, 1000, 1000, False) == "(99%) Runs · Phone enrichment"
    assert notices.tab_title(0, 0, 0, True) == "✓ Done · Phone enrichment"
