"""A batch's notifications, with each delivery attempt, on its panel (Runs page)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from streamlit.testing.v1 import AppTest

from phone_core import service, ui_api
from phone_core.runtime import Runtime
from tests.conftest import grant, wait_finished
from tests.fakes.webhook import FakeWebhook


@pytest.fixture
def rt(make_runtime: Callable[..., Runtime]) -> Runtime:
    """The receiver is on 127.0.0.1: allowed by the setting's new name."""
    return make_runtime(webhook_allow_private=True, notify_poll_sec=0.1, notify_backoff_base_sec=0)


@pytest.fixture
def receiver() -> Iterator[FakeWebhook]:
    with FakeWebhook() as fake:
        yield fake


def test_the_batch_panel_shows_each_attempt(
    app: Callable[..., AppTest], rt: Runtime, receiver: FakeWebhook
) -> None:
    grant(rt, "alice", 100)
    ui_api.save_webhook("alice", receiver.url)
    receiver.script(500)  # the first attempt fails, the retry is delivered
    rows = [
        {"id": f"p{i}", "first_name": "A", "last_name": f"L{i}", "company_url": "a.com"}
        for i in range(2)
    ]
    run_id = service.submit_upload(rt, "alice", rows, 10, label="q4.csv")[0].run_id
    wait_finished(rt, "alice", run_id)
    deadline = time.monotonic() + 20  # the worker's notifier sends it, then again
    while len(receiver.received) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(receiver.received) == 2
    at = app("alice").run()
    at.switch_page("app_pages/runs.py").run()
    assert not at.exception
    (expander,) = [e for e in at.expander if e.label.startswith("Notifications")]
    assert expander.label == "Notifications (1)"
    (frame,) = [d.value for d in at.dataframe if "Attempts" in d.value.columns]
    row = frame.iloc[0]
    assert row["Event"] == "batch.finished" and row["State"] == "delivered"
    assert row["Attempts"] == 2 and row["Last answer"] == "HTTP 200"


def test_a_signing_secret_without_a_webhook_for_api_requests(
    app: Callable[..., AppTest], rt: Runtime
) -> None:
    at = app("bob").run()
    at.switch_page("app_pages/account.py").run()
    assert not ui_api.has_notify_secret("bob")
    (button,) = [b for b in at.button if b.label == "Make a signing secret"]
    button.click().run()
    assert not at.exception and ui_api.has_notify_secret("bob")
    (shown,) = [c.value for c in at.code if str(c.value).startswith("whsec_")]
    assert any("X-Phone-Signature-256" in str(c.value) for c in at.caption)
    at.run()
    assert not [c for c in at.code if str(c.value).startswith("whsec_")]  # shown once
    assert [b.label for b in at.button if "signing secret" in b.label] == [
        "Make a new signing secret"
    ]
    assert shown
